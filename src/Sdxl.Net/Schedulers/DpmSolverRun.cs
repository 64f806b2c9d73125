using Sdxl.Net.Randomness;

namespace Sdxl.Net.Schedulers;

/// <summary>
/// Shared state of the DPM-Solver runs (multistep and singlestep): the options, the update rules with their buffers
/// and the per-step noise of the stochastic variants.
/// </summary>
internal abstract class DpmSolverRun : DpmFamilyRun
{
    private protected readonly DpmSolverOptions _options;
    private protected DpmSolverUpdate? _update;
    private protected float[]? _noise;

    private protected DpmSolverRun(DpmSolverOptions options, long[] timesteps, float[] sigmas)
        : base(timesteps, sigmas)
    {
        _options = options;
    }

    /// <summary>Allocates the history, update buffers and noise on the first step; returns true when it did.</summary>
    private protected bool EnsureBuffers(int length)
    {
        if (!EnsureHistory(_options.SolverOrder, length))
        {
            return false;
        }

        _update = new DpmSolverUpdate(_options, length);
        _noise = _options.IsStochastic ? new float[length] : null;
        return true;
    }

    /// <summary>
    /// Converts the model output at step <paramref name="index"/> into the newest history entry (reusing the oldest
    /// buffer) and draws this step's noise for the stochastic variants.
    /// </summary>
    private protected float[] PushModelOutput(ReadOnlySpan<float> modelOutput, ReadOnlySpan<float> sample, int index, IRandomSource random)
    {
        var newest = _history![0];
        PushHistory(newest);
        DpmSolverMath.ConvertModelOutput(
            _options.PredictionType, _options.PredictsData, modelOutput, sample, _sigmas[index], newest, _update!.Scratch);

        if (_options.IsStochastic)
        {
            random.NextNormal(_noise);
        }

        return newest;
    }
}
