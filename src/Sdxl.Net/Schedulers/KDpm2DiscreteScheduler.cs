using System.Numerics.Tensors;
using Sdxl.Net.Randomness;

namespace Sdxl.Net.Schedulers;

/// <summary>
/// The DPM-Solver-2 sampler of k-diffusion (<c>sample_dpm_2</c>), as diffusers' <c>KDPM2DiscreteScheduler</c>:
/// every step but the last evaluates the model a second time at the geometric mean of the two noise levels,
/// so the schedule has 2N − 1 timesteps.
/// </summary>
/// <remarks>
/// Honours <c>timestep_spacing</c>, <c>steps_offset</c>, <c>use_karras_sigmas</c>, <c>use_exponential_sigmas</c>,
/// <c>prediction_type</c> (<c>epsilon</c> or <c>v_prediction</c>) and the beta schedule options.
/// <see cref="ISchedulerRun.Sigmas"/> holds diffusers' <c>sigmas</c> as they are: the first noise level, every later
/// one twice, and a final zero (2N + 2 values).
/// </remarks>
public sealed class KDpm2DiscreteScheduler : IScheduler
{
    private readonly SchedulerConfig _config;
    private readonly float[] _alphasCumprod;
    private readonly PredictionType _predictionType;

    /// <summary>Creates the scheduler from a configuration; absent keys take diffusers' class defaults.</summary>
    /// <exception cref="NotSupportedException">An option has a value this scheduler does not implement.</exception>
    public KDpm2DiscreteScheduler(SchedulerConfig config)
    {
        (_config, _alphasCumprod, _predictionType) = KDpm2Schedule.ReadConfig(config, nameof(KDpm2DiscreteScheduler));
    }

    /// <inheritdoc />
    public string Name => "kdpm2";

    /// <inheritdoc />
    public int Order => 2;

    /// <inheritdoc />
    public ISchedulerRun CreateRun(int inferenceSteps)
    {
        var schedule = KDpm2Schedule.Create(_config, _alphasCumprod, inferenceSteps);
        var sigmas = schedule.Sigmas;

        // sigmas_interpol[i] = exp(lerp(log σ_i, log σ_{i-1}, ½)): the midpoint (in log space) towards the previous level.
        var interpolated = new float[sigmas.Length];
        for (int i = 0; i < sigmas.Length; i++)
        {
            interpolated[i] = KDpm2Schedule.LogMidpoint(sigmas[i], sigmas[(i + sigmas.Length - 1) % sigmas.Length]);
        }

        // timesteps = [t_0, t½_1, t_1, t½_2, t_2, ...]: each step's midpoint timestep precedes its own timestep.
        int n = schedule.Timesteps.Length;
        var timesteps = new float[(2 * n) - 1];
        timesteps[0] = schedule.Timesteps[0];
        for (int i = 1; i < n; i++)
        {
            timesteps[(2 * i) - 1] = KDpm2Schedule.SigmaToT(interpolated[i], schedule.LogTrainSigmas);
            timesteps[2 * i] = schedule.Timesteps[i];
        }

        var allSigmas = KDpm2Schedule.RepeatAfterFirst(sigmas);
        return new Run(
            timesteps,
            allSigmas,
            KDpm2Schedule.RepeatAfterFirst(interpolated),
            SigmaSchedule.InitNoiseSigma(allSigmas, _config),
            _predictionType);
    }

    private sealed class Run(float[] timesteps, float[] sigmas, float[] interpolatedSigmas, float initNoiseSigma, PredictionType predictionType)
        : SigmaSchedulerRun(timesteps, sigmas, initNoiseSigma, order: 2)
    {
        private bool _secondOrder;

        private protected override float InputSigma(int stepIndex) => _secondOrder ? interpolatedSigmas[stepIndex] : _sigmas[stepIndex];

        public override void Step(ReadOnlySpan<float> modelOutput, float timestep, Span<float> sample, IRandomSource random)
        {
            int index = CurrentStep(timestep, sample.Length, modelOutput.Length);
            var derivative = Scratch(sample.Length);
            var saved = Scratch(sample.Length, 1);
            if (!_secondOrder)
            {
                // Euler half-step to the interpolated noise level; remember where it started.
                float sigma = _sigmas[index];
                float sigmaMid = interpolatedSigmas[index + 1];
                KDpm2Schedule.Derivative(predictionType, modelOutput, sample, sigma, derivative);
                sample.CopyTo(saved);
                TensorPrimitives.MultiplyAdd(derivative, sigmaMid - sigma, sample, sample);
                _secondOrder = true;
            }
            else
            {
                // DPM-Solver-2: the full step from the saved sample with the midpoint derivative.
                float sigma = _sigmas[index - 1];
                float sigmaMid = interpolatedSigmas[index];
                float sigmaNext = _sigmas[index];
                KDpm2Schedule.Derivative(predictionType, modelOutput, sample, sigmaMid, derivative);
                TensorPrimitives.MultiplyAdd(derivative, sigmaNext - sigma, saved, sample);
                _secondOrder = false;
            }

            _index.Advance();
        }
    }
}

/// <summary>The schedule construction shared by <see cref="KDpm2DiscreteScheduler"/> and <see cref="KDpm2AncestralDiscreteScheduler"/>.</summary>
internal static class KDpm2Schedule
{
    /// <summary>
    /// Validates a configuration: its ᾱ (with these classes' default betas), its prediction type, and the options a
    /// one-step schedule reads, so that a bad value fails at construction.
    /// </summary>
    public static (SchedulerConfig Config, float[] AlphasCumprod, PredictionType PredictionType) ReadConfig(SchedulerConfig config, string className)
    {
        ArgumentNullException.ThrowIfNull(config);
        var alphasCumprod = NoiseSchedule.AlphasCumprod(NoiseSchedule.Betas(config, 0.00085, 0.012));
        var predictionType = ParsePredictionType(config, className);
        _ = SigmaSchedule.Create(config, alphasCumprod, 1);
        return (config, alphasCumprod, predictionType);
    }

    /// <summary>The k-diffusion derivative <c>(sample − x₀) / σ</c> at noise level <paramref name="sigma"/>.</summary>
    public static void Derivative(
        PredictionType predictionType, ReadOnlySpan<float> modelOutput, ReadOnlySpan<float> sample, float sigma, Span<float> destination)
    {
        SigmaSchedulerRun.PredictOriginal(predictionType, modelOutput, sample, sigma, destination);
        TensorPrimitives.Subtract(sample, destination, destination);
        TensorPrimitives.Divide(destination, sigma, destination);
    }

    /// <summary>The float32 timesteps (N) and sigmas (N + 1, final zero) of <c>set_timesteps</c>, before interpolation.</summary>
    public static (float[] Timesteps, float[] Sigmas, float[] LogTrainSigmas) Create(SchedulerConfig config, float[] alphasCumprod, int inferenceSteps)
    {
        var schedule = SigmaSchedule.Create(config, alphasCumprod, inferenceSteps);
        var timesteps = schedule.Timesteps;
        if (config.GetBoolean("use_karras_sigmas", false))
        {
            // These classes round the Karras timesteps (np.round: half to even); Euler keeps them fractional.
            timesteps = (double[])timesteps.Clone();
            for (int i = 0; i < timesteps.Length; i++)
            {
                timesteps[i] = Math.Round(timesteps[i], MidpointRounding.ToEven);
            }
        }

        return (NoiseSchedule.ToSingle(timesteps), schedule.SigmasWithFinal(), schedule.LogTrainSigmas);
    }

    /// <summary>Parses <c>prediction_type</c>; these classes do not implement <c>sample</c>.</summary>
    public static PredictionType ParsePredictionType(SchedulerConfig config, string className)
    {
        var predictionType = NoiseSchedule.ParsePredictionType(config);
        return predictionType == PredictionType.Sample
            ? throw new NotSupportedException($"{className} supports prediction_type 'epsilon' and 'v_prediction'.")
            : predictionType;
    }

    /// <summary>
    /// <c>exp(lerp(log a, log b, 0.5))</c> in float32 as torch computes it (<c>b − (b − a)·0.5</c> for a weight of ½);
    /// NaN or zero at the ends of the schedule, where one side is σ = 0.
    /// </summary>
    public static float LogMidpoint(float a, float b)
    {
        float logA = MathF.Log(a);
        float logB = MathF.Log(b);
        return MathF.Exp(logB - ((logB - logA) * 0.5f));
    }

    /// <summary>
    /// diffusers' <c>_sigma_to_t</c> applied to a float32 torch scalar against the float32 log-sigma tensor: unlike the
    /// float64 numpy path of <see cref="NoiseSchedule.SigmaToT"/>, every operation stays in float32.
    /// </summary>
    /// <remarks>
    /// Agrees with diffusers to a few float32 ulps (≈1e-5 of a timestep), not always bit for bit: the mixed torch/numpy
    /// scalar arithmetic of the reference rounds at points this port does not reproduce exactly.
    /// </remarks>
    public static float SigmaToT(float sigma, ReadOnlySpan<float> logSigmas)
    {
        float logSigma = MathF.Log(MathF.Max(sigma, 1e-10f));

        // Comparing in float64 picks the same bracket: a - b >= 0 holds exactly when a >= b in either precision.
        int low = NoiseSchedule.LowerLogSigmaIndex(logSigma, logSigmas);
        int high = low + 1;
        float w = (logSigmas[low] - logSigma) / (logSigmas[low] - logSigmas[high]);
        w = Math.Clamp(w, 0f, 1f);
        float lowPart = (1f - w) * low;
        float highPart = w * high;
        return lowPart + highPart;
    }

    /// <summary><c>cat([x[:1], x[1:].repeat_interleave(2), x[-1:]])</c>: 2·len(x) values.</summary>
    public static float[] RepeatAfterFirst(float[] values)
    {
        var result = new float[2 * values.Length];
        result[0] = values[0];
        for (int i = 1; i < values.Length; i++)
        {
            result[(2 * i) - 1] = values[i];
            result[2 * i] = values[i];
        }

        result[^1] = values[^1];
        return result;
    }
}
