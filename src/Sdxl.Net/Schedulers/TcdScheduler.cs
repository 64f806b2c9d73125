using System.Numerics.Tensors;
using Sdxl.Net.Randomness;

namespace Sdxl.Net.Schedulers;

/// <summary>
/// Trajectory consistency distillation's strategic stochastic sampler (Zheng et al., 2024), as diffusers'
/// <c>TCDScheduler</c>: each step predicts x₀, moves it to the intermediate timestep s = ⌊(1 − γ)·t_prev⌋ and, except on
/// the last step, re-noises it from s to t_prev.
/// </summary>
/// <remarks>
/// <para>
/// Timesteps are drawn from the <c>original_inference_steps</c> distillation schedule, like LCM's. γ is diffusers'
/// <c>eta</c> argument of <c>step</c>: the SDXL pipelines pass their own <c>eta</c> (default 0.0, which makes every step
/// deterministic); TCD's authors recommend 0.3. Honours <c>original_inference_steps</c>, <c>prediction_type</c>,
/// <c>rescale_betas_zero_snr</c> and the beta schedule options; dynamic <c>thresholding</c> is not implemented
/// (diffusers' TCD never applies it either).
/// </para>
/// </remarks>
public sealed class TcdScheduler : IScheduler, ICustomTimestepsScheduler, IEtaScheduler
{
    private readonly SchedulerConfig _config;
    private readonly float[] _alphasCumprod;
    private readonly PredictionType _predictionType;
    private readonly int _originalSteps;
    private readonly float _eta;

    /// <summary>Creates the scheduler from a configuration; absent keys take diffusers' class defaults.</summary>
    /// <param name="config">The scheduler configuration.</param>
    /// <param name="eta">γ in [0, 1], the stochasticity of every step (diffusers' <c>eta</c>; the SDXL pipelines pass 0 unless told).</param>
    /// <exception cref="NotSupportedException">An option has a value this scheduler does not implement.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="eta"/> is outside [0, 1].</exception>
    public TcdScheduler(SchedulerConfig config, float eta = 0f)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (!(eta >= 0f && eta <= 1f))
        {
            throw new ArgumentOutOfRangeException(nameof(eta), eta, "TCD's eta (gamma) must be between 0 and 1.");
        }

        _config = config;
        _eta = eta;
        _alphasCumprod = NoiseSchedule.AlphasCumprod(NoiseSchedule.Betas(config, 0.00085, 0.012, "scaled_linear"));
        _predictionType = NoiseSchedule.ParsePredictionType(config);
        _originalSteps = DistillationSchedule.OriginalSteps(config, _alphasCumprod.Length);
    }

    /// <inheritdoc />
    public string Name => "tcd";

    /// <inheritdoc />
    public int Order => 1;

    /// <summary>γ, the stochasticity of every step.</summary>
    public float Eta => _eta;

    /// <inheritdoc />
    public ISchedulerRun CreateRun(int inferenceSteps) =>
        new Run(this, DistillationSchedule.Timesteps(_alphasCumprod.Length, _originalSteps, inferenceSteps));

    ISchedulerRun ICustomTimestepsScheduler.CreateRun(IReadOnlyList<double> timesteps) =>
        new Run(this, DistillationSchedule.CustomTimesteps(timesteps, _alphasCumprod.Length));

    IScheduler IEtaScheduler.WithEta(float value) => new TcdScheduler(_config, value);

    private sealed class Run(TcdScheduler owner, float[] timesteps) : AlphaSchedulerRun(timesteps, owner._alphasCumprod)
    {
        public override void Step(ReadOnlySpan<float> modelOutput, float timestep, Span<float> sample, IRandomSource random)
        {
            int index = CurrentStep(timestep, sample.Length, modelOutput.Length);

            int t = TrainIndex(timestep);
            bool last = index == _timesteps.Length - 1;
            int previous = last ? 0 : (int)_timesteps[index + 1];

            // timestep_s = floor((1 − eta) · prev_timestep): torch multiplies the int64 tensor by the Python float in float32.
            int s = (int)MathF.Floor((float)(1.0 - owner._eta) * previous);
            float alphaProd = _alphasCumprod[t];
            float alphaProdPrev = _alphasCumprod[previous];
            float alphaProdS = _alphasCumprod[s];
            float sqrtAlpha = MathF.Sqrt(alphaProd);
            float sqrtBeta = MathF.Sqrt(1f - alphaProd);

            // x₀ and ε from the model's parameterisation, then the noised sample at s: √ᾱ_s·x₀ + √(1 − ᾱ_s)·ε.
            var original = Scratch(sample.Length);
            var epsilon = Scratch(sample.Length, 1);
            PredictOriginalAndEpsilon(owner._predictionType, modelOutput, sample, sqrtAlpha, sqrtBeta, original, epsilon);

            TensorPrimitives.Multiply(epsilon, MathF.Sqrt(1f - alphaProdS), epsilon);
            TensorPrimitives.MultiplyAdd(original, MathF.Sqrt(alphaProdS), epsilon, sample);

            if (owner._eta > 0f && !last)
            {
                // prev = √(ᾱ_prev / ᾱ_s)·x_s + √(1 − ᾱ_prev / ᾱ_s)·z
                float ratio = alphaProdPrev / alphaProdS;
                var noise = Scratch(sample.Length, 1);
                random.NextNormal(noise);
                TensorPrimitives.Multiply(noise, MathF.Sqrt(1f - ratio), noise);
                TensorPrimitives.MultiplyAdd(sample, MathF.Sqrt(ratio), noise, sample);
            }

            _index.Advance();
        }
    }
}
