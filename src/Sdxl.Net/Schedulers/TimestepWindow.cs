namespace Sdxl.Net.Schedulers;

/// <summary>The part of a schedule a pipeline actually runs.</summary>
/// <param name="BeginIndex">The index into <see cref="ISchedulerRun.Timesteps"/> of the first timestep run.</param>
/// <param name="Count">How many timesteps are run (scheduler <c>step</c> calls).</param>
/// <param name="InferenceSteps">The effective number of inference steps diffusers reports (<c>num_inference_steps</c> after the cut).</param>
internal readonly record struct TimestepRange(int BeginIndex, int Count, int InferenceSteps);

/// <summary>
/// The timestep windows of diffusers' SDXL pipelines: img2img <c>strength</c> and the ensemble-of-experts
/// <c>denoising_end</c> / <c>denoising_start</c> split between base and refiner.
/// </summary>
internal static class TimestepWindow
{
    /// <summary>The timesteps a window runs: <paramref name="count"/> of the run's schedule from <paramref name="begin"/>.</summary>
    public static float[] Slice(ISchedulerRun run, int begin, int count)
    {
        var result = new float[count];
        for (int i = 0; i < count; i++)
        {
            result[i] = run.Timesteps[begin + i];
        }

        return result;
    }

    /// <summary>
    /// img2img <c>get_timesteps</c> for <paramref name="strength"/>: skips the first <c>N − int(N·strength)</c> steps
    /// (times the scheduler order) and applies the begin index to <paramref name="run"/>.
    /// </summary>
    public static TimestepRange ForStrength(ISchedulerRun run, int inferenceSteps, double strength)
    {
        ArgumentNullException.ThrowIfNull(run);
        if (!(strength >= 0 && strength <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(strength), strength, "strength must be between 0 and 1.");
        }

        int initTimestep = Math.Min((int)(inferenceSteps * strength), inferenceSteps);
        int start = Math.Max(inferenceSteps - initTimestep, 0);
        int begin = start * run.Order;
        int count = run.Timesteps.Count - begin;
        if (count > 0)
        {
            run.SetBeginIndex(begin);
        }

        return new TimestepRange(begin, Math.Max(count, 0), inferenceSteps - start);
    }

    /// <summary>
    /// The base model's <c>denoising_end</c>: keeps the leading timesteps <c>t ≥ round(T − denoising_end·T)</c>.
    /// </summary>
    public static TimestepRange ForDenoisingEnd(ISchedulerRun run, double denoisingEnd, int trainTimesteps = 1000)
    {
        ArgumentNullException.ThrowIfNull(run);
        int cutoff = Cutoff(denoisingEnd, trainTimesteps, nameof(denoisingEnd));
        int count = 0;
        foreach (var t in run.Timesteps)
        {
            if (t >= cutoff)
            {
                count++;
            }
        }

        return new TimestepRange(0, count, count);
    }

    /// <summary>
    /// The refiner's <c>denoising_start</c>: keeps the trailing timesteps <c>t &lt; round(T − denoising_start·T)</c>,
    /// one more for second-order schedulers when that count is even (so the window starts on a first-order step),
    /// and applies the begin index to <paramref name="run"/>.
    /// </summary>
    public static TimestepRange ForDenoisingStart(ISchedulerRun run, double denoisingStart, int trainTimesteps = 1000)
    {
        ArgumentNullException.ThrowIfNull(run);
        int cutoff = Cutoff(denoisingStart, trainTimesteps, nameof(denoisingStart));
        int count = 0;
        foreach (var t in run.Timesteps)
        {
            if (t < cutoff)
            {
                count++;
            }
        }

        if (run.Order == 2 && count % 2 == 0)
        {
            count++;
        }

        count = Math.Min(count, run.Timesteps.Count);
        int begin = run.Timesteps.Count - count;
        if (count > 0)
        {
            run.SetBeginIndex(begin);
        }

        return new TimestepRange(begin, count, count);
    }

    private static int Cutoff(double fraction, int trainTimesteps, string name)
    {
        if (!(fraction > 0 && fraction < 1))
        {
            throw new ArgumentOutOfRangeException(name, fraction, $"{name} must be strictly between 0 and 1.");
        }

        // Python's round(): halves go to the even neighbour.
        return (int)Math.Round(trainTimesteps - (fraction * trainTimesteps), MidpointRounding.ToEven);
    }
}
