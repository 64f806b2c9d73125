using Sdxl.Net.Schedulers;
using Xunit;

namespace Sdxl.Net.Tests.Schedulers;

/// <summary>
/// KDPM2, LMS, PNDM and LCM against their diffusers golden files: exact schedules, single steps fed with the recorded
/// model output and sample, and whole trajectories driven by the fake model (LCM replays the recorded noise).
/// </summary>
public sealed class MultistepGoldenTests
{
    // KDPM2's midpoint timesteps come from float32 sigma-to-t interpolation and agree to a few ulps; all others exactly.
    private static readonly Dictionary<string, int> TimestepUlps = new() { ["k_dpm_2_discrete"] = 4 };

    private static readonly Dictionary<string, Func<SchedulerConfig, IScheduler>> Factories = new()
    {
        ["k_dpm_2_discrete"] = c => new KDpm2DiscreteScheduler(c),
        ["lms_discrete"] = c => new LmsDiscreteScheduler(c),
        ["pndm"] = c => new PndmScheduler(c),
        ["lcm"] = c => new LcmScheduler(c),
    };

    public static TheoryData<string, int> Cases()
    {
        var data = new TheoryData<string, int>();
        foreach (var file in Factories.Keys)
        {
            data.Add(file, 4);
            data.Add(file, 20);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Schedule_matches_diffusers(string file, int steps)
    {
        var (scheduler, golden) = Load(file, steps);
        GoldenAssert.Schedule(scheduler, golden, TimestepUlps.GetValueOrDefault(file));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Each_step_matches_diffusers_given_the_recorded_inputs(string file, int steps)
    {
        var (scheduler, golden) = Load(file, steps);
        GoldenAssert.StepByStep(scheduler, golden);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Trajectory_with_the_fake_model_matches_diffusers(string file, int steps)
    {
        var (scheduler, golden) = Load(file, steps);
        GoldenAssert.FreeRunning(scheduler, golden);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void The_catalog_builds_the_same_scheduler_from_the_class_name(string file, int steps)
    {
        var (_, golden) = Load(file, steps);
        var config = GoldenSchedulerFile.Load(file).Config;
        GoldenAssert.Schedule(SchedulerCatalog.Default.FromConfig(config), golden, TimestepUlps.GetValueOrDefault(file));
    }

    private static (IScheduler Scheduler, GoldenRun Golden) Load(string file, int steps)
    {
        var golden = GoldenSchedulerFile.Load(file);
        return (Factories[file](golden.Config), golden.Runs.Single(r => r.InferenceSteps == steps));
    }
}
