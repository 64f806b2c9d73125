using Sdxl.Net.Randomness;

namespace Sdxl.Net.Schedulers;

/// <summary>
/// DPM-Solver and DPM-Solver++ singlestep sampling (diffusers' <c>DPMSolverSinglestepScheduler</c>, "DPM++ 2S"):
/// each group of <c>solver_order</c> steps restarts from the sample at the group's first timestep.
/// </summary>
/// <remarks>
/// Reads the same options as diffusers, with the same class defaults: <c>algorithm_type</c> (<c>dpmsolver++</c>),
/// <c>solver_order</c> (2), <c>solver_type</c> (<c>midpoint</c>), <c>lower_order_final</c> (false, forced on
/// for uneven step counts and for <c>final_sigmas_type</c> <c>zero</c>), <c>use_karras_sigmas</c>,
/// <c>use_exponential_sigmas</c>, <c>prediction_type</c>, <c>lambda_min_clipped</c> and the beta schedule.
/// The timesteps are always spread evenly over the training range (the class has no <c>timestep_spacing</c>).
/// </remarks>
public sealed class DpmSolverSinglestepScheduler : IScheduler
{
    private const string ClassName = "DPMSolverSinglestepScheduler";

    private readonly DpmSolverOptions _options;
    private readonly DpmSolverSchedule _schedule;

    /// <summary>Creates the scheduler from a diffusers configuration; absent options take the class defaults.</summary>
    /// <param name="config">The <c>scheduler_config.json</c> values, e.g. <see cref="SchedulerConfig.SdxlBase"/>.</param>
    /// <exception cref="ArgumentException">An option has an invalid value or combination.</exception>
    /// <exception cref="NotSupportedException">An option selects a feature this implementation does not provide.</exception>
    public DpmSolverSinglestepScheduler(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        _options = DpmSolverOptions.Read(config, ClassName, defaultLowerOrderFinal: false, supportsLuLambdas: false);
        if (_options.SolverOrder == 3 && _options.IsStochastic)
        {
            throw new NotSupportedException($"{ClassName} has no third-order update for the SDE algorithms; use solver_order 1 or 2.");
        }

        _schedule = DpmSolverSchedule.Create(config, supportsZeroSnrRescale: false);
        string sde = _options.IsStochastic ? "-sde" : string.Empty;
        string karras = _options.SigmaSpacing switch
        {
            DpmSolverSigmaSpacing.Karras => "-karras",
            DpmSolverSigmaSpacing.Exponential => "-exponential",
            _ => string.Empty,
        };
        Name = $"{(_options.PredictsData ? "dpmpp" : "dpm")}-{_options.SolverOrder}s{sde}{karras}";
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public int Order => 1;

    /// <inheritdoc />
    public ISchedulerRun CreateRun(int inferenceSteps)
    {
        NoiseSchedule.ValidateInferenceSteps(inferenceSteps, _schedule.TrainSteps);

        // np.linspace(0, T - 1 - clipped_idx, N + 1).round()[::-1][:-1]
        int lastTimestep = _schedule.LastTimestep(_options.LambdaMinClipped);
        var spaced = _schedule.SpacedTimesteps(TimestepSpacing.Linspace, lastTimestep, inferenceSteps, stepsOffset: 0);
        var (timesteps, sigmas) = _schedule.Build(spaced, inferenceSteps, _options.SigmaSpacing, _options.FinalSigma);

        // diffusers switches lower_order_final on when the steps do not divide into groups or the final sigma is zero.
        bool lowerOrderFinal = _options.LowerOrderFinal
            || inferenceSteps % _options.SolverOrder != 0
            || _options.FinalSigma == FinalSigmaType.Zero;
        return new Run(_options, timesteps, sigmas, OrderList(inferenceSteps, _options.SolverOrder, lowerOrderFinal));
    }

    /// <inheritdoc />
    public override string ToString() => Name;

    /// <summary>The solver order of each step (diffusers' <c>get_order_list</c>).</summary>
    internal static int[] OrderList(int steps, int order, bool lowerOrderFinal)
    {
        var orders = new List<int>(steps);
        void Repeat(int[] pattern, int times)
        {
            for (int i = 0; i < times; i++)
            {
                orders.AddRange(pattern);
            }
        }

        int[] cycle = order switch { 3 => [1, 2, 3], 2 => [1, 2], _ => [1] };
        if (order == 1)
        {
            Repeat(cycle, steps);
        }
        else if (!lowerOrderFinal)
        {
            Repeat(cycle, steps / order);
        }
        else if (order == 3)
        {
            switch (steps % 3)
            {
                case 0:
                    Repeat(cycle, (steps / 3) - 1);
                    orders.AddRange([1, 2, 1]);
                    break;
                case 1:
                    Repeat(cycle, steps / 3);
                    orders.Add(1);
                    break;
                default:
                    Repeat(cycle, steps / 3);
                    orders.AddRange([1, 2]);
                    break;
            }
        }
        else if (steps % 2 == 0)
        {
            Repeat(cycle, (steps / 2) - 1);
            orders.AddRange([1, 1]);
        }
        else
        {
            Repeat(cycle, steps / 2);
            orders.Add(1);
        }

        return orders.ToArray();
    }

    /// <summary>The per-generation state: step index, converted outputs of the current group and its starting sample.</summary>
    private sealed class Run(DpmSolverOptions options, long[] timesteps, float[] sigmas, int[] orders)
        : DpmSolverRun(options, timesteps, sigmas)
    {
        private int _historyCount;
        private float[]? _groupOrigin;

        public override void Step(ReadOnlySpan<float> modelOutput, float timestep, Span<float> sample, IRandomSource random)
        {
            int index = BeginStep(sample.Length, modelOutput.Length, timestep);
            if (EnsureBuffers(sample.Length))
            {
                _groupOrigin = new float[sample.Length];
            }

            var history = _history!;
            var update = _update!;
            var newest = PushModelOutput(modelOutput, sample, index, random);
            _historyCount = Math.Min(_historyCount + 1, history.Length);

            // img2img may start inside a group: fall back to the orders the history allows.
            int order = index < orders.Length ? orders[index] : 1;
            order = Math.Min(order, _historyCount);

            // Each group starts from the sample at its first timestep.
            var origin = _groupOrigin!;
            if (order == 1)
            {
                sample.CopyTo(origin);
            }

            switch (order)
            {
                case 1:
                    update.FirstOrder(_sigmas[index + 1], _sigmas[index], newest, origin, sample, _noise);
                    break;
                case 2:
                    update.SinglestepSecondOrder(
                        _sigmas[index + 1], _sigmas[index], _sigmas[index - 1], newest, history[^2], origin, sample, _noise);
                    break;
                default:
                    update.SinglestepThirdOrder(
                        _sigmas[index + 1], _sigmas[index], _sigmas[index - 1], _sigmas[index - 2], newest, history[^2], history[^3], origin, sample);
                    break;
            }

            EndStep(index);
        }
    }
}
