using System.Numerics.Tensors;
using Sdxl.Net.Randomness;

namespace Sdxl.Net.Schedulers;

/// <summary>
/// The Euler sampler of Karras et al. (2022), algorithm 2, as diffusers' <c>EulerDiscreteScheduler</c>
/// (SDXL's default scheduler).
/// </summary>
/// <remarks>
/// Honours <c>timestep_spacing</c>, <c>steps_offset</c>, <c>use_karras_sigmas</c>, <c>use_exponential_sigmas</c>,
/// <c>sigma_min</c>/<c>sigma_max</c>, <c>final_sigmas_type</c>, <c>interpolation_type</c>, <c>prediction_type</c>,
/// <c>timestep_type</c>, <c>rescale_betas_zero_snr</c> and the beta schedule options. Stochastic churn
/// (<c>s_churn</c>) is not used by the SDXL pipelines and is not implemented, so this sampler never draws noise.
/// Custom <c>timesteps</c> or <c>sigmas</c> lists (diffusers' <c>set_timesteps(timesteps=...)</c> / <c>(sigmas=...)</c>)
/// replace the spaced schedule; a sigmas list includes the final sigma.
/// </remarks>
public sealed class EulerDiscreteScheduler : IScheduler, ICustomTimestepsScheduler, ICustomSigmasScheduler
{
    private readonly SchedulerConfig _config;
    private readonly float[] _alphasCumprod;
    private readonly PredictionType _predictionType;
    private readonly bool _finalSigmaIsMin;
    private readonly bool _continuousTimesteps;

    /// <summary>Creates the scheduler from a configuration; absent keys take diffusers' class defaults.</summary>
    /// <exception cref="NotSupportedException">An option has a value this scheduler does not implement.</exception>
    public EulerDiscreteScheduler(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        _config = config;
        var betas = NoiseSchedule.Betas(config);
        _alphasCumprod = NoiseSchedule.AlphasCumprod(betas);
        if (config.GetBoolean("rescale_betas_zero_snr", false))
        {
            // Close to 0 without being 0 so the first sigma is not infinite.
            _alphasCumprod[^1] = 1f / (1 << 24);
        }

        _predictionType = NoiseSchedule.ParsePredictionType(config);
        if (_predictionType == PredictionType.Sample)
        {
            throw new NotSupportedException("EulerDiscreteScheduler supports prediction_type 'epsilon' and 'v_prediction'.");
        }

        string finalSigmas = config.GetString("final_sigmas_type", "zero");
        _finalSigmaIsMin = finalSigmas switch
        {
            "zero" => false,
            "sigma_min" => true,
            _ => throw new NotSupportedException($"Scheduler option 'final_sigmas_type' is '{finalSigmas}'; supported values are 'zero' and 'sigma_min'."),
        };

        string timestepType = config.GetString("timestep_type", "discrete");
        _continuousTimesteps = timestepType switch
        {
            "discrete" => false,
            "continuous" => true,
            _ => throw new NotSupportedException($"Scheduler option 'timestep_type' is '{timestepType}'; supported values are 'discrete' and 'continuous'."),
        };

        // Validate the remaining options now rather than at the first generation.
        _ = SigmaSchedule.Create(config, _alphasCumprod, 1, supportsInterpolationType: true);
    }

    /// <inheritdoc />
    public string Name => "euler";

    /// <inheritdoc />
    public int Order => 1;

    /// <inheritdoc />
    public ISchedulerRun CreateRun(int inferenceSteps)
    {
        var schedule = SigmaSchedule.Create(_config, _alphasCumprod, inferenceSteps, supportsInterpolationType: true);
        var sigmas = schedule.SigmasWithFinal(FinalSigma());
        float[] timesteps;
        if (_continuousTimesteps && _predictionType == PredictionType.VPrediction)
        {
            timesteps = new float[sigmas.Length - 1];
            for (int i = 0; i < timesteps.Length; i++)
            {
                timesteps[i] = 0.25f * MathF.Log(sigmas[i]);
            }
        }
        else
        {
            timesteps = schedule.TimestepsSingle();
        }

        return new Run(timesteps, sigmas, SigmaSchedule.InitNoiseSigma(sigmas, _config), _predictionType);
    }

    ISchedulerRun ICustomTimestepsScheduler.CreateRun(IReadOnlyList<double> timesteps)
    {
        ArgumentNullException.ThrowIfNull(timesteps);
        if (_config.GetBoolean("use_karras_sigmas", false) || _config.GetBoolean("use_exponential_sigmas", false))
        {
            throw new ArgumentException("Custom timesteps cannot be combined with Karras or exponential sigmas (diffusers refuses it too); give custom sigmas instead.", nameof(timesteps));
        }

        if (_continuousTimesteps && _predictionType == PredictionType.VPrediction)
        {
            throw new ArgumentException("Custom timesteps cannot be combined with continuous v-prediction timesteps (diffusers refuses it too); give custom sigmas instead.", nameof(timesteps));
        }

        // diffusers takes any timestep here and np.interp clamps values beyond the training range; one beyond it is a
        // mistake, not a schedule, so it is refused rather than clamped (the order is checked by CustomSchedules).
        int trainSteps = _alphasCumprod.Length;
        for (int i = 0; i < timesteps.Count; i++)
        {
            if (timesteps[i] > trainSteps - 1)
            {
                throw new ArgumentException($"Custom timesteps must be from 0 to {trainSteps - 1} (num_train_timesteps {trainSteps}); found {timesteps[i]} at position {i}.", nameof(timesteps));
            }
        }

        // np.array(timesteps).astype(np.float32), then the configured sigma interpolation and final sigma.
        var spaced = new double[timesteps.Count];
        for (int i = 0; i < spaced.Length; i++)
        {
            spaced[i] = (float)timesteps[i];
        }

        var trainSigmas = NoiseSchedule.TrainSigmas(_alphasCumprod);
        var interpolated = SigmaSchedule.InterpolatedSigmas(_config, spaced, trainSigmas, spaced.Length, supportsInterpolationType: true);
        var sigmas = new float[interpolated.Length + 1];
        for (int i = 0; i < interpolated.Length; i++)
        {
            sigmas[i] = (float)interpolated[i];
        }

        sigmas[^1] = (float)FinalSigma();
        return new Run(NoiseSchedule.ToSingle(spaced), sigmas, SigmaSchedule.InitNoiseSigma(sigmas, _config), _predictionType);
    }

    ISchedulerRun ICustomSigmasScheduler.CreateRun(IReadOnlyList<double> sigmas)
    {
        ArgumentNullException.ThrowIfNull(sigmas);

        // np.array(sigmas).astype(np.float32); each timestep is _sigma_to_t of a float32 sigma (float32 logs, as numpy
        // keeps the scalar's type); the list is used as given, final sigma included.
        var single = new float[sigmas.Count];
        for (int i = 0; i < single.Length; i++)
        {
            single[i] = (float)sigmas[i];
        }

        var logSigmas = NoiseSchedule.Log(NoiseSchedule.TrainSigmas(_alphasCumprod));
        var timesteps = new float[single.Length - 1];
        for (int i = 0; i < timesteps.Length; i++)
        {
            timesteps[i] = (float)NoiseSchedule.SigmaToTSingle(single[i], logSigmas);
        }

        if (_continuousTimesteps && _predictionType == PredictionType.VPrediction)
        {
            for (int i = 0; i < timesteps.Length; i++)
            {
                timesteps[i] = 0.25f * MathF.Log(single[i]);
            }
        }

        return new Run(timesteps, single, SigmaSchedule.InitNoiseSigma(single, _config), _predictionType);
    }

    private double FinalSigma() => _finalSigmaIsMin ? MathF.Sqrt((1f - _alphasCumprod[0]) / _alphasCumprod[0]) : 0.0;

    private sealed class Run(float[] timesteps, float[] sigmas, float initNoiseSigma, PredictionType predictionType)
        : SigmaSchedulerRun(timesteps, sigmas, initNoiseSigma, order: 1)
    {
        public override void Step(ReadOnlySpan<float> modelOutput, float timestep, Span<float> sample, IRandomSource random)
        {
            int index = CurrentStep(timestep, sample.Length, modelOutput.Length);
            float sigma = _sigmas[index];
            float dt = _sigmas[index + 1] - sigma;

            // derivative = (sample - x0) / σ; prev = sample + derivative·dt
            var derivative = Scratch(sample.Length);
            PredictOriginal(predictionType, modelOutput, sample, sigma, derivative);
            TensorPrimitives.Subtract(sample, derivative, derivative);
            TensorPrimitives.Divide(derivative, sigma, derivative);
            TensorPrimitives.MultiplyAdd(derivative, dt, sample, sample);
            _index.Advance();
        }
    }
}
