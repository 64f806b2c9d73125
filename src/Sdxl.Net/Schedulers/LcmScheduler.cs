using System.Numerics.Tensors;
using Sdxl.Net.Randomness;

namespace Sdxl.Net.Schedulers;

/// <summary>
/// The multistep consistency sampler of latent consistency models (Luo et al., 2023), as diffusers' <c>LCMScheduler</c>:
/// each step predicts the denoised sample with the consistency boundary condition and, except on the last step,
/// noises it again to the next timestep.
/// </summary>
/// <remarks>
/// Timesteps are drawn from the <c>original_inference_steps</c> schedule the model was distilled on. Honours
/// <c>original_inference_steps</c>, <c>timestep_scaling</c>, <c>set_alpha_to_one</c>, <c>clip_sample</c>,
/// <c>clip_sample_range</c>, <c>prediction_type</c>, <c>rescale_betas_zero_snr</c> and the beta schedule options;
/// dynamic <c>thresholding</c> is not implemented. Custom timesteps (<c>set_timesteps(timesteps=...)</c>) are whole
/// training timesteps in descending order.
/// </remarks>
public sealed class LcmScheduler : IScheduler, ICustomTimestepsScheduler
{
    private const float SigmaData = 0.5f;

    private readonly float[] _alphasCumprod;
    private readonly float _finalAlphaCumprod;
    private readonly PredictionType _predictionType;
    private readonly int _originalSteps;
    private readonly float _timestepScaling;
    private readonly float? _clipRange;

    /// <summary>Creates the scheduler from a configuration; absent keys take diffusers' class defaults.</summary>
    /// <exception cref="NotSupportedException">An option has a value this scheduler does not implement.</exception>
    public LcmScheduler(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.GetBoolean("thresholding", false))
        {
            throw new NotSupportedException("Scheduler option 'thresholding' (dynamic thresholding) is not supported.");
        }

        _alphasCumprod = NoiseSchedule.AlphasCumprod(NoiseSchedule.Betas(config, 0.00085, 0.012, "scaled_linear"));
        _finalAlphaCumprod = config.GetBoolean("set_alpha_to_one", true) ? 1f : _alphasCumprod[0];
        _predictionType = NoiseSchedule.ParsePredictionType(config);
        _originalSteps = DistillationSchedule.OriginalSteps(config, _alphasCumprod.Length);

        _timestepScaling = (float)config.GetDouble("timestep_scaling", 10.0);
        _clipRange = config.GetBoolean("clip_sample", false) ? (float)config.GetDouble("clip_sample_range", 1.0) : null;
    }

    /// <inheritdoc />
    public string Name => "lcm";

    /// <inheritdoc />
    public int Order => 1;

    /// <inheritdoc />
    public ISchedulerRun CreateRun(int inferenceSteps) =>
        new Run(this, DistillationSchedule.Timesteps(_alphasCumprod.Length, _originalSteps, inferenceSteps));

    ISchedulerRun ICustomTimestepsScheduler.CreateRun(IReadOnlyList<double> timesteps) =>
        new Run(this, DistillationSchedule.CustomTimesteps(timesteps, _alphasCumprod.Length));

    private sealed class Run(LcmScheduler owner, float[] timesteps) : AlphaSchedulerRun(timesteps, owner._alphasCumprod)
    {
        public override void Step(ReadOnlySpan<float> modelOutput, float timestep, Span<float> sample, IRandomSource random)
        {
            int index = CurrentStep(timestep, sample.Length, modelOutput.Length);

            int t = TrainIndex(timestep);
            bool last = index == _timesteps.Length - 1;
            int previous = last ? t : (int)_timesteps[index + 1];
            float alphaProd = _alphasCumprod[t];
            float alphaProdPrev = previous >= 0 ? _alphasCumprod[previous] : owner._finalAlphaCumprod;
            float sqrtAlpha = MathF.Sqrt(alphaProd);
            float sqrtBeta = MathF.Sqrt(1f - alphaProd);

            // Boundary-condition scalings c_skip = σ_d² / (s² + σ_d²), c_out = s / √(s² + σ_d²) with s = t · timestep_scaling.
            float scaled = t * owner._timestepScaling;
            float denominator = (scaled * scaled) + (SigmaData * SigmaData);
            float cSkip = SigmaData * SigmaData / denominator;
            float cOut = scaled / MathF.Sqrt(denominator);

            var original = Scratch(sample.Length);
            PredictOriginal(owner._predictionType, modelOutput, sample, sqrtAlpha, sqrtBeta, original);

            if (owner._clipRange is { } range)
            {
                Clip(original, range);
            }

            // denoised = c_out · x₀ + c_skip · x
            TensorPrimitives.Multiply(original, cOut, original);
            TensorPrimitives.Multiply(sample, cSkip, sample);
            TensorPrimitives.Add(original, sample, sample);

            if (!last)
            {
                // Noise the denoised sample to the next timestep: √ᾱ_prev · denoised + √(1 − ᾱ_prev) · z.
                var noise = Scratch(sample.Length, 1);
                random.NextNormal(noise);
                TensorPrimitives.Multiply(noise, MathF.Sqrt(1f - alphaProdPrev), noise);
                TensorPrimitives.Multiply(sample, MathF.Sqrt(alphaProdPrev), sample);
                TensorPrimitives.Add(sample, noise, sample);
            }

            _index.Advance();
        }
    }
}
