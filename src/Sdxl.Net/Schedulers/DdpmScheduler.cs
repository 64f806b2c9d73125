using System.Numerics.Tensors;
using Sdxl.Net.Randomness;

namespace Sdxl.Net.Schedulers;

/// <summary>
/// Denoising diffusion probabilistic models (Ho et al., 2020), as diffusers' <c>DDPMScheduler</c>
/// with <c>variance_type</c> <c>fixed_small</c> (or <c>fixed_large</c>): draws noise on every step with t &gt; 0.
/// </summary>
public sealed class DdpmScheduler : IScheduler
{
    private readonly float[] _alphasCumprod;
    private readonly PredictionType _predictionType;
    private readonly TimestepSpacing _spacing;
    private readonly int _stepsOffset;
    private readonly float? _clipRange;
    private readonly bool _largeVariance;

    /// <summary>Creates the scheduler from a configuration; absent keys take diffusers' class defaults.</summary>
    /// <exception cref="NotSupportedException">An option has a value this scheduler does not implement.</exception>
    public DdpmScheduler(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.GetBoolean("thresholding", false))
        {
            throw new NotSupportedException("Scheduler option 'thresholding' (dynamic thresholding) is not supported.");
        }

        string variance = config.GetString("variance_type", "fixed_small");
        _largeVariance = variance switch
        {
            "fixed_small" => false,
            "fixed_large" => true,
            _ => throw new NotSupportedException($"Scheduler option 'variance_type' is '{variance}'; supported values are 'fixed_small' and 'fixed_large'."),
        };
        _alphasCumprod = NoiseSchedule.AlphasCumprod(NoiseSchedule.Betas(config));
        _predictionType = NoiseSchedule.ParsePredictionType(config);
        _spacing = NoiseSchedule.ParseTimestepSpacing(config, "leading");
        _stepsOffset = config.GetInt32("steps_offset", 0);
        _clipRange = config.GetBoolean("clip_sample", true) ? (float)config.GetDouble("clip_sample_range", 1.0) : null;
    }

    /// <inheritdoc />
    public string Name => "ddpm";

    /// <inheritdoc />
    public int Order => 1;

    /// <inheritdoc />
    public ISchedulerRun CreateRun(int inferenceSteps)
    {
        NoiseSchedule.ValidateInferenceSteps(inferenceSteps, _alphasCumprod.Length);
        var timesteps = NoiseSchedule.IntegerTimesteps(_spacing, _alphasCumprod.Length, inferenceSteps, _stepsOffset);
        return new Run(this, timesteps, _alphasCumprod.Length / inferenceSteps);
    }

    private sealed class Run(DdpmScheduler owner, long[] timesteps, int stepRatio) : AlphaSchedulerRun(ToSingle(timesteps), owner._alphasCumprod)
    {
        public override void Step(ReadOnlySpan<float> modelOutput, float timestep, Span<float> sample, IRandomSource random)
        {
            SigmaSchedulerRun.CheckLengthsCore(sample.Length, modelOutput.Length, nameof(modelOutput));
            int t = TrainIndex(timestep);
            int previous = t - stepRatio;
            float alphaProd = _alphasCumprod[t];
            float alphaProdPrev = previous >= 0 ? _alphasCumprod[previous] : 1f;
            float betaProd = 1f - alphaProd;
            float betaProdPrev = 1f - alphaProdPrev;
            float currentAlpha = alphaProd / alphaProdPrev;
            float currentBeta = 1f - currentAlpha;

            var original = Scratch(sample.Length);
            PredictOriginal(owner._predictionType, modelOutput, sample, MathF.Sqrt(alphaProd), MathF.Sqrt(betaProd), original);

            if (owner._clipRange is { } range)
            {
                Clip(original, range);
            }

            // μ = (√ᾱ_prev·β_t / (1 − ᾱ_t))·x0 + (√α_t·(1 − ᾱ_prev) / (1 − ᾱ_t))·x_t  (formula 7 of the DDPM paper)
            float originalCoefficient = MathF.Sqrt(alphaProdPrev) * currentBeta / betaProd;
            float sampleCoefficient = MathF.Sqrt(currentAlpha) * betaProdPrev / betaProd;
            TensorPrimitives.Multiply(sample, sampleCoefficient, sample);
            TensorPrimitives.MultiplyAdd(original, originalCoefficient, sample, sample);

            if (t > 0)
            {
                float variance = owner._largeVariance ? currentBeta : MathF.Max(betaProdPrev / betaProd * currentBeta, 1e-20f);
                var noise = Scratch(sample.Length);
                random.NextNormal(noise);
                TensorPrimitives.MultiplyAdd(noise, MathF.Sqrt(variance), sample, sample);
            }

            _index.Advance();
        }
    }
}
