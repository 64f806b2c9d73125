using System.Numerics.Tensors;
using Sdxl.Net.Randomness;

namespace Sdxl.Net.Schedulers;

/// <summary>
/// The linear multistep sampler of k-diffusion (<c>sample_lms</c>), as diffusers' <c>LMSDiscreteScheduler</c>:
/// each step combines the last (up to four) ODE derivatives with coefficients that integrate their Lagrange basis
/// polynomials over the step.
/// </summary>
/// <remarks>
/// diffusers integrates the coefficients numerically (<c>scipy.integrate.quad</c>); the integrands are polynomials of
/// degree at most three, so a four-point Gauss–Legendre rule gives them exactly. Honours <c>timestep_spacing</c>,
/// <c>steps_offset</c>, <c>use_karras_sigmas</c>, <c>use_exponential_sigmas</c>, <c>prediction_type</c> and the beta
/// schedule options.
/// </remarks>
public sealed class LmsDiscreteScheduler : IScheduler
{
    /// <summary>The number of derivatives combined per step (diffusers' <c>step(..., order=4)</c>).</summary>
    private const int MaxOrder = 4;

    private readonly SchedulerConfig _config;
    private readonly float[] _alphasCumprod;
    private readonly PredictionType _predictionType;

    /// <summary>Creates the scheduler from a configuration; absent keys take diffusers' class defaults.</summary>
    /// <exception cref="NotSupportedException">An option has a value this scheduler does not implement.</exception>
    public LmsDiscreteScheduler(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);

        // LMS's Karras conversion always spans the interpolated sigmas; it ignores sigma_min and sigma_max.
        _config = config.With("sigma_min", null).With("sigma_max", null);
        _alphasCumprod = NoiseSchedule.AlphasCumprod(NoiseSchedule.Betas(config));
        _predictionType = NoiseSchedule.ParsePredictionType(config);
        _ = CreateSchedule(1);
    }

    /// <inheritdoc />
    public string Name => "lms";

    /// <inheritdoc />
    public int Order => 1;

    /// <inheritdoc />
    public ISchedulerRun CreateRun(int inferenceSteps)
    {
        var schedule = CreateSchedule(inferenceSteps);
        var sigmas = schedule.SigmasWithFinal();
        return new Run(schedule.TimestepsSingle(), sigmas, SigmaSchedule.InitNoiseSigma(sigmas, _config), _predictionType);
    }

    // LMS keeps its spaced timesteps in float64 when it interpolates the sigmas.
    private SigmaSchedule CreateSchedule(int inferenceSteps) => SigmaSchedule.Create(_config, _alphasCumprod, inferenceSteps, float32Timesteps: false);

    /// <summary>
    /// ∫ over [σ_t, σ_{t+1}] of the Lagrange basis polynomial of node <paramref name="currentOrder"/> through
    /// σ_t, σ_{t−1}, ..., σ_{t−order+1} (diffusers' <c>get_lms_coefficient</c>).
    /// </summary>
    internal static double Coefficient(ReadOnlySpan<float> sigmas, int order, int t, int currentOrder)
    {
        // Four-point Gauss–Legendre nodes and weights on [−1, 1]: exact for polynomials up to degree 7.
        ReadOnlySpan<double> nodes = [-0.8611363115940526, -0.3399810435848563, 0.3399810435848563, 0.8611363115940526];
        ReadOnlySpan<double> weights = [0.3478548451374538, 0.6521451548625461, 0.6521451548625461, 0.3478548451374538];
        double from = sigmas[t];
        double to = sigmas[t + 1];
        double halfWidth = (to - from) / 2;
        double middle = (to + from) / 2;
        double sum = 0;
        for (int q = 0; q < nodes.Length; q++)
        {
            double tau = middle + (halfWidth * nodes[q]);
            double product = 1;
            for (int k = 0; k < order; k++)
            {
                if (k != currentOrder)
                {
                    product *= (tau - sigmas[t - k]) / ((double)sigmas[t - currentOrder] - sigmas[t - k]);
                }
            }

            sum += weights[q] * product;
        }

        return sum * halfWidth;
    }

    private sealed class Run(float[] timesteps, float[] sigmas, float initNoiseSigma, PredictionType predictionType)
        : SigmaSchedulerRun(timesteps, sigmas, initNoiseSigma, order: 1)
    {
        // The last MaxOrder derivatives, newest at _newest; allocated on the first step.
        private float[][]? _derivatives;
        private int _newest = -1;
        private int _count;

        public override void Step(ReadOnlySpan<float> modelOutput, float timestep, Span<float> sample, IRandomSource random)
        {
            int index = CurrentStep(timestep, sample.Length, modelOutput.Length);
            float sigma = _sigmas[index];

            if (_derivatives is null || _derivatives[0].Length != sample.Length)
            {
                _derivatives = new float[MaxOrder][];
                for (int i = 0; i < MaxOrder; i++)
                {
                    _derivatives[i] = new float[sample.Length];
                }

                _count = 0;
            }

            _newest = (_newest + 1) % MaxOrder;
            _count = Math.Min(_count + 1, MaxOrder);
            var derivative = _derivatives[_newest].AsSpan();
            PredictOriginal(predictionType, modelOutput, sample, sigma, derivative);
            TensorPrimitives.Subtract(sample, derivative, derivative);
            TensorPrimitives.Divide(derivative, sigma, derivative);

            // sum(c_j · d_{newest−j}), accumulated from the newest derivative as Python's sum() does, each c_j rounded to float32.
            int order = Math.Min(index + 1, MaxOrder);
            int terms = Math.Min(order, _count);
            var sum = Scratch(sample.Length);
            for (int j = 0; j < terms; j++)
            {
                float coefficient = (float)Coefficient(_sigmas, order, index, j);
                var d = _derivatives[(_newest - j + MaxOrder) % MaxOrder];
                if (j == 0)
                {
                    TensorPrimitives.Multiply(d, coefficient, sum);
                }
                else
                {
                    TensorPrimitives.MultiplyAdd(d, coefficient, sum, sum);
                }
            }

            TensorPrimitives.Add(sample, sum, sample);
            _index.Advance();
        }
    }
}
