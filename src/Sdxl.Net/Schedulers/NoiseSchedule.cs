namespace Sdxl.Net.Schedulers;

/// <summary>What the UNet predicts (diffusers' <c>prediction_type</c>).</summary>
internal enum PredictionType
{
    /// <summary>The added noise ε (SDXL base and refiner).</summary>
    Epsilon,

    /// <summary>The velocity v = α·ε − σ·x₀.</summary>
    VPrediction,

    /// <summary>The clean sample x₀ itself.</summary>
    Sample,
}

/// <summary>How inference timesteps are spread over the training range (diffusers' <c>timestep_spacing</c>).</summary>
internal enum TimestepSpacing
{
    /// <summary><c>arange(0, N) * (T // N) + steps_offset</c>, reversed.</summary>
    Leading,

    /// <summary><c>round(arange(T, 0, -T / N)) - 1</c>.</summary>
    Trailing,

    /// <summary><c>linspace(0, T - 1, N)</c>, reversed.</summary>
    Linspace,
}

/// <summary>
/// The training noise schedule and the numeric helpers every diffusers scheduler shares.
/// </summary>
/// <remarks>
/// Precision follows diffusers exactly: betas and cumulative alphas are torch float32 tensors, while timestep
/// spacing and sigma interpolation run in numpy float64 and are rounded to float32 only where diffusers converts
/// them back to tensors. Getting those conversions in the same places is what makes trajectories agree to the ulp.
/// </remarks>
internal static class NoiseSchedule
{
    /// <summary>
    /// The float32 betas of the training schedule from <c>beta_schedule</c>, <c>beta_start</c>, <c>beta_end</c>,
    /// <c>trained_betas</c> and <c>rescale_betas_zero_snr</c>.
    /// </summary>
    /// <param name="config">The scheduler configuration.</param>
    /// <param name="defaultBetaStart">The class default of <c>beta_start</c>.</param>
    /// <param name="defaultBetaEnd">The class default of <c>beta_end</c>.</param>
    /// <param name="defaultBetaSchedule">The class default of <c>beta_schedule</c>.</param>
    public static float[] Betas(
        SchedulerConfig config,
        double defaultBetaStart = 0.0001,
        double defaultBetaEnd = 0.02,
        string defaultBetaSchedule = "linear")
    {
        int trainSteps = TrainTimesteps(config);
        float[] betas;
        if (config.GetDoubleArray("trained_betas") is { } trained)
        {
            betas = new float[trained.Length];
            for (int i = 0; i < trained.Length; i++)
            {
                betas[i] = (float)trained[i];
            }
        }
        else
        {
            double betaStart = config.GetDouble("beta_start", defaultBetaStart);
            double betaEnd = config.GetDouble("beta_end", defaultBetaEnd);
            string schedule = config.GetString("beta_schedule", defaultBetaSchedule);
            switch (schedule)
            {
                case "linear":
                    betas = TorchLinspace((float)betaStart, (float)betaEnd, trainSteps);
                    break;
                case "scaled_linear":
                    // torch.linspace(start ** 0.5, end ** 0.5, T, dtype=float32) ** 2
                    betas = TorchLinspace((float)Math.Sqrt(betaStart), (float)Math.Sqrt(betaEnd), trainSteps);
                    for (int i = 0; i < betas.Length; i++)
                    {
                        betas[i] *= betas[i];
                    }

                    break;
                case "squaredcos_cap_v2":
                    betas = CosineBetas(trainSteps);
                    break;
                default:
                    throw new NotSupportedException(
                        $"Scheduler option 'beta_schedule' is '{schedule}'; supported values are 'linear', 'scaled_linear' and 'squaredcos_cap_v2'.");
            }
        }

        if (config.GetBoolean("rescale_betas_zero_snr", false))
        {
            betas = RescaleZeroTerminalSnr(betas);
        }

        return betas;
    }

    /// <summary>The number of training timesteps (<c>num_train_timesteps</c>, default 1000).</summary>
    public static int TrainTimesteps(SchedulerConfig config)
    {
        int value = config.GetInt32("num_train_timesteps", 1000);
        if (value < 2)
        {
            throw new ArgumentException($"Scheduler option 'num_train_timesteps' must be at least 2; found {value}.", nameof(config));
        }

        return value;
    }

    /// <summary>The cumulative products of <c>1 - beta</c> (torch.cumprod on float32, accumulated in double as torch's CPU kernel does).</summary>
    public static float[] AlphasCumprod(ReadOnlySpan<float> betas)
    {
        var result = new float[betas.Length];
        double product = 1.0;
        for (int i = 0; i < betas.Length; i++)
        {
            product *= 1.0f - betas[i];
            result[i] = (float)product;
        }

        return result;
    }

    /// <summary>
    /// Rescales betas to a zero terminal SNR (diffusers' <c>rescale_zero_terminal_snr</c>, arXiv:2305.08891, Algorithm 1), in float32.
    /// </summary>
    public static float[] RescaleZeroTerminalSnr(ReadOnlySpan<float> betas)
    {
        var alphasBarSqrt = AlphasCumprod(betas);
        for (int i = 0; i < alphasBarSqrt.Length; i++)
        {
            alphasBarSqrt[i] = MathF.Sqrt(alphasBarSqrt[i]);
        }

        float first = alphasBarSqrt[0];
        float last = alphasBarSqrt[^1];
        float scale = first / (first - last);
        for (int i = 0; i < alphasBarSqrt.Length; i++)
        {
            alphasBarSqrt[i] = (alphasBarSqrt[i] - last) * scale;
        }

        var result = new float[betas.Length];
        float previous = 0;
        for (int i = 0; i < result.Length; i++)
        {
            float alphaBar = alphasBarSqrt[i] * alphasBarSqrt[i];
            float alpha = i == 0 ? alphaBar : alphaBar / previous;
            result[i] = 1f - alpha;
            previous = alphaBar;
        }

        return result;
    }

    /// <summary>The Karras-style training sigmas <c>((1 - ᾱ) / ᾱ) ** 0.5</c>, computed in float32 like the torch expression.</summary>
    public static float[] TrainSigmas(ReadOnlySpan<float> alphasCumprod)
    {
        var sigmas = new float[alphasCumprod.Length];
        for (int i = 0; i < sigmas.Length; i++)
        {
            sigmas[i] = MathF.Sqrt((1f - alphasCumprod[i]) / alphasCumprod[i]);
        }

        return sigmas;
    }

    /// <summary>The natural logarithms of <paramref name="sigmas"/> in float32 (numpy <c>np.log</c> on a float32 array).</summary>
    public static float[] Log(ReadOnlySpan<float> sigmas)
    {
        var result = new float[sigmas.Length];
        for (int i = 0; i < result.Length; i++)
        {
            result[i] = MathF.Log(sigmas[i]);
        }

        return result;
    }

    /// <summary>Parses <c>prediction_type</c>.</summary>
    public static PredictionType ParsePredictionType(SchedulerConfig config, string defaultValue = "epsilon")
    {
        string value = config.GetString("prediction_type", defaultValue);
        return value switch
        {
            "epsilon" => PredictionType.Epsilon,
            "v_prediction" => PredictionType.VPrediction,
            "sample" => PredictionType.Sample,
            _ => throw new NotSupportedException(
                $"Scheduler option 'prediction_type' is '{value}'; supported values are 'epsilon', 'v_prediction' and 'sample'."),
        };
    }

    /// <summary>Parses <c>timestep_spacing</c>.</summary>
    public static TimestepSpacing ParseTimestepSpacing(SchedulerConfig config, string defaultValue = "linspace")
    {
        string value = config.GetString("timestep_spacing", defaultValue);
        return value switch
        {
            "leading" => TimestepSpacing.Leading,
            "trailing" => TimestepSpacing.Trailing,
            "linspace" => TimestepSpacing.Linspace,
            _ => throw new NotSupportedException(
                $"Scheduler option 'timestep_spacing' is '{value}'; supported values are 'leading', 'trailing' and 'linspace'."),
        };
    }

    /// <summary>Throws when <paramref name="inferenceSteps"/> cannot be scheduled over <paramref name="trainSteps"/>.</summary>
    public static void ValidateInferenceSteps(int inferenceSteps, int trainSteps)
    {
        if (inferenceSteps < 1 || inferenceSteps > trainSteps)
        {
            throw new ArgumentOutOfRangeException(
                nameof(inferenceSteps), inferenceSteps, $"The number of inference steps must be between 1 and num_train_timesteps ({trainSteps}).");
        }
    }

    /// <summary>
    /// The inference timesteps in float64, descending, exactly as the sigma-based schedulers (Euler, Heun, LMS, ...) compute them
    /// before any float32 conversion: leading and trailing give whole numbers, linspace gives fractions.
    /// </summary>
    public static double[] SpacedTimesteps(TimestepSpacing spacing, int trainSteps, int inferenceSteps, int stepsOffset)
    {
        var timesteps = new double[inferenceSteps];
        switch (spacing)
        {
            case TimestepSpacing.Linspace:
            {
                var ramp = NumpyLinspace(0, trainSteps - 1, inferenceSteps);
                for (int i = 0; i < inferenceSteps; i++)
                {
                    timesteps[i] = ramp[inferenceSteps - 1 - i];
                }

                break;
            }

            case TimestepSpacing.Leading:
            {
                int stepRatio = trainSteps / inferenceSteps;
                for (int i = 0; i < inferenceSteps; i++)
                {
                    timesteps[i] = ((double)(inferenceSteps - 1 - i) * stepRatio) + stepsOffset;
                }

                break;
            }

            case TimestepSpacing.Trailing:
                return TrailingTimesteps(trainSteps, inferenceSteps);
        }

        return timesteps;
    }

    /// <summary><c>np.round(np.arange(T, 0, -T / N)) - 1</c>.</summary>
    public static double[] TrailingTimesteps(int trainSteps, int inferenceSteps)
    {
        double stepRatio = (double)trainSteps / inferenceSteps;
        int count = (int)Math.Ceiling(trainSteps / stepRatio);
        var timesteps = new double[count];
        for (int i = 0; i < count; i++)
        {
            timesteps[i] = Math.Round(trainSteps + (i * -stepRatio), MidpointRounding.ToEven) - 1;
        }

        return timesteps;
    }

    /// <summary>
    /// Leading timesteps for the alpha-based schedulers (DDIM, DDPM, PNDM, LCM): <c>(arange(0, N) * (T // N)).round()[::-1] + steps_offset</c>
    /// as int64, or the trailing and linspace variants of those classes.
    /// </summary>
    public static long[] IntegerTimesteps(TimestepSpacing spacing, int trainSteps, int inferenceSteps, int stepsOffset)
    {
        var result = new long[inferenceSteps];
        switch (spacing)
        {
            case TimestepSpacing.Linspace:
            {
                var ramp = NumpyLinspace(0, trainSteps - 1, inferenceSteps);
                for (int i = 0; i < inferenceSteps; i++)
                {
                    result[i] = (long)Math.Round(ramp[inferenceSteps - 1 - i], MidpointRounding.ToEven);
                }

                return result;
            }

            case TimestepSpacing.Leading:
            {
                int stepRatio = trainSteps / inferenceSteps;
                for (int i = 0; i < inferenceSteps; i++)
                {
                    result[i] = ((long)(inferenceSteps - 1 - i) * stepRatio) + stepsOffset;
                }

                return result;
            }

            default:
            {
                var trailing = TrailingTimesteps(trainSteps, inferenceSteps);
                result = new long[trailing.Length];
                for (int i = 0; i < trailing.Length; i++)
                {
                    result[i] = (long)trailing[i];
                }

                return result;
            }
        }
    }

    /// <summary>numpy <c>linspace(start, stop, num)</c> in float64 (endpoint included, last value exactly <paramref name="stop"/>).</summary>
    public static double[] NumpyLinspace(double start, double stop, int num)
    {
        var result = new double[num];
        if (num == 1)
        {
            result[0] = start;
            return result;
        }

        double step = (stop - start) / (num - 1);
        for (int i = 0; i < num; i++)
        {
            result[i] = (i * step) + start;
        }

        result[^1] = stop;
        return result;
    }

    /// <summary>
    /// torch <c>linspace(start, end, steps, dtype=float32)</c> on the CPU (x86-64, AVX2 kernel): the first half counts up from
    /// <paramref name="start"/>, the second half counts down from <paramref name="end"/>, in float32.
    /// </summary>
    public static float[] TorchLinspace(float start, float end, int steps)
    {
        var result = new float[steps];
        if (steps == 1)
        {
            result[0] = start;
            return result;
        }

        float step = (end - start) / (steps - 1);
        int halfway = steps / 2;

        // The AVX2 kernel fills blocks of 2 x 8 lanes as base + lane * step from one base per 8 lanes;
        // the remainder goes through the scalar path.
        const int Lanes = 8;
        int vectorized = steps - (steps % (2 * Lanes));
        for (int block = 0; block < vectorized; block += Lanes)
        {
            float baseValue = Position(block);
            for (int lane = 0; lane < Lanes; lane++)
            {
                result[block + lane] = baseValue + (lane * step);
            }
        }

        for (int i = vectorized; i < steps; i++)
        {
            result[i] = Position(i);
        }

        return result;

        // Compiled with contraction, `start + step * i` becomes a fused multiply-add.
        float Position(int i) => i < halfway
            ? MathF.FusedMultiplyAdd(step, i, start)
            : MathF.FusedMultiplyAdd(-step, steps - i - 1, end);
    }

    /// <summary>numpy <c>interp(x, arange(len(fp)), fp)</c> for one point, in float64.</summary>
    public static double Interp(double x, ReadOnlySpan<float> fp)
    {
        if (x <= 0)
        {
            return fp[0];
        }

        int last = fp.Length - 1;
        if (x >= last)
        {
            return fp[last];
        }

        int j = (int)Math.Floor(x);
        if (j == x)
        {
            return fp[j];
        }

        double slope = ((double)fp[j + 1] - fp[j]) / 1.0;
        return (slope * (x - j)) + fp[j];
    }

    /// <summary>
    /// The lower end of <c>_sigma_to_t</c>'s interpolation bracket: log_sigmas increases with t, and low_idx is the last
    /// index whose log-sigma is at most <paramref name="logSigma"/> (0 when none), at most the second-to-last index.
    /// </summary>
    public static int LowerLogSigmaIndex(double logSigma, ReadOnlySpan<float> logSigmas)
    {
        int count = 0;
        for (int i = 0; i < logSigmas.Length && logSigma - logSigmas[i] >= 0; i++)
        {
            count++;
        }

        return Math.Min(Math.Max(count - 1, 0), logSigmas.Length - 2);
    }

    /// <summary>
    /// The fractional training timestep of <paramref name="sigma"/> by interpolating in log-sigma space
    /// (diffusers' <c>_sigma_to_t</c>).
    /// </summary>
    public static double SigmaToT(double sigma, ReadOnlySpan<float> logSigmas)
    {
        double logSigma = Math.Log(Math.Max(sigma, 1e-10));
        int low = LowerLogSigmaIndex(logSigma, logSigmas);
        int high = low + 1;
        float lowLog = logSigmas[low];
        float highLog = logSigmas[high];

        // numpy: (float32 - float64) / (float32 - float32), so the denominator is a float32 difference.
        double w = (lowLog - logSigma) / (double)(lowLog - highLog);
        w = Math.Clamp(w, 0, 1);
        return ((1 - w) * low) + (w * high);
    }

    /// <summary>
    /// <c>_sigma_to_t</c> of a float32 sigma (a custom sigmas list): numpy keeps the scalar's float32 through the log and
    /// the interpolation weight; only the final blend of the integer indices is float64.
    /// </summary>
    public static double SigmaToTSingle(float sigma, ReadOnlySpan<float> logSigmas)
    {
        float logSigma = MathF.Log(MathF.Max(sigma, 1e-10f));
        int count = 0;
        for (int i = 0; i < logSigmas.Length && logSigma - logSigmas[i] >= 0f; i++)
        {
            count++;
        }

        int low = Math.Min(Math.Max(count - 1, 0), logSigmas.Length - 2);
        float w = (logSigmas[low] - logSigma) / (logSigmas[low] - logSigmas[low + 1]);
        w = Math.Clamp(w, 0f, 1f);
        return ((double)(1f - w) * low) + ((double)w * (low + 1));
    }

    /// <summary>Karras et al. (2022) noise levels from <paramref name="sigmaMax"/> down to <paramref name="sigmaMin"/> (<c>_convert_to_karras</c>).</summary>
    public static double[] KarrasSigmas(double sigmaMin, double sigmaMax, int count, double rho = 7.0)
    {
        var ramp = NumpyLinspace(0, 1, count);
        double minInvRho = Math.Pow(sigmaMin, 1 / rho);
        double maxInvRho = Math.Pow(sigmaMax, 1 / rho);
        var sigmas = new double[count];
        for (int i = 0; i < count; i++)
        {
            sigmas[i] = Math.Pow(maxInvRho + (ramp[i] * (minInvRho - maxInvRho)), rho);
        }

        return sigmas;
    }

    /// <summary>Noise levels evenly spaced in log space (<c>_convert_to_exponential</c>).</summary>
    public static double[] ExponentialSigmas(double sigmaMin, double sigmaMax, int count)
    {
        var ramp = NumpyLinspace(Math.Log(sigmaMax), Math.Log(sigmaMin), count);
        for (int i = 0; i < count; i++)
        {
            ramp[i] = Math.Exp(ramp[i]);
        }

        return ramp;
    }

    /// <summary>Converts a float64 array to float32 (numpy <c>astype(np.float32)</c>).</summary>
    public static float[] ToSingle(ReadOnlySpan<double> values)
    {
        var result = new float[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            result[i] = (float)values[i];
        }

        return result;
    }

    /// <summary>Betas from the squared-cosine alpha-bar of Nichol &amp; Dhariwal (<c>betas_for_alpha_bar</c>, max beta 0.999), computed in float64.</summary>
    private static float[] CosineBetas(int trainSteps)
    {
        static double AlphaBar(double t) => Math.Pow(Math.Cos((t + 0.008) / 1.008 * Math.PI / 2), 2);

        var betas = new float[trainSteps];
        for (int i = 0; i < trainSteps; i++)
        {
            double t1 = (double)i / trainSteps;
            double t2 = (double)(i + 1) / trainSteps;
            betas[i] = (float)Math.Min(1 - (AlphaBar(t2) / AlphaBar(t1)), 0.999);
        }

        return betas;
    }
}
