namespace Sdxl.Net.Schedulers;

/// <summary>A scheduler whose diffusers <c>set_timesteps</c> takes a custom <c>timesteps</c> list.</summary>
internal interface ICustomTimestepsScheduler
{
    /// <summary>Creates a run over exactly these timesteps (<c>set_timesteps(timesteps=...)</c>; one step per timestep).</summary>
    /// <exception cref="ArgumentException">The list is not a valid schedule for this sampler.</exception>
    ISchedulerRun CreateRun(IReadOnlyList<double> timesteps);
}

/// <summary>A scheduler whose diffusers <c>set_timesteps</c> takes a custom <c>sigmas</c> list.</summary>
internal interface ICustomSigmasScheduler
{
    /// <summary>Creates a run over exactly these noise levels, the final one included (<c>set_timesteps(sigmas=...)</c>; one step fewer than sigmas).</summary>
    /// <exception cref="ArgumentException">The list is not a valid schedule for this sampler.</exception>
    ISchedulerRun CreateRun(IReadOnlyList<double> sigmas);
}

/// <summary>A scheduler whose diffusers <c>step</c> takes <c>eta</c>, which the SDXL pipelines pass on every step.</summary>
internal interface IEtaScheduler
{
    /// <summary>The same sampler with another eta.</summary>
    IScheduler WithEta(float eta);
}

/// <summary>
/// The schedule a request asks for: diffusers' <c>retrieve_timesteps</c> (a step count, or a custom timesteps/sigmas list
/// that then sets the step count) and the pipeline's <c>eta</c>, which reaches only schedulers whose <c>step</c> takes it.
/// </summary>
internal static class CustomSchedules
{
    /// <summary>
    /// Creates the run: <c>set_timesteps(N)</c>, <c>set_timesteps(timesteps=...)</c> or <c>set_timesteps(sigmas=...)</c>.
    /// Returns it with diffusers' <c>num_inference_steps</c> (the list's length when a list is given).
    /// </summary>
    /// <exception cref="ArgumentException">Both lists are given, a list is empty or invalid, or the scheduler takes no such list.</exception>
    public static (ISchedulerRun Run, int InferenceSteps) CreateRun(IScheduler scheduler, int steps, IReadOnlyList<double>? timesteps, IReadOnlyList<double>? sigmas)
    {
        ArgumentNullException.ThrowIfNull(scheduler);
        if (timesteps is not null && sigmas is not null)
        {
            throw new ArgumentException("Give custom Timesteps or custom Sigmas, not both (diffusers' retrieve_timesteps accepts one).", nameof(GenerationRequest.Timesteps));
        }

        if (timesteps is not null)
        {
            CheckList(timesteps, 1, nameof(GenerationRequest.Timesteps));
            if (scheduler is not ICustomTimestepsScheduler custom)
            {
                throw new ArgumentException(
                    $"Scheduler '{scheduler.Name}' takes no custom timesteps here; custom timesteps work with euler, lcm and tcd.",
                    nameof(GenerationRequest.Timesteps));
            }

            var run = custom.CreateRun(timesteps);
            return (run, timesteps.Count);
        }

        if (sigmas is not null)
        {
            CheckList(sigmas, 2, nameof(GenerationRequest.Sigmas));
            if (scheduler is not ICustomSigmasScheduler custom)
            {
                throw new ArgumentException(
                    $"Scheduler '{scheduler.Name}' takes no custom sigmas here; custom sigmas work with euler.",
                    nameof(GenerationRequest.Sigmas));
            }

            var run = custom.CreateRun(sigmas);
            return (run, sigmas.Count - 1);
        }

        return (scheduler.CreateRun(steps), steps);
    }

    /// <summary>
    /// The scheduler with the request's eta when its <c>step</c> takes one (DDIM, TCD); other schedulers ignore eta, as
    /// diffusers' <c>prepare_extra_step_kwargs</c> does.
    /// </summary>
    /// <exception cref="ArgumentException">Eta is out of the scheduler's range.</exception>
    public static IScheduler WithEta(IScheduler scheduler, float? eta)
    {
        if (eta is not { } value || scheduler is not IEtaScheduler withEta)
        {
            return scheduler;
        }

        try
        {
            return withEta.WithEta(value);
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw new ArgumentException(
                $"Eta {value} is out of range for scheduler '{scheduler.Name}' (tcd: 0 to 1; ddim: 0 or more).", nameof(GenerationRequest.Eta), e);
        }
    }

    private static void CheckList(IReadOnlyList<double> values, int minimum, string name)
    {
        if (values.Count < minimum)
        {
            throw new ArgumentException($"{name} needs at least {minimum} value(s); found {values.Count}.", name);
        }

        for (int i = 0; i < values.Count; i++)
        {
            if (!double.IsFinite(values[i]) || values[i] < 0)
            {
                throw new ArgumentException($"{name} must be finite and non-negative; found {values[i]} at position {i}.", name);
            }
        }

        // Every sampler walks from noise to the image: each timestep or noise level below the one before. diffusers'
        // LCM and TCD refuse other orders; its Euler would walk an ascending list back towards noise without a word.
        for (int i = 1; i < values.Count; i++)
        {
            if (values[i] >= values[i - 1])
            {
                throw new ArgumentException(
                    $"Custom {name.ToLowerInvariant()} must be in strictly descending order; {values[i]} at position {i} follows {values[i - 1]}.", name);
            }
        }
    }
}
