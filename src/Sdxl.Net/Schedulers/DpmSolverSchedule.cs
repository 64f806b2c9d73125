namespace Sdxl.Net.Schedulers;

/// <summary>How the DPM-Solver family places its inference noise levels.</summary>
internal enum DpmSolverSigmaSpacing
{
    /// <summary>The training sigmas at the spaced integer timesteps.</summary>
    Interpolated,

    /// <summary>Karras et al. (2022), ρ = 7 (<c>use_karras_sigmas</c>).</summary>
    Karras,

    /// <summary>Evenly spaced in log σ (<c>use_exponential_sigmas</c>).</summary>
    Exponential,

    /// <summary>Evenly spaced in log-SNR, Lu et al. (<c>use_lu_lambdas</c>).</summary>
    LuLambdas,
}

/// <summary>The noise level appended after the last step (<c>final_sigmas_type</c>).</summary>
internal enum FinalSigmaType
{
    /// <summary>σ = 0: the last step returns the data prediction itself.</summary>
    Zero,

    /// <summary>The smallest sigma of the schedule.</summary>
    SigmaMin,
}

/// <summary>
/// The training schedule of a VP-type solver (DPM-Solver multistep and singlestep, UniPC) and the computation of
/// its inference timesteps and sigmas (<c>set_timesteps</c>).
/// </summary>
internal sealed class DpmSolverSchedule
{
    private DpmSolverSchedule(int trainSteps, float[] trainSigmas, float[] logTrainSigmas, float[] lambdas)
    {
        TrainSteps = trainSteps;
        TrainSigmas = trainSigmas;
        LogTrainSigmas = logTrainSigmas;
        Lambdas = lambdas;
    }

    /// <summary>The number of training timesteps.</summary>
    public int TrainSteps { get; }

    /// <summary>The float32 training sigmas <c>√((1 − ᾱ) / ᾱ)</c>, ascending with t.</summary>
    public float[] TrainSigmas { get; }

    /// <summary>The float32 natural logarithms of <see cref="TrainSigmas"/>.</summary>
    public float[] LogTrainSigmas { get; }

    /// <summary>The float32 half log-SNR of each training timestep, descending with t.</summary>
    public float[] Lambdas { get; }

    /// <summary>Builds the training schedule from the beta options of <paramref name="config"/> (class defaults: linear 0.0001..0.02).</summary>
    /// <param name="config">The scheduler configuration.</param>
    /// <param name="supportsZeroSnrRescale">Whether the class has <c>rescale_betas_zero_snr</c>; classes without it ignore the key.</param>
    public static DpmSolverSchedule Create(SchedulerConfig config, bool supportsZeroSnrRescale)
    {
        bool rescale = supportsZeroSnrRescale && config.GetBoolean("rescale_betas_zero_snr", false);
        var betas = NoiseSchedule.Betas(config.With("rescale_betas_zero_snr", rescale));
        var alphasCumprod = NoiseSchedule.AlphasCumprod(betas);
        if (rescale)
        {
            // diffusers: close to 0 without being 0 so the first sigma is not infinite (FP16's smallest subnormal).
            alphasCumprod[^1] = 1f / (1 << 24);
        }

        var sigmas = NoiseSchedule.TrainSigmas(alphasCumprod);
        var lambdas = new float[alphasCumprod.Length];
        for (int i = 0; i < lambdas.Length; i++)
        {
            lambdas[i] = DpmSolverMath.Log(MathF.Sqrt(alphasCumprod[i])) - DpmSolverMath.Log(MathF.Sqrt(1f - alphasCumprod[i]));
        }

        return new DpmSolverSchedule(alphasCumprod.Length, sigmas, NoiseSchedule.Log(sigmas), lambdas);
    }

    /// <summary>Reads which of the mutually exclusive sigma spacings the configuration selects.</summary>
    /// <param name="config">The scheduler configuration.</param>
    /// <param name="supportsLuLambdas">Whether the class has <c>use_lu_lambdas</c>.</param>
    public static DpmSolverSigmaSpacing ParseSigmaSpacing(SchedulerConfig config, bool supportsLuLambdas)
    {
        if (config.GetBoolean("use_beta_sigmas", false))
        {
            throw new NotSupportedException("Scheduler option 'use_beta_sigmas' is not supported; use 'use_karras_sigmas' or 'use_exponential_sigmas'.");
        }

        if (config.GetBoolean("use_flow_sigmas", false))
        {
            throw new NotSupportedException("Scheduler option 'use_flow_sigmas' (flow-matching models) is not supported by SDXL schedulers.");
        }

        bool karras = config.GetBoolean("use_karras_sigmas", false);
        bool exponential = config.GetBoolean("use_exponential_sigmas", false);
        bool lu = supportsLuLambdas && config.GetBoolean("use_lu_lambdas", false);
        if ((karras ? 1 : 0) + (exponential ? 1 : 0) + (lu ? 1 : 0) > 1)
        {
            throw new ArgumentException(
                "Only one of the scheduler options 'use_karras_sigmas', 'use_exponential_sigmas' and 'use_lu_lambdas' can be true.",
                nameof(config));
        }

        return karras ? DpmSolverSigmaSpacing.Karras
            : exponential ? DpmSolverSigmaSpacing.Exponential
            : lu ? DpmSolverSigmaSpacing.LuLambdas
            : DpmSolverSigmaSpacing.Interpolated;
    }

    /// <summary>Parses <c>final_sigmas_type</c> (default <c>"zero"</c>).</summary>
    public static FinalSigmaType ParseFinalSigmaType(SchedulerConfig config)
    {
        string value = config.GetString("final_sigmas_type", "zero");
        return value switch
        {
            "zero" => FinalSigmaType.Zero,
            "sigma_min" => FinalSigmaType.SigmaMin,
            _ => throw new ArgumentException(
                $"Scheduler option 'final_sigmas_type' is '{value}'; expected 'zero' or 'sigma_min'.", nameof(config)),
        };
    }

    /// <summary>
    /// The number of training timesteps left after clipping λ below <paramref name="lambdaMinClipped"/>
    /// (<c>num_train_timesteps − searchsorted(flip(λ), lambda_min_clipped)</c>).
    /// </summary>
    public int LastTimestep(double lambdaMinClipped)
    {
        // flip(λ) ascends; searchsorted (left) counts the values strictly below the threshold.
        int clipped = 0;
        for (int i = Lambdas.Length - 1; i >= 0 && Lambdas[i] < lambdaMinClipped; i--)
        {
            clipped++;
        }

        return TrainSteps - clipped;
    }

    /// <summary>
    /// The integer timesteps of the DPM-Solver/UniPC <c>set_timesteps</c>, which space N + 1 points and drop the last
    /// (unlike the Euler-family spacing of N points).
    /// </summary>
    /// <param name="spacing">The <c>timestep_spacing</c>.</param>
    /// <param name="lastTimestep">The end of the usable training range (<see cref="LastTimestep"/>, or the training step count).</param>
    /// <param name="inferenceSteps">N.</param>
    /// <param name="stepsOffset">The <c>steps_offset</c> added by leading spacing.</param>
    public long[] SpacedTimesteps(TimestepSpacing spacing, int lastTimestep, int inferenceSteps, int stepsOffset)
    {
        switch (spacing)
        {
            case TimestepSpacing.Linspace:
            {
                // np.linspace(0, last - 1, N + 1).round()[::-1][:-1]
                var ramp = NoiseSchedule.NumpyLinspace(0, lastTimestep - 1, inferenceSteps + 1);
                var result = new long[inferenceSteps];
                for (int i = 0; i < inferenceSteps; i++)
                {
                    result[i] = (long)Math.Round(ramp[inferenceSteps - i], MidpointRounding.ToEven);
                }

                return result;
            }

            case TimestepSpacing.Leading:
            {
                // (np.arange(0, N + 1) * (last // (N + 1))).round()[::-1][:-1] + steps_offset
                long stepRatio = lastTimestep / (inferenceSteps + 1);
                var result = new long[inferenceSteps];
                for (int i = 0; i < inferenceSteps; i++)
                {
                    result[i] = ((inferenceSteps - i) * stepRatio) + stepsOffset;
                }

                return result;
            }

            default:
            {
                // np.arange(last, 0, -T / N).round() - 1
                double stepRatio = (double)TrainSteps / inferenceSteps;
                int count = (int)Math.Ceiling(lastTimestep / stepRatio);
                var result = new long[count];
                for (int i = 0; i < count; i++)
                {
                    result[i] = (long)Math.Round(lastTimestep + (i * -stepRatio), MidpointRounding.ToEven) - 1;
                }

                return result;
            }
        }
    }

    /// <summary>
    /// Completes <c>set_timesteps</c>: converts the spaced timesteps into sigmas (or replaces both by a Karras,
    /// exponential or Lu schedule) and appends the final sigma.
    /// </summary>
    /// <param name="spacedTimesteps">The timesteps from <see cref="SpacedTimesteps"/>.</param>
    /// <param name="inferenceSteps">N, the length of a converted schedule.</param>
    /// <param name="sigmaSpacing">The sigma placement.</param>
    /// <param name="finalSigma">The final sigma type.</param>
    /// <param name="sigmaMin">A configured <c>sigma_min</c> for the Karras/exponential schedules (UniPC), or <see langword="null"/>.</param>
    /// <param name="sigmaMax">A configured <c>sigma_max</c> for the Karras/exponential schedules (UniPC), or <see langword="null"/>.</param>
    /// <returns>The int64 timesteps and the float32 sigmas (one longer).</returns>
    public (long[] Timesteps, float[] Sigmas) Build(
        long[] spacedTimesteps,
        int inferenceSteps,
        DpmSolverSigmaSpacing sigmaSpacing,
        FinalSigmaType finalSigma,
        double? sigmaMin = null,
        double? sigmaMax = null)
    {
        double minSigma = sigmaMin ?? TrainSigmas[0];
        double maxSigma = sigmaMax ?? TrainSigmas[^1];
        double[] sigmas;
        long[] timesteps;
        switch (sigmaSpacing)
        {
            case DpmSolverSigmaSpacing.Karras:
                sigmas = NoiseSchedule.KarrasSigmas(minSigma, maxSigma, inferenceSteps);
                timesteps = SigmasToTimesteps(sigmas, round: true);
                break;
            case DpmSolverSigmaSpacing.Exponential:
                sigmas = NoiseSchedule.ExponentialSigmas(minSigma, maxSigma, inferenceSteps);

                // diffusers does not round here: the float64 timesteps are truncated by .to(torch.int64).
                timesteps = SigmasToTimesteps(sigmas, round: false);
                break;
            case DpmSolverSigmaSpacing.LuLambdas:
            {
                // lambdas = flip(log σ); linear in λ between its ends (ρ = 1), then σ = exp(λ).
                double lambdaMin = LogTrainSigmas[0];
                double lambdaMax = LogTrainSigmas[^1];
                var ramp = NoiseSchedule.NumpyLinspace(0, 1, inferenceSteps);
                sigmas = new double[inferenceSteps];
                for (int i = 0; i < sigmas.Length; i++)
                {
                    sigmas[i] = Math.Exp(lambdaMax + (ramp[i] * (lambdaMin - lambdaMax)));
                }

                timesteps = SigmasToTimesteps(sigmas, round: true);
                break;
            }

            default:
                timesteps = spacedTimesteps;
                sigmas = new double[timesteps.Length];
                for (int i = 0; i < sigmas.Length; i++)
                {
                    // np.interp at integer points, clamped to the training range.
                    sigmas[i] = TrainSigmas[(int)Math.Clamp(timesteps[i], 0, TrainSteps - 1)];
                }

                break;
        }

        var result = new float[sigmas.Length + 1];
        for (int i = 0; i < sigmas.Length; i++)
        {
            result[i] = (float)sigmas[i];
        }

        result[^1] = finalSigma switch
        {
            FinalSigmaType.Zero => 0f,
            _ when sigmaSpacing == DpmSolverSigmaSpacing.Interpolated => TrainSigmas[0],
            _ => (float)sigmas[^1],
        };
        return (timesteps, result);
    }

    private long[] SigmasToTimesteps(double[] sigmas, bool round)
    {
        var timesteps = new long[sigmas.Length];
        for (int i = 0; i < sigmas.Length; i++)
        {
            double t = NoiseSchedule.SigmaToT(sigmas[i], LogTrainSigmas);
            timesteps[i] = round ? (long)Math.Round(t, MidpointRounding.ToEven) : (long)t;
        }

        return timesteps;
    }
}
