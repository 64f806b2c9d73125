using Sdxl.Net.Randomness;

namespace Sdxl.Net.Schedulers;

/// <summary>
/// Shared state of the VP multistep runs (DPM-Solver multistep and singlestep, UniPC): float32 timesteps and sigmas,
/// diffusers' step-index bookkeeping, unscaled model input, <c>α_t·x₀ + σ_t·noise</c> noising and the history of
/// converted model outputs.
/// </summary>
internal abstract class DpmFamilyRun : ISchedulerRun
{
    private protected readonly float[] _sigmas;
    private protected readonly float[] _timesteps;

    // Converted model outputs, oldest first (diffusers' model_outputs); allocated on the first step.
    private protected float[][]? _history;
    private int? _stepIndex;
    private int? _beginIndex;

    private protected DpmFamilyRun(long[] timesteps, float[] sigmas)
    {
        _sigmas = sigmas;
        _timesteps = new float[timesteps.Length];
        for (int i = 0; i < timesteps.Length; i++)
        {
            _timesteps[i] = timesteps[i];
        }
    }

    /// <inheritdoc />
    public IReadOnlyList<float> Timesteps => _timesteps;

    /// <inheritdoc />
    public IReadOnlyList<float>? Sigmas => _sigmas;

    /// <inheritdoc />
    public float InitNoiseSigma => 1f;

    /// <inheritdoc />
    public int Order => 1;

    /// <inheritdoc />
    public void SetBeginIndex(int beginIndex)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(beginIndex);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(beginIndex, _timesteps.Length);
        _beginIndex = beginIndex;
    }

    /// <inheritdoc />
    public void ScaleModelInput(ReadOnlySpan<float> sample, float timestep, Span<float> destination)
    {
        DpmSolverMath.RequireSameLength(sample.Length, destination.Length, nameof(destination));
        sample.CopyTo(destination);
    }

    /// <inheritdoc />
    public abstract void Step(ReadOnlySpan<float> modelOutput, float timestep, Span<float> sample, IRandomSource random);

    /// <inheritdoc />
    public void AddNoise(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, float timestep, Span<float> destination)
    {
        int index = _beginIndex is null ? DpmSolverMath.IndexForTimestep(_timesteps, timestep) : _stepIndex ?? _beginIndex.Value;
        DpmSolverMath.AddNoise(original, noise, _sigmas[index], destination);
    }

    /// <summary>
    /// The index of the step about to be taken (diffusers' <c>_init_step_index</c> on the first call), after checking
    /// the lengths; throws once the schedule is complete.
    /// </summary>
    private protected int BeginStep(int sampleLength, int modelOutputLength, float timestep)
    {
        DpmSolverMath.RequireSameLength(sampleLength, modelOutputLength, "modelOutput");
        int index = _stepIndex ??= _beginIndex ?? DpmSolverMath.IndexForTimestep(_timesteps, timestep);
        int count = _timesteps.Length;
        if (index >= count)
        {
            throw new InvalidOperationException($"The schedule of {count} steps is complete; create a new run for another generation.");
        }

        return index;
    }

    /// <summary>Records that the step at <paramref name="index"/> has been taken.</summary>
    private protected void EndStep(int index) => _stepIndex = index + 1;

    /// <summary>
    /// Allocates a history of <paramref name="order"/> buffers of <paramref name="length"/> values on the first step and
    /// returns true; on later steps checks that the sample kept its length and returns false.
    /// </summary>
    private protected bool EnsureHistory(int order, int length)
    {
        if (_history is not null)
        {
            if (_history[0].Length != length)
            {
                throw new ArgumentException(
                    $"The sample holds {length} values but earlier steps of this run held {_history[0].Length}; a run serves one batch shape.",
                    nameof(length));
            }

            return false;
        }

        _history = NewBuffers(order, length);
        return true;
    }

    /// <summary>Appends <paramref name="newest"/> to the history and returns the buffer of the oldest output it drops.</summary>
    private protected float[] PushHistory(float[] newest)
    {
        var history = _history!;
        var oldest = history[0];
        Array.Copy(history, 1, history, 0, history.Length - 1);
        history[^1] = newest;
        return oldest;
    }

    /// <summary><paramref name="count"/> buffers of <paramref name="length"/> values.</summary>
    private protected static float[][] NewBuffers(int count, int length)
    {
        var buffers = new float[count][];
        for (int i = 0; i < buffers.Length; i++)
        {
            buffers[i] = new float[length];
        }

        return buffers;
    }
}
