using Sdxl.Net.Schedulers;
using Xunit;

namespace Sdxl.Net.Tests.Schedulers;

/// <summary>Every scheduler of this half against its diffusers golden file.</summary>
public sealed class SchedulerGoldenTests
{
    private static readonly Dictionary<string, Func<SchedulerConfig, IScheduler>> Factories = new()
    {
        ["euler_ancestral_discrete"] = c => new EulerAncestralDiscreteScheduler(c),
        ["ddim"] = c => new DdimScheduler(c),
        ["ddpm"] = c => new DdpmScheduler(c),
    };

    public static TheoryData<string> Files => new(Factories.Keys);

    [Theory]
    [MemberData(nameof(Files))]
    public void Schedule_matches_diffusers(string file)
    {
        var golden = GoldenSchedulerFile.Load(file);
        foreach (var run in golden.Runs)
        {
            GoldenAssert.Schedule(Factories[file](golden.Config), run);
        }
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Each_step_matches_diffusers(string file)
    {
        var golden = GoldenSchedulerFile.Load(file);
        foreach (var run in golden.Runs)
        {
            GoldenAssert.StepByStep(Factories[file](golden.Config), run);
        }
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Free_running_trajectory_matches_diffusers(string file)
    {
        var golden = GoldenSchedulerFile.Load(file);
        foreach (var run in golden.Runs)
        {
            GoldenAssert.FreeRunning(Factories[file](golden.Config), run);
        }
    }
}
