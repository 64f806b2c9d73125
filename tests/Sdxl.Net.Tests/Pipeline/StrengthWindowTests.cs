using Sdxl.Net.Schedulers;

namespace Sdxl.Net.Tests.Pipeline;

/// <summary>
/// diffusers' img2img <c>get_timesteps</c> for many step counts and strengths:
/// <c>init_timestep = min(int(N·strength), N)</c>, <c>t_start = max(N − init_timestep, 0)</c>,
/// <c>timesteps = scheduler.timesteps[t_start·order:]</c> (the golden img2img.json pins two cases exactly).
/// </summary>
public sealed class StrengthWindowTests
{
    public static TheoryData<string, int, double> Cases()
    {
        var data = new TheoryData<string, int, double>();
        foreach (var scheduler in new[] { "euler", "ddim", "heun", "dpmpp-2m" })
        {
            foreach (var steps in new[] { 1, 4, 10, 25, 30, 50 })
            {
                foreach (var strength in new[] { 0.1, 0.3, 0.5, 0.75, 0.8, 1.0 })
                {
                    data.Add(scheduler, steps, strength);
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Window_is_the_tail_of_the_full_schedule(string name, int steps, double strength)
    {
        var scheduler = SchedulerCatalog.Default.Create(name, SchedulerConfig.SdxlBase);
        var full = scheduler.CreateRun(steps).Timesteps;
        int initTimestep = Math.Min((int)(steps * strength), steps);
        int start = Math.Max(steps - initTimestep, 0) * scheduler.Order;
        if (start >= full.Count)
        {
            Assert.Empty(SchedulePreview.Create(scheduler, steps, strength).Timesteps);
            return;
        }

        var window = SchedulePreview.Create(scheduler, steps, strength).Timesteps;
        Assert.Equal(full.Skip(start), window);
    }
}
