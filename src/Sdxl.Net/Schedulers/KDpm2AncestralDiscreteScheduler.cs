using System.Numerics.Tensors;
using Sdxl.Net.Randomness;

namespace Sdxl.Net.Schedulers;

/// <summary>
/// The ancestral DPM-Solver-2 sampler of k-diffusion (<c>sample_dpm_2_ancestral</c>), as diffusers'
/// <c>KDPM2AncestralDiscreteScheduler</c>: each step solves to σ_down with a midpoint evaluation, then adds fresh
/// noise of σ_up; the schedule has 2N − 1 timesteps.
/// </summary>
/// <remarks>
/// Noise is drawn once per completed two-evaluation step (in the second evaluation), N − 1 times per run: the final
/// step goes to σ = 0 with a single Euler evaluation and draws none. Honours the same options as
/// <see cref="KDpm2DiscreteScheduler"/>.
/// </remarks>
public sealed class KDpm2AncestralDiscreteScheduler : IScheduler
{
    private readonly SchedulerConfig _config;
    private readonly float[] _alphasCumprod;
    private readonly PredictionType _predictionType;

    /// <summary>Creates the scheduler from a configuration; absent keys take diffusers' class defaults.</summary>
    /// <exception cref="NotSupportedException">An option has a value this scheduler does not implement.</exception>
    public KDpm2AncestralDiscreteScheduler(SchedulerConfig config)
    {
        (_config, _alphasCumprod, _predictionType) = KDpm2Schedule.ReadConfig(config, nameof(KDpm2AncestralDiscreteScheduler));
    }

    /// <inheritdoc />
    public string Name => "kdpm2-a";

    /// <inheritdoc />
    public int Order => 2;

    /// <inheritdoc />
    public ISchedulerRun CreateRun(int inferenceSteps)
    {
        var schedule = KDpm2Schedule.Create(_config, _alphasCumprod, inferenceSteps);
        var sigmas = schedule.Sigmas;
        int count = sigmas.Length;

        // σ_up / σ_down split each step's noise level into the deterministic target and the fresh noise (float32, as torch).
        var up = new float[count];
        var down = new float[count];
        var interpolated = new float[count];
        for (int i = 0; i < count; i++)
        {
            float sigma = sigmas[i];
            float next = i + 1 < count ? sigmas[i + 1] : 0f;
            up[i] = MathF.Sqrt(next * next * ((sigma * sigma) - (next * next)) / (sigma * sigma));
            down[i] = i + 1 < count ? MathF.Sqrt((next * next) - (up[i] * up[i])) : 0f;
        }

        for (int i = 0; i < count; i++)
        {
            interpolated[i] = i < count - 2 ? KDpm2Schedule.LogMidpoint(sigmas[i], down[i]) : 0f;
        }

        // timesteps = [t_0, t½_0, t_1, t½_1, t_2, ..., t_{N-1}]: the midpoint timestep follows the step it belongs to.
        int n = schedule.Timesteps.Length;
        var timesteps = new float[(2 * n) - 1];
        timesteps[0] = schedule.Timesteps[0];
        for (int i = 1; i < n; i++)
        {
            timesteps[(2 * i) - 1] = KDpm2Schedule.SigmaToT(interpolated[i - 1], schedule.LogTrainSigmas);
            timesteps[2 * i] = schedule.Timesteps[i];
        }

        var allSigmas = KDpm2Schedule.RepeatAfterFirst(sigmas);
        return new Run(
            timesteps,
            allSigmas,
            KDpm2Schedule.RepeatAfterFirst(interpolated),
            KDpm2Schedule.RepeatAfterFirst(up),
            KDpm2Schedule.RepeatAfterFirst(down),
            SigmaSchedule.InitNoiseSigma(allSigmas, _config),
            _predictionType);
    }

    private sealed class Run(
        float[] timesteps, float[] sigmas, float[] interpolatedSigmas, float[] upSigmas, float[] downSigmas, float initNoiseSigma, PredictionType predictionType)
        : SigmaSchedulerRun(timesteps, sigmas, initNoiseSigma, order: 2)
    {
        private bool _secondOrder;

        private protected override float InputSigma(int stepIndex) => _secondOrder ? interpolatedSigmas[stepIndex - 1] : _sigmas[stepIndex];

        public override void Step(ReadOnlySpan<float> modelOutput, float timestep, Span<float> sample, IRandomSource random)
        {
            ArgumentNullException.ThrowIfNull(random);
            int index = CurrentStep(timestep, sample.Length, modelOutput.Length);
            var derivative = Scratch(sample.Length);
            var saved = Scratch(sample.Length, 1);
            if (!_secondOrder)
            {
                // Euler step to the interpolated noise level; remember where it started.
                float sigma = _sigmas[index];
                float sigmaMid = interpolatedSigmas[index];
                KDpm2Schedule.Derivative(predictionType, modelOutput, sample, sigma, derivative);
                sample.CopyTo(saved);
                TensorPrimitives.MultiplyAdd(derivative, sigmaMid - sigma, sample, sample);
                _secondOrder = true;
            }
            else
            {
                // DPM-Solver-2 from the saved sample to σ_down, then fresh noise of σ_up.
                float sigma = _sigmas[index - 1];
                float sigmaMid = interpolatedSigmas[index - 1];
                KDpm2Schedule.Derivative(predictionType, modelOutput, sample, sigmaMid, derivative);
                TensorPrimitives.MultiplyAdd(derivative, downSigmas[index - 1] - sigma, saved, sample);
                random.NextNormal(derivative);
                TensorPrimitives.MultiplyAdd(derivative, upSigmas[index - 1], sample, sample);
                _secondOrder = false;
            }

            _index.Advance();
        }
    }
}
