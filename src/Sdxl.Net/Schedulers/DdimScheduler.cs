using System.Numerics.Tensors;
using Sdxl.Net.Randomness;

namespace Sdxl.Net.Schedulers;

/// <summary>
/// Denoising diffusion implicit models (Song et al., 2020), as diffusers' <c>DDIMScheduler</c>.
/// </summary>
/// <remarks>
/// <paramref name="eta"/> is the weight of the added noise (0 = deterministic DDIM, 1 = DDPM-like); diffusers takes it
/// per call (<c>step(..., eta)</c>), the SDXL pipelines pass the same value every step. Honours
/// <c>clip_sample</c>, <c>clip_sample_range</c>, <c>set_alpha_to_one</c>, <c>steps_offset</c>, <c>timestep_spacing</c>,
/// <c>prediction_type</c> and <c>rescale_betas_zero_snr</c>; dynamic <c>thresholding</c> is not implemented.
/// </remarks>
/// <param name="config">The scheduler configuration; absent keys take diffusers' class defaults.</param>
/// <param name="eta">The stochasticity η ≥ 0 of every step.</param>
public sealed class DdimScheduler(SchedulerConfig config, float eta = 0f) : IScheduler, IEtaScheduler
{
    private readonly SchedulerConfig _config = config;
    private readonly Options _options = Options.Create(config ?? throw new ArgumentNullException(nameof(config)), eta);

    /// <inheritdoc />
    public string Name => "ddim";

    /// <inheritdoc />
    public int Order => 1;

    IScheduler IEtaScheduler.WithEta(float value) => new DdimScheduler(_config, value);

    /// <inheritdoc />
    public ISchedulerRun CreateRun(int inferenceSteps)
    {
        NoiseSchedule.ValidateInferenceSteps(inferenceSteps, _options.AlphasCumprod.Length);
        var timesteps = NoiseSchedule.IntegerTimesteps(_options.Spacing, _options.AlphasCumprod.Length, inferenceSteps, _options.StepsOffset);
        return new Run(_options, timesteps, _options.AlphasCumprod.Length / inferenceSteps);
    }

    private sealed record Options(
        float[] AlphasCumprod, float FinalAlphaCumprod, PredictionType PredictionType, TimestepSpacing Spacing, int StepsOffset, float? ClipRange, float Eta)
    {
        public static Options Create(SchedulerConfig config, float eta)
        {
            if (!(eta >= 0))
            {
                throw new ArgumentOutOfRangeException(nameof(eta), eta, "eta must be zero or positive.");
            }

            if (config.GetBoolean("thresholding", false))
            {
                throw new NotSupportedException("Scheduler option 'thresholding' (dynamic thresholding) is not supported.");
            }

            var alphasCumprod = NoiseSchedule.AlphasCumprod(NoiseSchedule.Betas(config));
            return new Options(
                alphasCumprod,
                config.GetBoolean("set_alpha_to_one", true) ? 1f : alphasCumprod[0],
                NoiseSchedule.ParsePredictionType(config),
                NoiseSchedule.ParseTimestepSpacing(config, "leading"),
                config.GetInt32("steps_offset", 0),
                config.GetBoolean("clip_sample", true) ? (float)config.GetDouble("clip_sample_range", 1.0) : null,
                eta);
        }
    }

    private sealed class Run(Options options, long[] timesteps, int stepRatio) : AlphaSchedulerRun(ToSingle(timesteps), options.AlphasCumprod)
    {
        public override void Step(ReadOnlySpan<float> modelOutput, float timestep, Span<float> sample, IRandomSource random)
        {
            SigmaSchedulerRun.CheckLengthsCore(sample.Length, modelOutput.Length, nameof(modelOutput));
            int t = TrainIndex(timestep);
            int previous = t - stepRatio;
            float alphaProd = _alphasCumprod[t];
            float alphaProdPrev = previous >= 0 ? _alphasCumprod[previous] : options.FinalAlphaCumprod;
            float betaProd = 1f - alphaProd;
            float sqrtAlpha = MathF.Sqrt(alphaProd);
            float sqrtBeta = MathF.Sqrt(betaProd);

            var original = Scratch(sample.Length);
            var epsilon = Scratch(sample.Length, 1);
            PredictOriginalAndEpsilon(options.PredictionType, modelOutput, sample, sqrtAlpha, sqrtBeta, original, epsilon);

            if (options.ClipRange is { } range)
            {
                Clip(original, range);
            }

            float stdDev = 0f;
            if (options.Eta > 0)
            {
                float betaProdPrev = 1f - alphaProdPrev;
                float variance = betaProdPrev / betaProd * (1f - (alphaProd / alphaProdPrev));
                stdDev = options.Eta * MathF.Sqrt(variance);
            }

            // prev = √ᾱ_prev·x0 + √(1 − ᾱ_prev − σ²)·ε
            float direction = MathF.Sqrt(1f - alphaProdPrev - (stdDev * stdDev));
            TensorPrimitives.Multiply(epsilon, direction, epsilon);
            TensorPrimitives.MultiplyAdd(original, MathF.Sqrt(alphaProdPrev), epsilon, sample);

            if (options.Eta > 0)
            {
                random.NextNormal(epsilon);
                TensorPrimitives.MultiplyAdd(epsilon, stdDev, sample, sample);
            }

            _index.Advance();
        }
    }
}
