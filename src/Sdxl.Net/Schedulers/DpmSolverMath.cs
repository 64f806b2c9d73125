using System.Numerics.Tensors;

namespace Sdxl.Net.Schedulers;

/// <summary>
/// The VP-type noise level of one sigma as the DPM-Solver family uses it: <c>α = 1 / √(σ² + 1)</c>,
/// <c>σ_t = σ·α</c> and the half log-SNR <c>λ = log α − log σ_t</c>, all in float32 like diffusers' 0-d tensors.
/// </summary>
internal readonly struct VpNoiseLevel
{
    private VpNoiseLevel(float alpha, float sigma, float lambda)
    {
        Alpha = alpha;
        Sigma = sigma;
        Lambda = lambda;
    }

    /// <summary>The signal scale α_t.</summary>
    public float Alpha { get; }

    /// <summary>The noise scale σ_t (not the Karras sigma).</summary>
    public float Sigma { get; }

    /// <summary>The half log-SNR λ_t; +∞ at the final sigma 0.</summary>
    public float Lambda { get; }

    /// <summary>diffusers' <c>_sigma_to_alpha_sigma_t</c> followed by <c>torch.log(alpha_t) - torch.log(sigma_t)</c>.</summary>
    public static VpNoiseLevel FromSigma(float sigma)
    {
        // torch: 1 / ((sigma ** 2 + 1) ** 0.5) is reciprocal(sqrt(sigma * sigma + 1)) in float32.
        float alpha = 1f / MathF.Sqrt((sigma * sigma) + 1f);
        float sigmaT = sigma * alpha;
        return new VpNoiseLevel(alpha, sigmaT, DpmSolverMath.Log(alpha) - DpmSolverMath.Log(sigmaT));
    }
}

/// <summary>
/// Scalar and element-wise arithmetic shared by the DPM-Solver and UniPC schedulers.
/// </summary>
/// <remarks>
/// diffusers evaluates each update as a chain of float32 tensor operations: every scalar coefficient is a 0-d
/// float32 tensor, every product and sum is rounded to float32, and terms are combined left to right. The
/// element-wise helpers here perform exactly those roundings (no fused multiply-add), so a C# update differs from
/// torch only where torch's own transcendental functions are not correctly rounded.
/// </remarks>
internal static class DpmSolverMath
{
    /// <summary>float32 <c>exp</c>, evaluated in double and rounded once.</summary>
    public static float Exp(float x) => (float)Math.Exp(x);

    /// <summary>float32 <c>log</c>, evaluated in double and rounded once (log 0 = −∞).</summary>
    public static float Log(float x) => (float)Math.Log(x);

    /// <summary>float32 <c>expm1</c>, accurate for small arguments where <c>exp(x) − 1</c> cancels.</summary>
    public static float Expm1(float x)
    {
        double xd = x;
        if (double.IsNegativeInfinity(xd))
        {
            return -1f;
        }

        double u = Math.Exp(xd);
        if (u == 1.0)
        {
            return x;
        }

        double um1 = u - 1.0;
        if (um1 == -1.0 || double.IsInfinity(u))
        {
            return (float)um1;
        }

        // Kahan's correction: (u − 1)·x / log(u) recovers the digits lost in u − 1.
        return (float)(um1 * xd / Math.Log(u));
    }

    /// <summary><c>destination = c · x</c>.</summary>
    public static void Scale(ReadOnlySpan<float> x, float c, Span<float> destination) =>
        TensorPrimitives.Multiply(x, c, destination);

    /// <summary>
    /// <c>accumulator = accumulator + (c · x)</c> with the product rounded first, as torch's <c>acc + c * x</c>
    /// (and <c>acc − c · x</c> when <paramref name="c"/> is negated, which is exact in IEEE arithmetic).
    /// </summary>
    public static void AddScaled(Span<float> accumulator, float c, ReadOnlySpan<float> x, Span<float> scratch)
    {
        TensorPrimitives.Multiply(x, c, scratch);
        TensorPrimitives.Add(accumulator, scratch, accumulator);
    }

    /// <summary><c>destination = c · (a − b)</c>, as torch's <c>(1.0 / r) * (m0 - m1)</c>.</summary>
    public static void ScaledDifference(ReadOnlySpan<float> a, ReadOnlySpan<float> b, float c, Span<float> destination)
    {
        TensorPrimitives.Subtract(a, b, destination);
        TensorPrimitives.Multiply(destination, c, destination);
    }

    /// <summary><c>destination = (a − b) / d</c> with a true division, as torch's <c>(mi - m0) / rk</c>.</summary>
    public static void DividedDifference(ReadOnlySpan<float> a, ReadOnlySpan<float> b, float d, Span<float> destination)
    {
        TensorPrimitives.Subtract(a, b, destination);
        TensorPrimitives.Divide(destination, d, destination);
    }

    /// <summary>
    /// Converts a UNet output into the quantity the solver integrates: the data prediction x₀ when
    /// <paramref name="predictData"/> is set (DPM-Solver++, UniPC with <c>predict_x0</c>), the noise ε otherwise
    /// (diffusers' <c>convert_model_output</c>).
    /// </summary>
    public static void ConvertModelOutput(
        PredictionType predictionType,
        bool predictData,
        ReadOnlySpan<float> modelOutput,
        ReadOnlySpan<float> sample,
        float sigma,
        Span<float> destination,
        Span<float> scratch)
    {
        var level = VpNoiseLevel.FromSigma(sigma);
        float alpha = level.Alpha;
        float sigmaT = level.Sigma;
        switch (predictionType, predictData)
        {
            case (PredictionType.Epsilon, true):
                // (sample - sigma_t * model_output) / alpha_t
                TensorPrimitives.Multiply(modelOutput, sigmaT, destination);
                TensorPrimitives.Subtract(sample, destination, destination);
                TensorPrimitives.Divide(destination, alpha, destination);
                break;
            case (PredictionType.Sample, true):
            case (PredictionType.Epsilon, false):
                modelOutput.CopyTo(destination);
                break;
            case (PredictionType.VPrediction, true):
                // alpha_t * sample - sigma_t * model_output
                TensorPrimitives.Multiply(sample, alpha, destination);
                AddScaled(destination, -sigmaT, modelOutput, scratch);
                break;
            case (PredictionType.Sample, false):
                // (sample - alpha_t * model_output) / sigma_t
                TensorPrimitives.Multiply(modelOutput, alpha, destination);
                TensorPrimitives.Subtract(sample, destination, destination);
                TensorPrimitives.Divide(destination, sigmaT, destination);
                break;
            case (PredictionType.VPrediction, false):
                // alpha_t * model_output + sigma_t * sample
                TensorPrimitives.Multiply(modelOutput, alpha, destination);
                AddScaled(destination, sigmaT, sample, scratch);
                break;
            default:
                throw new NotSupportedException($"Prediction type {predictionType} is not supported.");
        }
    }

    /// <summary>diffusers' <c>add_noise</c> for VP solvers: <c>α_t · original + σ_t · noise</c> at <paramref name="sigma"/>.</summary>
    public static void AddNoise(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, float sigma, Span<float> destination)
    {
        RequireSameLength(original.Length, noise.Length, nameof(noise));
        RequireSameLength(original.Length, destination.Length, nameof(destination));
        var level = VpNoiseLevel.FromSigma(sigma);
        float alpha = level.Alpha;
        float sigmaT = level.Sigma;

        // Called once per generation; a scalar loop keeps both roundings of torch's alpha*x + sigma*n and allows aliasing.
        for (int i = 0; i < destination.Length; i++)
        {
            destination[i] = (alpha * original[i]) + (sigmaT * noise[i]);
        }
    }

    /// <summary>
    /// diffusers' <c>index_for_timestep</c>: the position of <paramref name="timestep"/> in the schedule, taking the
    /// second match when it appears twice and the last index when it does not appear.
    /// </summary>
    public static int IndexForTimestep(IReadOnlyList<float> timesteps, float timestep)
    {
        int first = -1;
        for (int i = 0; i < timesteps.Count; i++)
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

        return first >= 0 ? first : timesteps.Count - 1;
    }

    /// <summary>Throws when a span's length differs from the sample's.</summary>
    public static void RequireSameLength(int expected, int actual, string parameterName)
    {
        if (actual != expected)
        {
            throw new ArgumentException(
                $"'{parameterName}' holds {actual} values but the sample holds {expected}; both must cover the whole [N, C, H, W] batch.",
                parameterName);
        }
    }
}
