using System.Numerics.Tensors;
using Sdxl.Net.Randomness;

namespace Sdxl.Net.Schedulers;

/// <summary>
/// The ancestral Euler sampler (k-diffusion's <c>sample_euler_ancestral</c>), as diffusers'
/// <c>EulerAncestralDiscreteScheduler</c>: an Euler step to σ_down followed by fresh noise of σ_up every step.
/// </summary>
public sealed class EulerAncestralDiscreteScheduler : IScheduler
{
    private readonly SchedulerConfig _config;
    private readonly float[] _alphasCumprod;
    private readonly PredictionType _predictionType;

    /// <summary>Creates the scheduler from a configuration; absent keys take diffusers' class defaults.</summary>
    /// <exception cref="NotSupportedException">An option has a value this scheduler does not implement.</exception>
    public EulerAncestralDiscreteScheduler(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        _config = config.With("use_karras_sigmas", false);
        _alphasCumprod = NoiseSchedule.AlphasCumprod(NoiseSchedule.Betas(config));
        if (config.GetBoolean("rescale_betas_zero_snr", false))
        {
            _alphasCumprod[^1] = 1f / (1 << 24);
        }

        _predictionType = NoiseSchedule.ParsePredictionType(config);
        if (_predictionType == PredictionType.Sample)
        {
            throw new NotSupportedException("EulerAncestralDiscreteScheduler supports prediction_type 'epsilon' and 'v_prediction'.");
        }

        _ = SigmaSchedule.Create(_config, _alphasCumprod, 1);
    }

    /// <inheritdoc />
    public string Name => "euler-a";

    /// <inheritdoc />
    public int Order => 1;

    /// <inheritdoc />
    public ISchedulerRun CreateRun(int inferenceSteps)
    {
        var schedule = SigmaSchedule.Create(_config, _alphasCumprod, inferenceSteps);
        var sigmas = schedule.SigmasWithFinal();
        return new Run(schedule.TimestepsSingle(), sigmas, SigmaSchedule.InitNoiseSigma(sigmas, _config), _predictionType);
    }

    private sealed class Run(float[] timesteps, float[] sigmas, float initNoiseSigma, PredictionType predictionType)
        : SigmaSchedulerRun(timesteps, sigmas, initNoiseSigma, order: 1)
    {
        public override void Step(ReadOnlySpan<float> modelOutput, float timestep, Span<float> sample, IRandomSource random)
        {
            ArgumentNullException.ThrowIfNull(random);
            int index = CurrentStep(timestep, sample.Length, modelOutput.Length);
            float sigmaFrom = _sigmas[index];
            float sigmaTo = _sigmas[index + 1];
            float sigmaUp = MathF.Sqrt(sigmaTo * sigmaTo * ((sigmaFrom * sigmaFrom) - (sigmaTo * sigmaTo)) / (sigmaFrom * sigmaFrom));
            float sigmaDown = MathF.Sqrt((sigmaTo * sigmaTo) - (sigmaUp * sigmaUp));
            float dt = sigmaDown - sigmaFrom;

            var derivative = Scratch(sample.Length);
            PredictOriginal(predictionType, modelOutput, sample, sigmaFrom, derivative);
            TensorPrimitives.Subtract(sample, derivative, derivative);
            TensorPrimitives.Divide(derivative, sigmaFrom, derivative);
            TensorPrimitives.MultiplyAdd(derivative, dt, sample, sample);

            var noise = Scratch(sample.Length, 1);
            random.NextNormal(noise);
            TensorPrimitives.MultiplyAdd(noise, sigmaUp, sample, sample);
            _index.Advance();
        }
    }
}
