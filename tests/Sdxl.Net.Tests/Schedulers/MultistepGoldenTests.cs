using Sdxl.Net.Schedulers;
using Xunit;

namespace Sdxl.Net.Tests.Schedulers;

/// <summary>
/// KDPM2, LMS, PNDM and LCM against their diffusers golden files: exact schedules, single steps fed with the recorded
/// model output and sample, and whole trajectories driven by the fake model (LCM replays the recorded noise).
/// </summary>
public sealed class MultistepGoldenTests : SchedulerGoldenTheory<MultistepGoldenTests>, IGoldenFileSet
{
    // KDPM2's midpoint timesteps come from float32 sigma-to-t interpolation and agree to a few ulps; all others exactly.
    private static readonly Dictionary<string, int> Ulps = new() { ["k_dpm_2_discrete"] = 4 };

    private static readonly Dictionary<string, Func<SchedulerConfig, IScheduler>> Factories = new()
    {
        ["k_dpm_2_discrete"] = c => new KDpm2DiscreteScheduler(c),
        ["lms_discrete"] = c => new LmsDiscreteScheduler(c),
        ["pndm"] = c => new PndmScheduler(c),
        ["lcm"] = c => new LcmScheduler(c),
    };

    public static IEnumerable<string> Files => Factories.Keys;

    [Theory]
    [MemberData(nameof(Cases))]
    public void The_catalog_builds_the_same_scheduler_from_the_class_name(string file, int steps)
    {
        var (_, golden) = Load(file, steps);
        var config = GoldenSchedulerFile.Load(file).Config;
        GoldenAssert.Schedule(SchedulerCatalog.Default.FromConfig(config), golden, TimestepUlps(file));
    }

    private protected override IScheduler Create(string file, GoldenSchedulerFile golden) => Factories[file](golden.Config);

    private protected override int TimestepUlps(string file) => Ulps.GetValueOrDefault(file);
}
