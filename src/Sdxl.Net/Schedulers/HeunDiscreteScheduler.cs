using System.Numerics.Tensors;
using Sdxl.Net.Randomness;

namespace Sdxl.Net.Schedulers;

/// <summary>
/// Heun's second-order sampler (Karras et al., 2022, algorithm 1), as diffusers' <c>HeunDiscreteScheduler</c>:
/// every step but the last takes two model evaluations, so the schedule has 2N − 1 timesteps.
/// </summary>
public sealed class HeunDiscreteScheduler : IScheduler
{
    private readonly SchedulerConfig _config;
    private readonly float[] _alphasCumprod;
    private readonly PredictionType _predictionType;
    private readonly float? _clipRange;

    /// <summary>Creates the scheduler from a configuration; absent keys take diffusers' class defaults.</summary>
    /// <exception cref="NotSupportedException">An option has a value this scheduler does not implement.</exception>
    public HeunDiscreteScheduler(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        _config = config;
        _alphasCumprod = NoiseSchedule.AlphasCumprod(NoiseSchedule.Betas(config, 0.00085, 0.012));
        _predictionType = NoiseSchedule.ParsePredictionType(config);
        _clipRange = config.GetBoolean("clip_sample", false) ? (float)config.GetDouble("clip_sample_range", 1.0) : null;
        _ = SigmaSchedule.Create(config, _alphasCumprod, 1);
    }

    /// <inheritdoc />
    public string Name => "heun";

    /// <inheritdoc />
    public int Order => 2;

    /// <inheritdoc />
    public ISchedulerRun CreateRun(int inferenceSteps)
    {
        var schedule = SigmaSchedule.Create(_config, _alphasCumprod, inferenceSteps);
        var sigmas = SecondOrder.Interleave(schedule.SigmasWithFinal(), keepLast: true);
        var timesteps = SecondOrder.Interleave(schedule.TimestepsSingle(), keepLast: false);
        return new Run(timesteps, sigmas, SigmaSchedule.InitNoiseSigma(sigmas, _config), this);
    }

    private sealed class Run(float[] timesteps, float[] sigmas, float initNoiseSigma, HeunDiscreteScheduler owner)
        : SigmaSchedulerRun(timesteps, sigmas, initNoiseSigma, order: 2)
    {
        private float? _dt;
        private float[]? _previousDerivative;

        public override void Step(ReadOnlySpan<float> modelOutput, float timestep, Span<float> sample, IRandomSource random)
        {
            int index = CurrentStep(timestep, sample.Length, modelOutput.Length);
            bool firstOrder = _dt is null;
            float sigma = firstOrder ? _sigmas[index] : _sigmas[index - 1];
            float sigmaNext = firstOrder ? _sigmas[index + 1] : _sigmas[index];
            float sigmaInput = firstOrder ? sigma : sigmaNext;

            var derivative = Scratch(sample.Length);
            PredictOriginal(owner._predictionType, modelOutput, sample, sigmaInput, derivative);
            if (owner._clipRange is { } range)
            {
                TensorPrimitives.Clamp(derivative, -range, range, derivative);
            }

            TensorPrimitives.Subtract(sample, derivative, derivative);
            var saved = Scratch(sample.Length, 1);
            if (firstOrder)
            {
                // Euler predictor: remember the derivative, the step and the sample for the corrector.
                TensorPrimitives.Divide(derivative, sigma, derivative);
                float dt = sigmaNext - sigma;
                _dt = dt;
                var previous = PreviousDerivative(sample.Length);
                derivative.CopyTo(previous);
                sample.CopyTo(saved);
                TensorPrimitives.MultiplyAdd(derivative, dt, sample, sample);
            }
            else
            {
                // Trapezoidal corrector from the saved sample: (d_prev + d) / 2.
                TensorPrimitives.Divide(derivative, sigmaNext, derivative);
                TensorPrimitives.Add(PreviousDerivative(sample.Length), derivative, derivative);
                TensorPrimitives.Divide(derivative, 2f, derivative);
                TensorPrimitives.MultiplyAdd(derivative, _dt!.Value, saved, sample);
                _dt = null;
            }

            _index.Advance();
        }

        private Span<float> PreviousDerivative(int length) => _previousDerivative is { } p && p.Length == length
            ? p
            : _previousDerivative = new float[length];
    }
}

/// <summary>Schedules of the second-order samplers, where every step but the first is visited twice.</summary>
internal static class SecondOrder
{
    /// <summary>
    /// <c>cat([x[:1], x[1:-1].repeat_interleave(2), x[-1:]])</c> when <paramref name="keepLast"/>,
    /// else <c>cat([x[:1], x[1:].repeat_interleave(2)])</c>.
    /// </summary>
    public static float[] Interleave(float[] values, bool keepLast)
    {
        int repeated = keepLast ? values.Length - 2 : values.Length - 1;
        var result = new float[1 + (2 * repeated) + (keepLast ? 1 : 0)];
        result[0] = values[0];
        for (int i = 0; i < repeated; i++)
        {
            result[1 + (2 * i)] = values[1 + i];
            result[2 + (2 * i)] = values[1 + i];
        }

        if (keepLast)
        {
            result[^1] = values[^1];
        }

        return result;
    }
}
