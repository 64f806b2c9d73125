namespace Sdxl.Net.Schedulers;

/// <summary>What a generation with a scheduler would run: its timesteps, sigmas, initial noise sigma and order.</summary>
/// <param name="Timesteps">The timesteps visited (after the img2img strength window when one is given).</param>
/// <param name="Sigmas">The full schedule's sigmas, or <see langword="null"/> for schedulers without them.</param>
/// <param name="InitNoiseSigma">diffusers' <c>init_noise_sigma</c>.</param>
/// <param name="Order">1, or 2 for second-order samplers.</param>
public sealed record SchedulePreview(IReadOnlyList<float> Timesteps, IReadOnlyList<float>? Sigmas, float InitNoiseSigma, int Order)
{
    /// <summary>Creates a run of <paramref name="scheduler"/> for <paramref name="steps"/> steps and describes it.</summary>
    /// <param name="scheduler">The scheduler.</param>
    /// <param name="steps">The number of inference steps.</param>
    /// <param name="strength">An img2img strength in (0, 1], or <see langword="null"/> for text-to-image.</param>
    /// <exception cref="ArgumentOutOfRangeException">The steps or strength are out of range.</exception>
    public static SchedulePreview Create(IScheduler scheduler, int steps, double? strength = null)
    {
        ArgumentNullException.ThrowIfNull(scheduler);
        ArgumentOutOfRangeException.ThrowIfLessThan(steps, 1);
        var run = scheduler.CreateRun(steps);
        int begin = 0, count = run.Timesteps.Count;
        if (strength is { } s)
        {
            if (!(s > 0) || s > 1)
            {
                throw new ArgumentOutOfRangeException(nameof(strength), s, "Strength must be in (0, 1].");
            }

            var window = TimestepWindow.ForStrength(run, steps, s);
            (begin, count) = (window.BeginIndex, window.Count);
        }

        return new SchedulePreview(TimestepWindow.Slice(run, begin, count), run.Sigmas?.ToArray(), run.InitNoiseSigma, run.Order);
    }
}
