using Sdxl.Net.Randomness;

namespace Sdxl.Net.Schedulers;

/// <summary>
/// UniPC multistep sampling (diffusers' <c>UniPCMultistepScheduler</c>, arXiv:2302.04867): a predictor (UniP) step
/// followed, at the next step, by a corrector (UniC) that reuses the new model evaluation at no extra cost.
/// </summary>
/// <remarks>
/// Reads the same options as diffusers, with the same class defaults: <c>solver_order</c> (2), <c>solver_type</c>
/// (<c>bh2</c>), <c>predict_x0</c> (true), <c>lower_order_final</c> (true), <c>disable_corrector</c> (none),
/// <c>use_karras_sigmas</c>, <c>use_exponential_sigmas</c>, <c>sigma_min</c>, <c>sigma_max</c>,
/// <c>timestep_spacing</c> (<c>linspace</c>), <c>steps_offset</c>, <c>final_sigmas_type</c> (<c>zero</c>),
/// <c>prediction_type</c>, <c>rescale_betas_zero_snr</c> and the beta schedule. A custom predictor
/// (<c>solver_p</c>) is not supported.
/// </remarks>
public sealed class UniPcMultistepScheduler : IScheduler
{
    private readonly UniPcOptions _options;
    private readonly DpmSolverSchedule _schedule;
    private readonly TimestepSpacing _spacing;
    private readonly int _stepsOffset;
    private readonly DpmSolverSigmaSpacing _sigmaSpacing;
    private readonly FinalSigmaType _finalSigma;
    private readonly double? _sigmaMin;
    private readonly double? _sigmaMax;

    /// <summary>Creates the scheduler from a diffusers configuration; absent options take the class defaults.</summary>
    /// <param name="config">The <c>scheduler_config.json</c> values, e.g. <see cref="SchedulerConfig.SdxlBase"/>.</param>
    /// <exception cref="ArgumentException">An option has an invalid value or combination.</exception>
    /// <exception cref="NotSupportedException">An option selects a feature this implementation does not provide (e.g. <c>solver_p</c>).</exception>
    public UniPcMultistepScheduler(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.Has("solver_p"))
        {
            throw new NotSupportedException(
                "Scheduler option 'solver_p' (a custom predictor scheduler) is not supported; UniPC uses its own UniP predictor.");
        }

        if (config.GetBoolean("thresholding", false))
        {
            throw new NotSupportedException("Scheduler option 'thresholding' (dynamic thresholding for pixel-space models) is not supported for latent diffusion.");
        }

        int order = config.GetInt32("solver_order", 2);
        if (order < 1)
        {
            throw new ArgumentException($"Scheduler option 'solver_order' must be at least 1; found {order}.", nameof(config));
        }

        string solverType = config.GetString("solver_type", "bh2");
        bool bh1 = solverType switch
        {
            "bh1" => true,
            "bh2" or "midpoint" or "heun" or "logrho" => false, // diffusers maps the other families' names to bh2
            _ => throw new NotSupportedException($"Scheduler option 'solver_type' is '{solverType}'; UniPCMultistepScheduler supports 'bh1' and 'bh2'."),
        };

        _options = new UniPcOptions(
            order,
            NoiseSchedule.ParsePredictionType(config),
            config.GetBoolean("predict_x0", true),
            bh1,
            config.GetBoolean("lower_order_final", true),
            new HashSet<int>(config.GetInt32Array("disable_corrector")));
        _schedule = DpmSolverSchedule.Create(config, supportsZeroSnrRescale: true);
        _spacing = NoiseSchedule.ParseTimestepSpacing(config, "linspace");
        _stepsOffset = config.GetInt32("steps_offset", 0);
        _sigmaSpacing = DpmSolverSchedule.ParseSigmaSpacing(config, supportsLuLambdas: false);
        _finalSigma = DpmSolverSchedule.ParseFinalSigmaType(config);
        _sigmaMin = config.GetNullableDouble("sigma_min");
        _sigmaMax = config.GetNullableDouble("sigma_max");
        Name = _sigmaSpacing switch
        {
            DpmSolverSigmaSpacing.Karras => "unipc-karras",
            DpmSolverSigmaSpacing.Exponential => "unipc-exponential",
            _ => "unipc",
        };
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public int Order => 1;

    /// <inheritdoc />
    public ISchedulerRun CreateRun(int inferenceSteps)
    {
        NoiseSchedule.ValidateInferenceSteps(inferenceSteps, _schedule.TrainSteps);
        var spaced = _schedule.SpacedTimesteps(_spacing, _schedule.TrainSteps, inferenceSteps, _stepsOffset);
        var (timesteps, sigmas) = _schedule.Build(spaced, inferenceSteps, _sigmaSpacing, _finalSigma, _sigmaMin, _sigmaMax);
        return new UniPcRun(_options, timesteps, sigmas);
    }

    /// <inheritdoc />
    public override string ToString() => Name;
}

/// <summary>The UniPC options a run needs.</summary>
internal sealed record UniPcOptions(
    int SolverOrder,
    PredictionType PredictionType,
    bool PredictX0,
    bool UseBh1,
    bool LowerOrderFinal,
    IReadOnlySet<int> DisabledCorrectorSteps);

/// <summary>The per-generation UniPC state: history of converted outputs, the last predictor input and scratch buffers.</summary>
internal sealed class UniPcRun(UniPcOptions options, long[] timesteps, float[] sigmas) : DpmFamilyRun(timesteps, sigmas)
{
    private readonly UniPcOptions _options = options;

    // history[^1] is the newest converted output; _spare receives the next one before the history shifts.
    private float[]? _spare;
    private float[]? _lastSample;
    private float[]? _scratch;
    private float[]? _residual;
    private float[][]? _differences;
    private bool _hasLastSample;
    private int _lastOrder;
    private int _lowerOrderCount;

    public override void Step(ReadOnlySpan<float> modelOutput, float timestep, Span<float> sample, IRandomSource random)
    {
        int index = BeginStep(sample.Length, modelOutput.Length, timestep);
        int count = _timesteps.Length;
        EnsureBuffers(sample.Length);
        var converted = _spare!;
        DpmSolverMath.ConvertModelOutput(
            _options.PredictionType, _options.PredictX0, modelOutput, sample, _sigmas[index], converted, _scratch);

        // UniC: correct the previous predictor's result with the new model evaluation.
        if (index > 0 && !_options.DisabledCorrectorSteps.Contains(index - 1) && _hasLastSample)
        {
            Corrector(index, converted, sample);
        }

        _spare = PushHistory(converted);

        int order = _options.LowerOrderFinal ? Math.Min(_options.SolverOrder, count - index) : _options.SolverOrder;
        order = Math.Min(order, _lowerOrderCount + 1); // warm-up of the multistep history
        _lastOrder = order;

        sample.CopyTo(_lastSample);
        _hasLastSample = true;
        Predictor(index, order, sample);

        if (_lowerOrderCount < _options.SolverOrder)
        {
            _lowerOrderCount++;
        }

        EndStep(index);
    }

    /// <summary>diffusers' <c>multistep_uni_p_bh_update</c>: predicts the sample at <c>sigmas[index + 1]</c> in place.</summary>
    private void Predictor(int index, int order, Span<float> sample)
    {
        var history = _history!;
        var m0 = history[^1];
        var t = VpNoiseLevel.FromSigma(_sigmas[index + 1]);
        var s0 = VpNoiseLevel.FromSigma(_sigmas[index]);
        float h = t.Lambda - s0.Lambda;

        Span<float> rks = stackalloc float[order];
        for (int i = 1; i < order; i++)
        {
            var si = VpNoiseLevel.FromSigma(_sigmas[index - i]);
            float rk = (si.Lambda - s0.Lambda) / h;
            rks[i - 1] = rk;
            DpmSolverMath.DividedDifference(history[^(i + 1)], m0, rk, _differences![i - 1]);
        }

        rks[order - 1] = 1f;
        var coefficients = new UniPcCoefficients(rks, h, _options.PredictX0, _options.UseBh1);

        // x_t_ = (σ_t/σ_s0)·x − (α_t·hφ1)·m0, or the noise-prediction form.
        Combine(t, s0, coefficients.HPhi1, sample, m0, sample);
        if (order > 1)
        {
            // Order 2 uses the simplified ρ = 0.5; higher orders solve the (order−1)² system.
            Span<float> rhos = stackalloc float[order - 1];
            if (order == 2)
            {
                rhos[0] = 0.5f;
            }
            else
            {
                coefficients.Solve(order - 1, rhos);
            }

            WeightedSum(rhos, order - 1, _residual!);
            float scale = (_options.PredictX0 ? t.Alpha : t.Sigma) * coefficients.Bh;
            DpmSolverMath.AddScaled(sample, -scale, _residual, _scratch!);
        }
    }

    /// <summary>diffusers' <c>multistep_uni_c_bh_update</c>: corrects <paramref name="sample"/> (at <c>sigmas[index]</c>) in place.</summary>
    private void Corrector(int index, ReadOnlySpan<float> modelT, Span<float> sample)
    {
        int order = _lastOrder;
        var history = _history!;
        var m0 = history[^1];
        var t = VpNoiseLevel.FromSigma(_sigmas[index]);
        var s0 = VpNoiseLevel.FromSigma(_sigmas[index - 1]);
        float h = t.Lambda - s0.Lambda;

        Span<float> rks = stackalloc float[order];
        for (int i = 1; i < order; i++)
        {
            var si = VpNoiseLevel.FromSigma(_sigmas[index - (i + 1)]);
            float rk = (si.Lambda - s0.Lambda) / h;
            rks[i - 1] = rk;
            DpmSolverMath.DividedDifference(history[^(i + 1)], m0, rk, _differences![i - 1]);
        }

        rks[order - 1] = 1f;
        var coefficients = new UniPcCoefficients(rks, h, _options.PredictX0, _options.UseBh1);
        Span<float> rhos = stackalloc float[order];
        if (order == 1)
        {
            rhos[0] = 0.5f;
        }
        else
        {
            coefficients.Solve(order, rhos);
        }

        // residual = Σ ρ_k·D1_k + ρ_last·(model_t − m0)
        var residual = _residual!;
        var scratch = _scratch!;
        TensorSubtractInto(modelT, m0, scratch);
        if (order > 1)
        {
            WeightedSum(rhos, order - 1, residual);
            DpmSolverMath.AddScaled(residual, rhos[order - 1], scratch, scratch);
        }
        else
        {
            DpmSolverMath.Scale(scratch, rhos[0], residual);
        }

        Combine(t, s0, coefficients.HPhi1, _lastSample, m0, sample);
        float scale = (_options.PredictX0 ? t.Alpha : t.Sigma) * coefficients.Bh;
        DpmSolverMath.AddScaled(sample, -scale, residual, scratch);
    }

    /// <summary>The first two terms of both updates, written to <paramref name="destination"/>.</summary>
    private void Combine(VpNoiseLevel t, VpNoiseLevel s0, float hPhi1, ReadOnlySpan<float> x, ReadOnlySpan<float> m0, Span<float> destination)
    {
        if (_options.PredictX0)
        {
            DpmSolverMath.Scale(x, t.Sigma / s0.Sigma, destination);
            DpmSolverMath.AddScaled(destination, -(t.Alpha * hPhi1), m0, _scratch!);
        }
        else
        {
            DpmSolverMath.Scale(x, t.Alpha / s0.Alpha, destination);
            DpmSolverMath.AddScaled(destination, -(t.Sigma * hPhi1), m0, _scratch!);
        }
    }

    /// <summary><c>einsum("k,bkc...->bc...", rhos, D1s)</c> over the first <paramref name="count"/> differences.</summary>
    private void WeightedSum(ReadOnlySpan<float> rhos, int count, Span<float> destination)
    {
        var differences = _differences!;
        DpmSolverMath.Scale(differences[0], rhos[0], destination);
        for (int k = 1; k < count; k++)
        {
            DpmSolverMath.AddScaled(destination, rhos[k], differences[k], _scratch!);
        }
    }

    private static void TensorSubtractInto(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> destination) =>
        System.Numerics.Tensors.TensorPrimitives.Subtract(a, b, destination);

    private void EnsureBuffers(int length)
    {
        if (!EnsureHistory(_options.SolverOrder, length))
        {
            return;
        }

        _differences = NewBuffers(Math.Max(_options.SolverOrder - 1, 1), length);
        _spare = new float[length];
        _lastSample = new float[length];
        _scratch = new float[length];
        _residual = new float[length];
    }
}

/// <summary>
/// The scalar part of a UniPC update: hφ₁, B(h) and the linear system <c>R·ρ = b</c> of diffusers'
/// <c>multistep_uni_*_bh_update</c>, all in float32.
/// </summary>
internal readonly ref struct UniPcCoefficients
{
    private readonly ReadOnlySpan<float> _rks;
    private readonly float[] _b;

    public UniPcCoefficients(ReadOnlySpan<float> rks, float h, bool predictX0, bool useBh1)
    {
        _rks = rks;
        float hh = predictX0 ? -h : h;
        HPhi1 = DpmSolverMath.Expm1(hh); // hφ₁(h) = eʰ − 1
        Bh = useBh1 ? hh : DpmSolverMath.Expm1(hh);

        int order = rks.Length;
        _b = new float[order];
        float hPhiK = (HPhi1 / hh) - 1f;
        double factorial = 1;
        for (int i = 1; i <= order; i++)
        {
            _b[i - 1] = hPhiK * (float)factorial / Bh;
            factorial *= i + 1;
            hPhiK = (hPhiK / hh) - (float)(1.0 / factorial);
        }
    }

    /// <summary>hφ₁(h) = e^hh − 1.</summary>
    public float HPhi1 { get; }

    /// <summary>B(h): hh for bh1, e^hh − 1 for bh2.</summary>
    public float Bh { get; }

    /// <summary>
    /// Solves the leading <paramref name="size"/>×<paramref name="size"/> block of <c>R·ρ = b</c>, where
    /// <c>R[i][k] = rks[k]^i</c>, by LU with partial pivoting in float32 (as LAPACK's <c>sgesv</c> behind <c>torch.linalg.solve</c>).
    /// </summary>
    public void Solve(int size, Span<float> rhos)
    {
        Span<float> a = stackalloc float[size * size];
        for (int i = 0; i < size; i++)
        {
            for (int k = 0; k < size; k++)
            {
                a[(i * size) + k] = Power(_rks[k], i);
            }

            rhos[i] = _b[i];
        }

        Span<int> pivots = stackalloc int[size];
        for (int k = 0; k < size; k++)
        {
            int pivot = k;
            for (int i = k + 1; i < size; i++)
            {
                if (MathF.Abs(a[(i * size) + k]) > MathF.Abs(a[(pivot * size) + k]))
                {
                    pivot = i;
                }
            }

            pivots[k] = pivot;
            if (pivot != k)
            {
                for (int j = 0; j < size; j++)
                {
                    (a[(k * size) + j], a[(pivot * size) + j]) = (a[(pivot * size) + j], a[(k * size) + j]);
                }
            }

            float diagonal = a[(k * size) + k];
            if (diagonal == 0f)
            {
                throw new InvalidOperationException("The UniPC coefficient system is singular: two noise levels of the history coincide.");
            }

            float reciprocal = 1f / diagonal;
            for (int i = k + 1; i < size; i++)
            {
                a[(i * size) + k] *= reciprocal;
                for (int j = k + 1; j < size; j++)
                {
                    a[(i * size) + j] -= a[(i * size) + k] * a[(k * size) + j];
                }
            }
        }

        for (int k = 0; k < size; k++)
        {
            if (pivots[k] != k)
            {
                (rhos[k], rhos[pivots[k]]) = (rhos[pivots[k]], rhos[k]);
            }
        }

        for (int k = 0; k < size; k++)
        {
            for (int i = k + 1; i < size; i++)
            {
                rhos[i] -= rhos[k] * a[(i * size) + k];
            }
        }

        for (int k = size - 1; k >= 0; k--)
        {
            rhos[k] /= a[(k * size) + k];
            for (int i = 0; i < k; i++)
            {
                rhos[i] -= rhos[k] * a[(i * size) + k];
            }
        }
    }

    /// <summary>torch.pow(x, n) for a small integer n: 1, x, x·x, x·x·x, then pow.</summary>
    private static float Power(float x, int n) => n switch
    {
        0 => 1f,
        1 => x,
        2 => x * x,
        3 => x * x * x,
        _ => MathF.Pow(x, n),
    };
}
