using System.Collections.ObjectModel;
using System.Numerics.Tensors;
using Sdxl.Net.Randomness;

namespace Sdxl.Net.Schedulers;

/// <summary>
/// Shared state of the DDPM-family runs (DDIM, DDPM, PNDM, LCM): integer timesteps, unit initial noise,
/// unscaled model input and <c>√ᾱ·x₀ + √(1 − ᾱ)·noise</c> noising.
/// </summary>
internal abstract class AlphaSchedulerRun : ISchedulerRun
{
    private protected readonly float[] _timesteps;
    private protected readonly float[] _alphasCumprod;
    private protected StepIndexTracker _index;
    private float[][]? _scratch;

    private protected AlphaSchedulerRun(float[] timesteps, float[] alphasCumprod)
    {
        _timesteps = timesteps;
        _alphasCumprod = alphasCumprod;
        Timesteps = new ReadOnlyCollection<float>(timesteps);
    }

    /// <inheritdoc />
    public IReadOnlyList<float> Timesteps { get; }

    /// <inheritdoc />
    public IReadOnlyList<float>? Sigmas => null;

    /// <inheritdoc />
    public float InitNoiseSigma => 1f;

    /// <inheritdoc />
    public virtual int Order => 1;

    /// <inheritdoc />
    public void SetBeginIndex(int beginIndex) => _index.SetBegin(beginIndex, _timesteps.Length);

    /// <inheritdoc />
    public void ScaleModelInput(ReadOnlySpan<float> sample, float timestep, Span<float> destination)
    {
        SigmaSchedulerRun.CheckLengthsCore(sample.Length, destination.Length, nameof(destination));
        sample.CopyTo(destination);
    }

    /// <inheritdoc />
    public abstract void Step(ReadOnlySpan<float> modelOutput, float timestep, Span<float> sample, IRandomSource random);

    /// <inheritdoc />
    public void AddNoise(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, float timestep, Span<float> destination)
    {
        SigmaSchedulerRun.CheckLengthsCore(original.Length, noise.Length, nameof(noise));
        SigmaSchedulerRun.CheckLengthsCore(original.Length, destination.Length, nameof(destination));
        float alphaProd = _alphasCumprod[TrainIndex(timestep)];
        float sqrtAlpha = MathF.Sqrt(alphaProd);
        float sqrtOneMinusAlpha = MathF.Sqrt(1f - alphaProd);
        var scaledNoise = Scratch(original.Length, 2);
        TensorPrimitives.Multiply(noise, sqrtOneMinusAlpha, scaledNoise);
        TensorPrimitives.MultiplyAdd(original, sqrtAlpha, scaledNoise, destination);
    }

    /// <summary>A scratch buffer of the sample's length, allocated once per run.</summary>
    private protected Span<float> Scratch(int length, int slot = 0)
    {
        _scratch ??= new float[3][];
        if (_scratch[slot] is null || _scratch[slot].Length != length)
        {
            _scratch[slot] = new float[length];
        }

        return _scratch[slot];
    }

    /// <summary>
    /// Writes the predicted x₀ for an ε, x₀ or v prediction: <c>(sample − √β·ε)/√ᾱ</c>, the output itself or
    /// <c>√ᾱ·sample − √β·v</c> (the v form uses scratch slot 1).
    /// </summary>
    private protected void PredictOriginal(
        PredictionType predictionType, ReadOnlySpan<float> modelOutput, ReadOnlySpan<float> sample, float sqrtAlpha, float sqrtBeta, Span<float> original)
    {
        switch (predictionType)
        {
            case PredictionType.Epsilon:
                TensorPrimitives.Multiply(modelOutput, sqrtBeta, original);
                TensorPrimitives.Subtract(sample, original, original);
                TensorPrimitives.Divide(original, sqrtAlpha, original);
                break;
            case PredictionType.Sample:
                modelOutput.CopyTo(original);
                break;
            default:
                var scaledV = Scratch(sample.Length, 1);
                TensorPrimitives.Multiply(modelOutput, sqrtBeta, scaledV);
                TensorPrimitives.Multiply(sample, sqrtAlpha, original);
                TensorPrimitives.Subtract(original, scaledV, original);
                break;
        }
    }

    /// <summary>
    /// Writes x₀ and ε for an ε, x₀ or v prediction: <c>x₀ = (x − √β·ε)/√ᾱ</c>; <c>ε = (x − √ᾱ·x₀)/√β</c>;
    /// <c>x₀ = √ᾱ·x − √β·v</c> and <c>ε = √ᾱ·v + √β·x</c> (DDIM, TCD).
    /// </summary>
    private protected static void PredictOriginalAndEpsilon(
        PredictionType predictionType, ReadOnlySpan<float> modelOutput, ReadOnlySpan<float> sample, float sqrtAlpha, float sqrtBeta, Span<float> original, Span<float> epsilon)
    {
        switch (predictionType)
        {
            case PredictionType.Epsilon:
                TensorPrimitives.Multiply(modelOutput, sqrtBeta, original);
                TensorPrimitives.Subtract(sample, original, original);
                TensorPrimitives.Divide(original, sqrtAlpha, original);
                modelOutput.CopyTo(epsilon);
                break;
            case PredictionType.Sample:
                modelOutput.CopyTo(original);
                TensorPrimitives.Multiply(original, sqrtAlpha, epsilon);
                TensorPrimitives.Subtract(sample, epsilon, epsilon);
                TensorPrimitives.Divide(epsilon, sqrtBeta, epsilon);
                break;
            default:
                TensorPrimitives.Multiply(modelOutput, sqrtBeta, epsilon);
                TensorPrimitives.Multiply(sample, sqrtAlpha, original);
                TensorPrimitives.Subtract(original, epsilon, original);
                TensorPrimitives.Multiply(sample, sqrtBeta, epsilon);
                TensorPrimitives.MultiplyAdd(modelOutput, sqrtAlpha, epsilon, epsilon);
                break;
        }
    }

    /// <summary>The current step's index; throws when the lengths differ or every step has been taken.</summary>
    private protected int CurrentStep(float timestep, int sampleLength, int modelOutputLength)
    {
        SigmaSchedulerRun.CheckLengthsCore(sampleLength, modelOutputLength, "modelOutput");
        int index = _index.Current(_timesteps, timestep);
        if (index >= _timesteps.Length)
        {
            throw new InvalidOperationException($"The schedule has {_timesteps.Length} steps and all of them have been taken.");
        }

        return index;
    }

    /// <summary>The training-schedule index of a (whole-number) timestep.</summary>
    private protected int TrainIndex(float timestep)
    {
        int t = (int)timestep;
        if (t != timestep || t < 0 || t >= _alphasCumprod.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(timestep), timestep, $"The timestep must be a whole number between 0 and {_alphasCumprod.Length - 1}.");
        }

        return t;
    }

    /// <summary>Converts int64 timesteps to the float list of the interface (exact below 2²⁴).</summary>
    private protected static float[] ToSingle(long[] timesteps)
    {
        var result = new float[timesteps.Length];
        for (int i = 0; i < result.Length; i++)
        {
            result[i] = timesteps[i];
        }

        return result;
    }

    /// <summary>Clamps <paramref name="x"/> to ±<paramref name="range"/> (diffusers' <c>clip_sample</c>).</summary>
    private protected static void Clip(Span<float> x, float range) => TensorPrimitives.Clamp(x, -range, range, x);
}
