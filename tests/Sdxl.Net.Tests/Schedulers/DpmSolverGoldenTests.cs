using Sdxl.Net.Schedulers;
using Xunit;

namespace Sdxl.Net.Tests.Schedulers;

/// <summary>
/// The DPM-Solver and UniPC schedulers against the diffusers golden files: schedules, single steps fed with the
/// recorded model output and sample, and whole trajectories driven by the fake model of the golden README
/// (the SDE variant replays the recorded noise).
/// </summary>
public sealed class DpmSolverGoldenTests : SchedulerGoldenTheory<DpmSolverGoldenTests>, IGoldenFileSet
{
    public static IEnumerable<string> Files =>
        ["dpmsolver_multistep", "dpmsolver_multistep_karras", "dpmsolver_multistep_sde_karras", "dpmsolver_singlestep", "unipc_multistep"];

    [Theory]
    [InlineData("dpmsolver_multistep")]
    [InlineData("dpmsolver_singlestep")]
    [InlineData("unipc_multistep")]
    public void The_effective_diffusers_config_builds_the_same_scheduler(string file)
    {
        // The stored effective config lists every option explicitly (including Python's -Infinity), unlike base + overrides.
        var golden = GoldenSchedulerFile.Load(file);
        var scheduler = Create(golden.SchedulerClass, SchedulerConfig.Parse(golden.EffectiveConfigJson));
        foreach (var run in golden.Runs)
        {
            GoldenAssert.Schedule(scheduler, run);
            GoldenAssert.FreeRunning(scheduler, run);
        }
    }

    internal static IScheduler Create(string className, SchedulerConfig config) => className switch
    {
        "DPMSolverMultistepScheduler" => new DpmSolverMultistepScheduler(config),
        "DPMSolverSinglestepScheduler" => new DpmSolverSinglestepScheduler(config),
        "UniPCMultistepScheduler" => new UniPcMultistepScheduler(config),
        _ => throw new ArgumentOutOfRangeException(nameof(className), className, "Not a DPM-Solver or UniPC class."),
    };

    /// <summary>The scheduler as diffusers built it: <c>Cls.from_config(sdxl_base_config, **overrides)</c>.</summary>
    private protected override IScheduler Create(string file, GoldenSchedulerFile golden) => Create(golden.SchedulerClass, golden.BaseWithOverrides);
}
