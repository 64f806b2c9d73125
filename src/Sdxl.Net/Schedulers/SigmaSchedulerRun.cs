using System.Collections.ObjectModel;
using System.Numerics.Tensors;
using Sdxl.Net.Randomness;

namespace Sdxl.Net.Schedulers;

/// <summary>
/// Shared state of the k-diffusion style runs: float32 timesteps and sigmas, step-index bookkeeping,
/// <c>x / sqrt(σ² + 1)</c> input scaling and <c>x + σ·noise</c> noising.
/// </summary>
internal abstract class SigmaSchedulerRun : ISchedulerRun
{
    private protected readonly float[] _timesteps;
    private protected readonly float[] _sigmas;
    private protected StepIndexTracker _index;
    private float[][]? _scratch;

    private protected SigmaSchedulerRun(float[] timesteps, float[] sigmas, float initNoiseSigma, int order)
    {
        _timesteps = timesteps;
        _sigmas = sigmas;
        InitNoiseSigma = initNoiseSigma;
        Order = order;
        Timesteps = new ReadOnlyCollection<float>(timesteps);
        Sigmas = new ReadOnlyCollection<float>(sigmas);
    }

    /// <inheritdoc />
    public IReadOnlyList<float> Timesteps { get; }

    /// <inheritdoc />
    public IReadOnlyList<float>? Sigmas { get; }

    /// <inheritdoc />
    public float InitNoiseSigma { get; }

    /// <inheritdoc />
    public int Order { get; }

    /// <summary>The sigma used by <see cref="ScaleModelInput"/> at a step index.</summary>
    private protected virtual float InputSigma(int stepIndex) => _sigmas[stepIndex];

    /// <inheritdoc />
    public void SetBeginIndex(int beginIndex) => _index.SetBegin(beginIndex, _timesteps.Length);

    /// <inheritdoc />
    public virtual void ScaleModelInput(ReadOnlySpan<float> sample, float timestep, Span<float> destination)
    {
        CheckLengths(sample.Length, destination.Length, nameof(destination));
        float sigma = InputSigma(_index.Current(_timesteps, timestep));
        TensorPrimitives.Divide(sample, MathF.Sqrt((sigma * sigma) + 1f), destination);
    }

    /// <inheritdoc />
    public abstract void Step(ReadOnlySpan<float> modelOutput, float timestep, Span<float> sample, IRandomSource random);

    /// <inheritdoc />
    public void AddNoise(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, float timestep, Span<float> destination)
    {
        CheckLengths(original.Length, noise.Length, nameof(noise));
        CheckLengths(original.Length, destination.Length, nameof(destination));
        float sigma = _sigmas[_index.ForAddNoise(_timesteps, timestep)];
        TensorPrimitives.MultiplyAdd(noise, sigma, original, destination);
    }

    /// <summary>Throws unless a span has the sample's length.</summary>
    private protected static void CheckLengths(int expected, int actual, string name) => CheckLengthsCore(expected, actual, name);

    /// <summary>Throws unless a span has the sample's length.</summary>
    internal static void CheckLengthsCore(int expected, int actual, string name)
    {
        if (expected != actual)
        {
            throw new ArgumentException($"'{name}' has {actual} elements; the sample has {expected}.", name);
        }
    }

    /// <summary>
    /// Writes the denoised estimate x₀ for a sample at noise level <paramref name="sigma"/>:
    /// <c>sample − σ·ε</c>, <c>v·(−σ/√(σ²+1)) + sample/(σ²+1)</c> or the model output itself.
    /// </summary>
    internal static void PredictOriginal(
        PredictionType predictionType, ReadOnlySpan<float> modelOutput, ReadOnlySpan<float> sample, float sigma, Span<float> destination)
    {
        switch (predictionType)
        {
            case PredictionType.Epsilon:
                TensorPrimitives.Multiply(modelOutput, sigma, destination);
                TensorPrimitives.Subtract(sample, destination, destination);
                break;
            case PredictionType.VPrediction:
                float variance = (sigma * sigma) + 1f;
                TensorPrimitives.Divide(sample, variance, destination);
                TensorPrimitives.MultiplyAdd(modelOutput, -sigma / MathF.Sqrt(variance), destination, destination);
                break;
            default:
                modelOutput.CopyTo(destination);
                break;
        }
    }

    /// <summary>A scratch buffer of the sample's length, allocated once per run.</summary>
    private protected Span<float> Scratch(int length, int slot = 0)
    {
        _scratch ??= new float[2][];
        if (_scratch[slot] is null || _scratch[slot].Length != length)
        {
            _scratch[slot] = new float[length];
        }

        return _scratch[slot];
    }

    /// <summary>Throws when stepping past the end of the schedule.</summary>
    private protected int CurrentStep(float timestep, int sampleLength, int modelOutputLength)
    {
        CheckLengths(sampleLength, modelOutputLength, "modelOutput");
        int index = _index.Current(_timesteps, timestep);
        if (index >= _timesteps.Length)
        {
            throw new InvalidOperationException($"The schedule has {_timesteps.Length} steps and all of them have been taken.");
        }

        return index;
    }
}
