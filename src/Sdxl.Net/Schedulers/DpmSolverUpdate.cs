namespace Sdxl.Net.Schedulers;

/// <summary>
/// The DPM-Solver update rules (first order, multistep and singlestep second and third order) for every
/// algorithm type, with the scratch buffers of one run.
/// </summary>
/// <remarks>
/// Each method mirrors one diffusers function term by term: scalar coefficients are computed in float32 as the 0-d
/// tensors are, and the terms are accumulated left to right into the destination. The destination may be the same
/// span as the source sample, which is only read by the first term.
/// </remarks>
internal sealed class DpmSolverUpdate
{
    private readonly DpmSolverOptions _options;
    private readonly float[] _scratch;
    private readonly float[] _first;
    private readonly float[]? _second;
    private readonly float[]? _third;
    private readonly float[]? _fourth;

    /// <summary>Allocates the buffers the configured order needs for samples of <paramref name="length"/> values.</summary>
    public DpmSolverUpdate(DpmSolverOptions options, int length)
    {
        _options = options;
        _scratch = new float[length];
        _first = new float[length];
        if (options.SolverOrder >= 3)
        {
            _second = new float[length];
            _third = new float[length];
            _fourth = new float[length];
        }
    }

    /// <summary>A buffer free for use between updates (e.g. by model-output conversion).</summary>
    public Span<float> Scratch => _scratch;

    /// <summary>diffusers' <c>dpm_solver_first_order_update</c> (DDIM-like), from <paramref name="sigmaS"/> to <paramref name="sigmaT"/>.</summary>
    public void FirstOrder(
        float sigmaT, float sigmaS, ReadOnlySpan<float> modelOutput, ReadOnlySpan<float> sample, Span<float> destination, ReadOnlySpan<float> noise)
    {
        var t = VpNoiseLevel.FromSigma(sigmaT);
        var s = VpNoiseLevel.FromSigma(sigmaS);
        float h = t.Lambda - s.Lambda;
        switch (_options.Algorithm)
        {
            case DpmSolverAlgorithm.DpmSolverPlusPlus:
                DpmSolverMath.Scale(sample, t.Sigma / s.Sigma, destination);
                Add(destination, -(t.Alpha * (DpmSolverMath.Exp(-h) - 1f)), modelOutput);
                break;
            case DpmSolverAlgorithm.DpmSolver:
                DpmSolverMath.Scale(sample, t.Alpha / s.Alpha, destination);
                Add(destination, -(t.Sigma * (DpmSolverMath.Exp(h) - 1f)), modelOutput);
                break;
            case DpmSolverAlgorithm.SdeDpmSolverPlusPlus:
            {
                float decay = DpmSolverMath.Exp(-2f * h);
                DpmSolverMath.Scale(sample, t.Sigma / s.Sigma * DpmSolverMath.Exp(-h), destination);
                Add(destination, t.Alpha * (1f - decay), modelOutput);
                Add(destination, t.Sigma * MathF.Sqrt(1f - decay), noise);
                break;
            }

            default:
            {
                float growth = DpmSolverMath.Exp(h) - 1f;
                DpmSolverMath.Scale(sample, t.Alpha / s.Alpha, destination);
                Add(destination, -(2f * (t.Sigma * growth)), modelOutput);
                Add(destination, t.Sigma * MathF.Sqrt(DpmSolverMath.Exp(2f * h) - 1f), noise);
                break;
            }
        }
    }

    /// <summary>
    /// diffusers' <c>multistep_dpm_solver_second_order_update</c>: from σ_s0 to σ_t using the outputs at σ_s0 and the previous σ_s1.
    /// </summary>
    public void MultistepSecondOrder(
        float sigmaT, float sigmaS0, float sigmaS1, ReadOnlySpan<float> m0, ReadOnlySpan<float> m1, Span<float> sample, ReadOnlySpan<float> noise)
    {
        var t = VpNoiseLevel.FromSigma(sigmaT);
        var s0 = VpNoiseLevel.FromSigma(sigmaS0);
        var s1 = VpNoiseLevel.FromSigma(sigmaS1);
        float h = t.Lambda - s0.Lambda;
        float r0 = (s0.Lambda - s1.Lambda) / h;
        DpmSolverMath.ScaledDifference(m0, m1, 1f / r0, _first);
        SecondOrderCombine(t, s0, h, m0, _first, sample, sample, noise);
    }

    /// <summary>
    /// diffusers' <c>singlestep_dpm_solver_second_order_update</c>: from σ_s1 (where <paramref name="origin"/> was taken)
    /// to σ_t, using the outputs at σ_s1 and the intermediate σ_s0.
    /// </summary>
    public void SinglestepSecondOrder(
        float sigmaT,
        float sigmaS0,
        float sigmaS1,
        ReadOnlySpan<float> m0,
        ReadOnlySpan<float> m1,
        ReadOnlySpan<float> origin,
        Span<float> destination,
        ReadOnlySpan<float> noise)
    {
        var t = VpNoiseLevel.FromSigma(sigmaT);
        var s0 = VpNoiseLevel.FromSigma(sigmaS0);
        var s1 = VpNoiseLevel.FromSigma(sigmaS1);
        float h = t.Lambda - s1.Lambda;
        float r0 = (s0.Lambda - s1.Lambda) / h;
        DpmSolverMath.ScaledDifference(m0, m1, 1f / r0, _first);
        SecondOrderCombine(t, s1, h, m1, _first, origin, destination, noise);
    }

    /// <summary>diffusers' <c>multistep_dpm_solver_third_order_update</c>.</summary>
    public void MultistepThirdOrder(
        float sigmaT,
        float sigmaS0,
        float sigmaS1,
        float sigmaS2,
        ReadOnlySpan<float> m0,
        ReadOnlySpan<float> m1,
        ReadOnlySpan<float> m2,
        Span<float> sample,
        ReadOnlySpan<float> noise)
    {
        var t = VpNoiseLevel.FromSigma(sigmaT);
        var s0 = VpNoiseLevel.FromSigma(sigmaS0);
        var s1 = VpNoiseLevel.FromSigma(sigmaS1);
        var s2 = VpNoiseLevel.FromSigma(sigmaS2);
        float h = t.Lambda - s0.Lambda;
        float r0 = (s0.Lambda - s1.Lambda) / h;
        float r1 = (s1.Lambda - s2.Lambda) / h;

        // D1_0 = (1/r0)(m0 - m1), D1_1 = (1/r1)(m1 - m2), D1 = D1_0 + r0/(r0+r1)·(D1_0 - D1_1), D2 = 1/(r0+r1)·(D1_0 - D1_1).
        var d10 = _first;
        var difference = _second!;
        var d1 = _third!;
        var d2 = _fourth!;
        DpmSolverMath.ScaledDifference(m0, m1, 1f / r0, d10);
        DpmSolverMath.ScaledDifference(m1, m2, 1f / r1, difference);
        TensorSubtract(d10, difference, difference);
        d10.AsSpan().CopyTo(d1);
        Add(d1, r0 / (r0 + r1), difference);
        DpmSolverMath.Scale(difference, 1f / (r0 + r1), d2);

        if (_options.Algorithm is DpmSolverAlgorithm.DpmSolverPlusPlus or DpmSolverAlgorithm.DpmSolver)
        {
            ThirdOrderCombine(t, s0, h, m0, d1, d2, sample, sample);
            return;
        }

        // sde-dpmsolver++ (sde-dpmsolver has no third-order rule and is rejected by the options).
        float decay = DpmSolverMath.Exp(-2f * h);
        float twoH = 2f * h;
        DpmSolverMath.Scale(sample, t.Sigma / s0.Sigma * DpmSolverMath.Exp(-h), sample);
        Add(sample, t.Alpha * (1f - decay), m0);
        Add(sample, t.Alpha * (((1f - decay) / (-2f * h)) + 1f), d1);
        Add(sample, t.Alpha * (((1f - decay - twoH) / (twoH * twoH)) - 0.5f), d2);
        Add(sample, t.Sigma * MathF.Sqrt(1f - decay), noise);
    }

    /// <summary>diffusers' <c>singlestep_dpm_solver_third_order_update</c> (deterministic algorithms only).</summary>
    public void SinglestepThirdOrder(
        float sigmaT,
        float sigmaS0,
        float sigmaS1,
        float sigmaS2,
        ReadOnlySpan<float> m0,
        ReadOnlySpan<float> m1,
        ReadOnlySpan<float> m2,
        ReadOnlySpan<float> origin,
        Span<float> destination)
    {
        var t = VpNoiseLevel.FromSigma(sigmaT);
        var s0 = VpNoiseLevel.FromSigma(sigmaS0);
        var s1 = VpNoiseLevel.FromSigma(sigmaS1);
        var s2 = VpNoiseLevel.FromSigma(sigmaS2);
        float h = t.Lambda - s2.Lambda;
        float r0 = (s0.Lambda - s2.Lambda) / h;
        float r1 = (s1.Lambda - s2.Lambda) / h;

        // D1_0 = (1/r1)(m1 - m2), D1_1 = (1/r0)(m0 - m2), D1 = (r0·D1_0 − r1·D1_1)/(r0 − r1), D2 = 2(D1_1 − D1_0)/(r0 − r1).
        var d10 = _first;
        var d11 = _second!;
        var d1 = _third!;
        var d2 = _fourth!;
        DpmSolverMath.ScaledDifference(m1, m2, 1f / r1, d10);
        DpmSolverMath.ScaledDifference(m0, m2, 1f / r0, d11);
        bool heun = _options.SolverType == DpmSolverType.Heun;
        if (heun)
        {
            DpmSolverMath.Scale(d10, r0, d1);
            Add(d1, -r1, d11);
            System.Numerics.Tensors.TensorPrimitives.Divide(d1, r0 - r1, d1);
            TensorSubtract(d11, d10, d2);
            DpmSolverMath.Scale(d2, 2f, d2);
            System.Numerics.Tensors.TensorPrimitives.Divide(d2, r0 - r1, d2);
        }

        // The midpoint form takes D1_1 as the first derivative and has no second-derivative term.
        ThirdOrderCombine(t, s2, h, m2, heun ? d1 : d11, heun ? d2 : default, origin, destination);
    }

    /// <summary>
    /// The third-order combination of the sample at <paramref name="s"/> with D0, D1 and (unless empty) D2 for the
    /// deterministic algorithms, shared by both step styles.
    /// </summary>
    private void ThirdOrderCombine(
        VpNoiseLevel t,
        VpNoiseLevel s,
        float h,
        ReadOnlySpan<float> d0,
        ReadOnlySpan<float> d1,
        ReadOnlySpan<float> d2,
        ReadOnlySpan<float> sample,
        Span<float> destination)
    {
        if (_options.Algorithm == DpmSolverAlgorithm.DpmSolverPlusPlus)
        {
            float phi = DpmSolverMath.Exp(-h) - 1f;
            DpmSolverMath.Scale(sample, t.Sigma / s.Sigma, destination);
            Add(destination, -(t.Alpha * phi), d0);
            Add(destination, t.Alpha * ((phi / h) + 1f), d1);
            if (!d2.IsEmpty)
            {
                Add(destination, -(t.Alpha * (((phi + h) / (h * h)) - 0.5f)), d2);
            }
        }
        else
        {
            float phi = DpmSolverMath.Exp(h) - 1f;
            DpmSolverMath.Scale(sample, t.Alpha / s.Alpha, destination);
            Add(destination, -(t.Sigma * phi), d0);
            Add(destination, -(t.Sigma * ((phi / h) - 1f)), d1);
            if (!d2.IsEmpty)
            {
                Add(destination, -(t.Sigma * (((phi - h) / (h * h)) - 0.5f)), d2);
            }
        }
    }

    /// <summary>The second-order combination of the sample at <paramref name="s"/> with D0 and D1, shared by both step styles.</summary>
    private void SecondOrderCombine(
        VpNoiseLevel t,
        VpNoiseLevel s,
        float h,
        ReadOnlySpan<float> d0,
        ReadOnlySpan<float> d1,
        ReadOnlySpan<float> sample,
        Span<float> destination,
        ReadOnlySpan<float> noise)
    {
        bool midpoint = _options.SolverType == DpmSolverType.Midpoint;
        switch (_options.Algorithm)
        {
            case DpmSolverAlgorithm.DpmSolverPlusPlus:
            {
                float c0 = t.Alpha * (DpmSolverMath.Exp(-h) - 1f);
                DpmSolverMath.Scale(sample, t.Sigma / s.Sigma, destination);
                Add(destination, -c0, d0);
                Add(destination, midpoint ? -(0.5f * c0) : t.Alpha * (((DpmSolverMath.Exp(-h) - 1f) / h) + 1f), d1);
                break;
            }

            case DpmSolverAlgorithm.DpmSolver:
            {
                float c0 = t.Sigma * (DpmSolverMath.Exp(h) - 1f);
                DpmSolverMath.Scale(sample, t.Alpha / s.Alpha, destination);
                Add(destination, -c0, d0);
                Add(destination, midpoint ? -(0.5f * c0) : -(t.Sigma * (((DpmSolverMath.Exp(h) - 1f) / h) - 1f)), d1);
                break;
            }

            case DpmSolverAlgorithm.SdeDpmSolverPlusPlus:
            {
                float decay = DpmSolverMath.Exp(-2f * h);
                float c0 = t.Alpha * (1f - decay);
                DpmSolverMath.Scale(sample, t.Sigma / s.Sigma * DpmSolverMath.Exp(-h), destination);
                Add(destination, c0, d0);
                Add(destination, midpoint ? 0.5f * c0 : t.Alpha * (((1f - decay) / (-2f * h)) + 1f), d1);
                Add(destination, t.Sigma * MathF.Sqrt(1f - decay), noise);
                break;
            }

            default:
            {
                float growth = DpmSolverMath.Exp(h) - 1f;
                DpmSolverMath.Scale(sample, t.Alpha / s.Alpha, destination);
                Add(destination, -(2f * (t.Sigma * growth)), d0);
                Add(destination, midpoint ? -(t.Sigma * growth) : -(2f * (t.Sigma * ((growth / h) - 1f))), d1);
                Add(destination, t.Sigma * MathF.Sqrt(DpmSolverMath.Exp(2f * h) - 1f), noise);
                break;
            }
        }
    }

    private void Add(Span<float> accumulator, float c, ReadOnlySpan<float> x) => DpmSolverMath.AddScaled(accumulator, c, x, _scratch);

    private static void TensorSubtract(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> destination) =>
        System.Numerics.Tensors.TensorPrimitives.Subtract(a, b, destination);
}
