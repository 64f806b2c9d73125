namespace Sdxl.Net.Schedulers;

/// <summary>The DPM-Solver variant (<c>algorithm_type</c>).</summary>
internal enum DpmSolverAlgorithm
{
    /// <summary>DPM-Solver (arXiv:2206.00927), integrating the noise prediction.</summary>
    DpmSolver,

    /// <summary>DPM-Solver++ (arXiv:2211.01095), integrating the data prediction.</summary>
    DpmSolverPlusPlus,

    /// <summary>The stochastic DPM-Solver.</summary>
    SdeDpmSolver,

    /// <summary>The stochastic DPM-Solver++.</summary>
    SdeDpmSolverPlusPlus,
}

/// <summary>The second-order update rule (<c>solver_type</c>).</summary>
internal enum DpmSolverType
{
    /// <summary>The midpoint rule (diffusers' recommendation).</summary>
    Midpoint,

    /// <summary>Heun's rule.</summary>
    Heun,
}

/// <summary>The options the DPM-Solver schedulers share, read once from a <see cref="SchedulerConfig"/>.</summary>
internal sealed record DpmSolverOptions
{
    public required DpmSolverAlgorithm Algorithm { get; init; }

    public required DpmSolverType SolverType { get; init; }

    public required int SolverOrder { get; init; }

    public required PredictionType PredictionType { get; init; }

    public required bool LowerOrderFinal { get; init; }

    public required FinalSigmaType FinalSigma { get; init; }

    public required DpmSolverSigmaSpacing SigmaSpacing { get; init; }

    public required double LambdaMinClipped { get; init; }

    /// <summary>Whether the solver integrates the data prediction x₀ (the ++ variants).</summary>
    public bool PredictsData => Algorithm is DpmSolverAlgorithm.DpmSolverPlusPlus or DpmSolverAlgorithm.SdeDpmSolverPlusPlus;

    /// <summary>Whether each step draws noise.</summary>
    public bool IsStochastic => Algorithm is DpmSolverAlgorithm.SdeDpmSolver or DpmSolverAlgorithm.SdeDpmSolverPlusPlus;

    /// <summary>Reads and validates the options diffusers' DPM-Solver constructors accept, with their class defaults.</summary>
    /// <param name="config">The scheduler configuration.</param>
    /// <param name="className">The diffusers class name, for messages.</param>
    /// <param name="defaultLowerOrderFinal">The class default of <c>lower_order_final</c>.</param>
    /// <param name="supportsLuLambdas">Whether the class has <c>use_lu_lambdas</c>.</param>
    public static DpmSolverOptions Read(SchedulerConfig config, string className, bool defaultLowerOrderFinal, bool supportsLuLambdas)
    {
        string algorithmName = config.GetString("algorithm_type", "dpmsolver++");
        var algorithm = algorithmName switch
        {
            "dpmsolver" => DpmSolverAlgorithm.DpmSolver,
            "dpmsolver++" or "deis" => DpmSolverAlgorithm.DpmSolverPlusPlus, // diffusers maps "deis" to dpmsolver++
            "sde-dpmsolver" => DpmSolverAlgorithm.SdeDpmSolver,
            "sde-dpmsolver++" => DpmSolverAlgorithm.SdeDpmSolverPlusPlus,
            _ => throw new NotSupportedException(
                $"Scheduler option 'algorithm_type' is '{algorithmName}'; {className} supports 'dpmsolver++', 'sde-dpmsolver++', 'dpmsolver' and 'sde-dpmsolver'."),
        };

        string solverTypeName = config.GetString("solver_type", "midpoint");
        var solverType = solverTypeName switch
        {
            "midpoint" or "logrho" or "bh1" or "bh2" => DpmSolverType.Midpoint, // diffusers maps the other families' names to midpoint
            "heun" => DpmSolverType.Heun,
            _ => throw new NotSupportedException(
                $"Scheduler option 'solver_type' is '{solverTypeName}'; {className} supports 'midpoint' and 'heun'."),
        };

        int order = config.GetInt32("solver_order", 2);
        if (order is < 1 or > 3)
        {
            throw new ArgumentException($"Scheduler option 'solver_order' must be 1, 2 or 3; found {order}.", nameof(config));
        }

        if (order == 3 && algorithm == DpmSolverAlgorithm.SdeDpmSolver)
        {
            throw new NotSupportedException($"{className} has no third-order update for 'sde-dpmsolver'; use solver_order 1 or 2, or 'sde-dpmsolver++'.");
        }

        var finalSigma = DpmSolverSchedule.ParseFinalSigmaType(config);
        if (finalSigma == FinalSigmaType.Zero && algorithm is DpmSolverAlgorithm.DpmSolver or DpmSolverAlgorithm.SdeDpmSolver)
        {
            throw new ArgumentException(
                $"Scheduler option 'final_sigmas_type' 'zero' is not supported with algorithm_type '{algorithmName}'; use 'sigma_min'.",
                nameof(config));
        }

        if (config.GetBoolean("thresholding", false))
        {
            throw new NotSupportedException("Scheduler option 'thresholding' (dynamic thresholding for pixel-space models) is not supported for latent diffusion.");
        }

        if (config.Has("variance_type"))
        {
            throw new NotSupportedException(
                $"Scheduler option 'variance_type' is '{config.GetString("variance_type", string.Empty)}'; only null (no learned variance) is supported.");
        }

        return new DpmSolverOptions
        {
            Algorithm = algorithm,
            SolverType = solverType,
            SolverOrder = order,
            PredictionType = NoiseSchedule.ParsePredictionType(config),
            LowerOrderFinal = config.GetBoolean("lower_order_final", defaultLowerOrderFinal),
            FinalSigma = finalSigma,
            SigmaSpacing = DpmSolverSchedule.ParseSigmaSpacing(config, supportsLuLambdas),
            LambdaMinClipped = config.GetDouble("lambda_min_clipped", double.NegativeInfinity),
        };
    }
}
