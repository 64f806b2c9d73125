namespace Sdxl.Net.Schedulers;

/// <summary>
/// The timestep schedules of the consistency-distilled samplers (LCM, TCD): a subset of the
/// <c>original_inference_steps</c> schedule the model was distilled on, or a custom list of training timesteps.
/// </summary>
internal static class DistillationSchedule
{
    /// <summary>The configured <c>original_inference_steps</c> (default 50), checked against the training schedule.</summary>
    /// <exception cref="ArgumentException">It is below 1 or above <c>num_train_timesteps</c>.</exception>
    public static int OriginalSteps(SchedulerConfig config, int trainSteps)
    {
        int steps = config.GetInt32("original_inference_steps", 50);
        if (steps < 1 || steps > trainSteps)
        {
            throw new ArgumentException(
                $"Scheduler option 'original_inference_steps' must be between 1 and num_train_timesteps ({trainSteps}); found {steps}.", nameof(config));
        }

        return steps;
    }

    /// <summary>
    /// The distillation schedule [k − 1, 2k − 1, ..., T − 1] (k = T // original steps), reversed and sampled at
    /// <c>floor(linspace(0, len, N, endpoint=False))</c>, as diffusers' <c>LCMScheduler</c>/<c>TCDScheduler.set_timesteps(N)</c>.
    /// </summary>
    public static float[] Timesteps(int trainSteps, int originalSteps, int inferenceSteps)
    {
        if (inferenceSteps < 1 || inferenceSteps > originalSteps)
        {
            throw new ArgumentOutOfRangeException(
                nameof(inferenceSteps), inferenceSteps, $"The number of inference steps must be between 1 and original_inference_steps ({originalSteps}).");
        }

        int k = trainSteps / originalSteps;
        double spacing = (double)originalSteps / inferenceSteps;
        var timesteps = new float[inferenceSteps];
        for (int i = 0; i < inferenceSteps; i++)
        {
            int position = (int)Math.Floor(i * spacing);
            timesteps[i] = ((originalSteps - position) * k) - 1;
        }

        return timesteps;
    }

    /// <summary>
    /// A custom schedule (<c>set_timesteps(timesteps=...)</c>): whole training timesteps below <c>num_train_timesteps</c>
    /// (their strictly descending order is checked by <see cref="CustomSchedules"/> for every sampler). diffusers only
    /// warns about timesteps off the distillation schedule.
    /// </summary>
    public static float[] CustomTimesteps(IReadOnlyList<double> timesteps, int trainSteps)
    {
        ArgumentNullException.ThrowIfNull(timesteps);
        var result = new float[timesteps.Count];
        for (int i = 0; i < result.Length; i++)
        {
            double t = timesteps[i];
            if (!(t >= 0 && t < trainSteps && t == Math.Floor(t)))
            {
                throw new ArgumentException($"Custom timesteps of this scheduler must be whole numbers from 0 to {trainSteps - 1}; found {t} at position {i}.", nameof(timesteps));
            }

            result[i] = (float)t;
        }

        return result;
    }
}
