namespace Sdxl.Net.Denoising;

/// <summary>
/// Counts a denoising loop's model evaluations in sampler steps. Heun and KDPM2 (order 2) evaluate the model twice per
/// step, and their schedules hold 2N − 1 timesteps for N steps; a step is reported when (i + 1) is a multiple of the
/// order and at the last evaluation, which is when diffusers' pipelines advance their progress bar.
/// </summary>
internal readonly struct StepCounter
{
    private readonly int _order;
    private readonly int _evaluations;

    public StepCounter(int order, int evaluations)
    {
        _order = Math.Max(1, order);
        _evaluations = evaluations;
        Total = (evaluations + _order - 1) / _order;
    }

    /// <summary>The steps of the loop: ⌈evaluations / order⌉ (6 for Heun's 11 timesteps of 6 steps).</summary>
    public int Total { get; }

    /// <summary>The finished steps after evaluation <paramref name="index"/>, or <see langword="null"/> when that evaluation did not finish a step.</summary>
    public int? Advance(int index)
    {
        if (index + 1 == _evaluations)
        {
            return Total;
        }

        return (index + 1) % _order == 0 ? (index + 1) / _order : null;
    }
}
