using Sdxl.Net.Randomness;

namespace Sdxl.Net.Schedulers;

/// <summary>
/// DPM-Solver and DPM-Solver++ multistep sampling (diffusers' <c>DPMSolverMultistepScheduler</c>), including the
/// stochastic <c>sde-dpmsolver++</c> variant: the "DPM++ 2M", "DPM++ 2M Karras" and "DPM++ 2M SDE" samplers.
/// </summary>
/// <remarks>
/// Reads the same options as diffusers, with the same class defaults: <c>algorithm_type</c> (<c>dpmsolver++</c>),
/// <c>solver_order</c> (2), <c>solver_type</c> (<c>midpoint</c>), <c>lower_order_final</c> (true),
/// <c>euler_at_final</c>, <c>final_sigmas_type</c> (<c>zero</c>), <c>use_karras_sigmas</c>,
/// <c>use_exponential_sigmas</c>, <c>use_lu_lambdas</c>, <c>timestep_spacing</c> (<c>linspace</c>),
/// <c>steps_offset</c>, <c>prediction_type</c>, <c>lambda_min_clipped</c>, <c>rescale_betas_zero_snr</c> and the beta schedule.
/// Stochastic variants draw one standard normal of the sample's size per step from the generation's random source,
/// as diffusers' <c>randn_tensor</c> does.
/// </remarks>
public sealed class DpmSolverMultistepScheduler : IScheduler
{
    private const string ClassName = "DPMSolverMultistepScheduler";

    private readonly DpmSolverOptions _options;
    private readonly DpmSolverSchedule _schedule;
    private readonly TimestepSpacing _spacing;
    private readonly int _stepsOffset;
    private readonly bool _eulerAtFinal;

    /// <summary>Creates the scheduler from a diffusers configuration; absent options take the class defaults.</summary>
    /// <param name="config">The <c>scheduler_config.json</c> values, e.g. <see cref="SchedulerConfig.SdxlBase"/>.</param>
    /// <exception cref="ArgumentException">An option has an invalid value or combination.</exception>
    /// <exception cref="NotSupportedException">An option selects a feature this implementation does not provide.</exception>
    public DpmSolverMultistepScheduler(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        _options = DpmSolverOptions.Read(config, ClassName, defaultLowerOrderFinal: true, supportsLuLambdas: true);
        _schedule = DpmSolverSchedule.Create(config, supportsZeroSnrRescale: true);
        _spacing = NoiseSchedule.ParseTimestepSpacing(config, "linspace");
        _stepsOffset = config.GetInt32("steps_offset", 0);
        _eulerAtFinal = config.GetBoolean("euler_at_final", false);
        Name = BuildName(_options);
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public int Order => 1;

    /// <inheritdoc />
    public ISchedulerRun CreateRun(int inferenceSteps)
    {
        NoiseSchedule.ValidateInferenceSteps(inferenceSteps, _schedule.TrainSteps);
        int lastTimestep = _schedule.LastTimestep(_options.LambdaMinClipped);
        var spaced = _schedule.SpacedTimesteps(_spacing, lastTimestep, inferenceSteps, _stepsOffset);
        var (timesteps, sigmas) = _schedule.Build(spaced, inferenceSteps, _options.SigmaSpacing, _options.FinalSigma);
        return new Run(_options, _eulerAtFinal, timesteps, sigmas);
    }

    /// <inheritdoc />
    public override string ToString() => Name;

    private static string BuildName(DpmSolverOptions options)
    {
        string family = options.PredictsData ? "dpmpp" : "dpm";
        string sde = options.IsStochastic ? "-sde" : string.Empty;
        string sigmas = options.SigmaSpacing switch
        {
            DpmSolverSigmaSpacing.Karras => "-karras",
            DpmSolverSigmaSpacing.Exponential => "-exponential",
            DpmSolverSigmaSpacing.LuLambdas => "-lu",
            _ => string.Empty,
        };
        return $"{family}-{options.SolverOrder}m{sde}{sigmas}";
    }

    /// <summary>The per-generation state: step index, the history of converted model outputs and scratch buffers.</summary>
    private sealed class Run(DpmSolverOptions options, bool eulerAtFinal, long[] timesteps, float[] sigmas)
        : DpmSolverRun(options, timesteps, sigmas)
    {
        private int _lowerOrderCount;

        public override void Step(ReadOnlySpan<float> modelOutput, float timestep, Span<float> sample, IRandomSource random)
        {
            int index = BeginStep(sample.Length, modelOutput.Length, timestep);
            int count = _timesteps.Length;
            EnsureBuffers(sample.Length);

            // Improves numerical stability for few steps, and avoids a second-order step into σ = 0.
            bool lowerOrderFinal = index == count - 1
                && (eulerAtFinal || (_options.LowerOrderFinal && count < 15) || _options.FinalSigma == FinalSigmaType.Zero);
            bool lowerOrderSecond = index == count - 2 && _options.LowerOrderFinal && count < 15;

            var newest = PushModelOutput(modelOutput, sample, index, random);
            var history = _history!;
            var update = _update!;
            if (_options.SolverOrder == 1 || _lowerOrderCount < 1 || lowerOrderFinal)
            {
                update.FirstOrder(_sigmas[index + 1], _sigmas[index], newest, sample, sample, _noise);
            }
            else if (_options.SolverOrder == 2 || _lowerOrderCount < 2 || lowerOrderSecond)
            {
                update.MultistepSecondOrder(
                    _sigmas[index + 1], _sigmas[index], _sigmas[index - 1], newest, history[^2], sample, _noise);
            }
            else
            {
                update.MultistepThirdOrder(
                    _sigmas[index + 1], _sigmas[index], _sigmas[index - 1], _sigmas[index - 2], newest, history[^2], history[^3], sample, _noise);
            }

            if (_lowerOrderCount < _options.SolverOrder)
            {
                _lowerOrderCount++;
            }

            EndStep(index);
        }
    }
}
