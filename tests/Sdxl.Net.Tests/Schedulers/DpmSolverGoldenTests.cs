using System.Text.Json;
using System.Text.Json.Nodes;
using Sdxl.Net.Schedulers;
using Xunit;

namespace Sdxl.Net.Tests.Schedulers;

/// <summary>
/// The DPM-Solver and UniPC schedulers against the diffusers golden files: schedules, single steps fed with the
/// recorded model output and sample, and whole trajectories driven by the fake model of the golden README
/// (the SDE variant replays the recorded noise).
/// </summary>
public sealed class DpmSolverGoldenTests
{
    public static TheoryData<string, int> Cases()
    {
        var data = new TheoryData<string, int>();
        foreach (var file in new[] { "dpmsolver_multistep", "dpmsolver_multistep_karras", "dpmsolver_multistep_sde_karras", "dpmsolver_singlestep", "unipc_multistep" })
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
        GoldenAssert.Schedule(scheduler, golden);
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
    [InlineData("dpmsolver_multistep")]
    [InlineData("dpmsolver_singlestep")]
    [InlineData("unipc_multistep")]
    public void The_effective_diffusers_config_builds_the_same_scheduler(string file)
    {
        // The stored effective config lists every option explicitly (including Python's -Infinity), unlike base + overrides.
        var golden = Golden.Load(file);
        var scheduler = Create(golden.ClassName, SchedulerConfig.Parse(golden.EffectiveConfigJson));
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

    private static (IScheduler Scheduler, GoldenRun Golden) Load(string file, int steps)
    {
        var golden = Golden.Load(file);
        return (Create(golden.ClassName, golden.Config), golden.Runs.Single(r => r.InferenceSteps == steps));
    }

    /// <summary>A golden file read as diffusers built its scheduler: <c>Cls.from_config(sdxl_base_config, **overrides)</c>.</summary>
    private sealed record Golden(string ClassName, SchedulerConfig Config, string EffectiveConfigJson, GoldenRun[] Runs)
    {
        public static Golden Load(string name)
        {
            // Python's json writes lambda_min_clipped as -Infinity, which JsonDocument rejects.
            string text = File.ReadAllText(GoldenSchedulerFile.PathOf(name));
            using var document = JsonDocument.Parse(text.Replace("-Infinity", "\"-Infinity\"", StringComparison.Ordinal));
            var root = document.RootElement;
            var config = SchedulerConfig.SdxlBase;
            foreach (var option in root.GetProperty("overrides").EnumerateObject())
            {
                config = config.With(option.Name, JsonNode.Parse(option.Value.GetRawText()));
            }

            string effective = root.GetProperty("config").GetRawText().Replace("\"-Infinity\"", "-Infinity", StringComparison.Ordinal);
            var runs = root.GetProperty("runs").EnumerateArray().Select(GoldenSchedulerFile.ParseRun).ToArray();
            return new Golden(root.GetProperty("scheduler_class").GetString()!, config, effective, runs);
        }
    }
}
