namespace Sdxl.Net.Schedulers;

/// <summary>
/// The timesteps and noise levels of the k-diffusion style schedulers (Euler, Euler ancestral, Heun, KDPM2, LMS),
/// built exactly like their diffusers <c>set_timesteps</c>.
/// </summary>
internal sealed class SigmaSchedule
{
    private SigmaSchedule(double[] timesteps, double[] sigmas, float[] logTrainSigmas, float[] trainSigmas)
    {
        Timesteps = timesteps;
        Sigmas = sigmas;
        LogTrainSigmas = logTrainSigmas;
        TrainSigmas = trainSigmas;
    }

    /// <summary>The N timesteps in float64, descending (fractional for Karras and linspace schedules).</summary>
    public double[] Timesteps { get; }

    /// <summary>The N noise levels in float64, before the final sigma is appended.</summary>
    public double[] Sigmas { get; }

    /// <summary>The float32 logarithms of the training sigmas.</summary>
    public float[] LogTrainSigmas { get; }

    /// <summary>The float32 training sigmas.</summary>
    public float[] TrainSigmas { get; }

    /// <summary>Builds the schedule of <paramref name="inferenceSteps"/> steps from the training alphas.</summary>
    /// <param name="config">The scheduler configuration (timestep_spacing, steps_offset, interpolation_type, use_*_sigmas, sigma_min/max).</param>
    /// <param name="alphasCumprod">The float32 cumulative alphas.</param>
    /// <param name="inferenceSteps">The number of steps.</param>
    /// <param name="defaultSpacing">The class default of timestep_spacing.</param>
    /// <param name="supportsInterpolationType">Whether the class honours interpolation_type (only Euler does).</param>
    /// <param name="float32Timesteps">Whether the class rounds its spaced timesteps to float32 before interpolating sigmas (all but LMS).</param>
    public static SigmaSchedule Create(
        SchedulerConfig config,
        float[] alphasCumprod,
        int inferenceSteps,
        string defaultSpacing = "linspace",
        bool supportsInterpolationType = false,
        bool float32Timesteps = true)
    {
        int trainSteps = alphasCumprod.Length;
        NoiseSchedule.ValidateInferenceSteps(inferenceSteps, trainSteps);
        var spacing = NoiseSchedule.ParseTimestepSpacing(config, defaultSpacing);
        int stepsOffset = config.GetInt32("steps_offset", 0);
        var timesteps = NoiseSchedule.SpacedTimesteps(spacing, trainSteps, inferenceSteps, stepsOffset);
        if (float32Timesteps)
        {
            for (int i = 0; i < timesteps.Length; i++)
            {
                timesteps[i] = (float)timesteps[i];
            }
        }
        var trainSigmas = NoiseSchedule.TrainSigmas(alphasCumprod);
        var logSigmas = NoiseSchedule.Log(trainSigmas);

        var sigmas = InterpolatedSigmas(config, timesteps, trainSigmas, inferenceSteps, supportsInterpolationType);

        bool karras = config.GetBoolean("use_karras_sigmas", false);
        bool exponential = config.GetBoolean("use_exponential_sigmas", false);
        if (config.GetBoolean("use_beta_sigmas", false))
        {
            throw new NotSupportedException("Scheduler option 'use_beta_sigmas' is not supported; use 'use_karras_sigmas' or 'use_exponential_sigmas'.");
        }

        if (karras && exponential)
        {
            throw new ArgumentException("Only one of 'use_karras_sigmas' and 'use_exponential_sigmas' can be true.", nameof(config));
        }

        if (karras || exponential)
        {
            double sigmaMin = config.GetNullableDouble("sigma_min") ?? sigmas[^1];
            double sigmaMax = config.GetNullableDouble("sigma_max") ?? sigmas[0];
            sigmas = karras
                ? NoiseSchedule.KarrasSigmas(sigmaMin, sigmaMax, inferenceSteps)
                : NoiseSchedule.ExponentialSigmas(sigmaMin, sigmaMax, inferenceSteps);
            timesteps = new double[sigmas.Length];
            for (int i = 0; i < sigmas.Length; i++)
            {
                timesteps[i] = NoiseSchedule.SigmaToT(sigmas[i], logSigmas);
            }
        }

        return new SigmaSchedule(timesteps, sigmas, logSigmas, trainSigmas);
    }

    /// <summary>
    /// The noise levels at <paramref name="timesteps"/>: numpy <c>interp</c> into the training sigmas (float64), or, for
    /// <c>interpolation_type</c> <c>log_linear</c>, torch's float32 log-linear ramp of N + 1 values, as diffusers builds them.
    /// </summary>
    public static double[] InterpolatedSigmas(SchedulerConfig config, double[] timesteps, float[] trainSigmas, int inferenceSteps, bool supportsInterpolationType)
    {
        string interpolation = supportsInterpolationType ? config.GetString("interpolation_type", "linear") : "linear";
        if (interpolation == "linear")
        {
            var sigmas = new double[timesteps.Length];
            for (int i = 0; i < sigmas.Length; i++)
            {
                sigmas[i] = NoiseSchedule.Interp(timesteps[i], trainSigmas);
            }

            return sigmas;
        }

        if (interpolation == "log_linear")
        {
            // torch.linspace(log(sigmas[-1]), log(sigmas[0]), N + 1).exp() in float32, as the Euler scheduler does.
            var logs = NoiseSchedule.TorchLinspace(MathF.Log(trainSigmas[^1]), MathF.Log(trainSigmas[0]), inferenceSteps + 1);
            var sigmas = new double[logs.Length];
            for (int i = 0; i < logs.Length; i++)
            {
                sigmas[i] = MathF.Exp(logs[i]);
            }

            return sigmas;
        }

        throw new NotSupportedException(
            $"Scheduler option 'interpolation_type' is '{interpolation}'; supported values are 'linear' and 'log_linear'.");
    }

    /// <summary>The float32 sigmas with <paramref name="finalSigma"/> appended (<c>np.concatenate([sigmas, [last]]).astype(np.float32)</c>).</summary>
    public float[] SigmasWithFinal(double finalSigma = 0.0)
    {
        var result = new float[Sigmas.Length + 1];
        for (int i = 0; i < Sigmas.Length; i++)
        {
            result[i] = (float)Sigmas[i];
        }

        result[^1] = (float)finalSigma;
        return result;
    }

    /// <summary>The float32 timesteps.</summary>
    public float[] TimestepsSingle() => NoiseSchedule.ToSingle(Timesteps);

    /// <summary>
    /// diffusers' <c>init_noise_sigma</c> for sigma schedulers: the largest sigma, or <c>sqrt(max² + 1)</c> for leading spacing (float32).
    /// </summary>
    public static float InitNoiseSigma(ReadOnlySpan<float> sigmas, SchedulerConfig config, string defaultSpacing = "linspace")
    {
        float max = float.NegativeInfinity;
        foreach (var s in sigmas)
        {
            max = MathF.Max(max, s);
        }

        var spacing = NoiseSchedule.ParseTimestepSpacing(config, defaultSpacing);
        return spacing is TimestepSpacing.Linspace or TimestepSpacing.Trailing ? max : MathF.Sqrt((max * max) + 1f);
    }
}

/// <summary>
/// diffusers' step-index bookkeeping: the index is fixed by <c>set_begin_index</c>, or looked up from the first timestep
/// passed to <c>scale_model_input</c>/<c>step</c>, then advanced by one per step.
/// </summary>
internal struct StepIndexTracker
{
    private int? _begin;
    private int? _step;

    /// <summary>The current step index, or <see langword="null"/> before the first step.</summary>
    public readonly int? StepIndex => _step;

    /// <summary>The begin index set by <see cref="SetBegin"/>, if any.</summary>
    public readonly int? BeginIndex => _begin;

    /// <summary>Sets the begin index (<c>set_begin_index</c>).</summary>
    public void SetBegin(int beginIndex, int count)
    {
        if (beginIndex < 0 || beginIndex >= count)
        {
            throw new ArgumentOutOfRangeException(nameof(beginIndex), beginIndex, $"The begin index must be between 0 and {count - 1}.");
        }

        _begin = beginIndex;
    }

    /// <summary>Returns the current step index, initialising it from <paramref name="timestep"/> on the first call.</summary>
    public int Current(ReadOnlySpan<float> timesteps, float timestep)
    {
        _step ??= _begin ?? IndexFor(timesteps, timestep);
        return _step.Value;
    }

    /// <summary>Advances to the next step.</summary>
    public void Advance() => _step = (_step ?? 0) + 1;

    /// <summary>
    /// The index used by <c>add_noise</c>: the timestep lookup without a begin index, the current step once stepping
    /// (inpainting), otherwise the begin index.
    /// </summary>
    public readonly int ForAddNoise(ReadOnlySpan<float> timesteps, float timestep) => _begin is null
        ? IndexFor(timesteps, timestep)
        : _step ?? _begin.Value;

    /// <summary>
    /// diffusers' <c>index_for_timestep</c>: the position of <paramref name="timestep"/>, taking the second match when it
    /// occurs twice (second-order schedules) so that a run started mid-schedule does not skip a sigma.
    /// </summary>
    public static int IndexFor(ReadOnlySpan<float> timesteps, float timestep)
    {
        int first = -1;
        for (int i = 0; i < timesteps.Length; i++)
        {
            if (timesteps[i] == timestep)
            {
                if (first >= 0)
                {
                    return i;
                }

                first = i;
            }
        }

        if (first < 0)
        {
            throw new ArgumentException($"Timestep {timestep} is not part of this schedule.", nameof(timestep));
        }

        return first;
    }
}
