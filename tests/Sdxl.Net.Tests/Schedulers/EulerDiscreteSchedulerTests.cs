using Sdxl.Net.Schedulers;
using Xunit;

namespace Sdxl.Net.Tests.Schedulers;

public sealed class EulerDiscreteSchedulerTests
{
    public static TheoryData<string> Files => new() { "euler_discrete", "euler_discrete_trailing", "euler_discrete_linspace", "euler_discrete_karras" };

    [Theory]
    [MemberData(nameof(Files))]
    public void Schedule_matches_diffusers(string file)
    {
        var golden = GoldenSchedulerFile.Load(file);
        var scheduler = new EulerDiscreteScheduler(golden.Config);
        foreach (var run in golden.Runs)
        {
            // Karras timesteps come from a float64 log-sigma interpolation that lands within a few float32 ulps of diffusers'.
            GoldenAssert.Schedule(scheduler, run, timestepUlps: file.EndsWith("karras", StringComparison.Ordinal) ? 4 : 0);
        }
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Each_step_matches_diffusers(string file)
    {
        var golden = GoldenSchedulerFile.Load(file);
        foreach (var run in golden.Runs)
        {
            GoldenAssert.StepByStep(new EulerDiscreteScheduler(golden.Config), run);
        }
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Free_running_trajectory_matches_diffusers(string file)
    {
        var golden = GoldenSchedulerFile.Load(file);
        foreach (var run in golden.Runs)
        {
            GoldenAssert.FreeRunning(new EulerDiscreteScheduler(golden.Config), run);
        }
    }

    [Fact]
    public void Sdxl_base_config_builds_euler_defaults()
    {
        var run = new EulerDiscreteScheduler(SchedulerConfig.SdxlBase).CreateRun(4);
        Assert.Equal([751f, 501f, 251f, 1f], run.Timesteps);
        Assert.Equal(0f, run.Sigmas![^1]);
    }

    [Fact]
    public void Unknown_beta_schedule_is_rejected_with_the_supported_values()
    {
        var e = Assert.Throws<NotSupportedException>(() => new EulerDiscreteScheduler(SchedulerConfig.SdxlBase.With("beta_schedule", "quadratic")));
        Assert.Contains("scaled_linear", e.Message);
    }

    [Fact]
    public void Stepping_past_the_schedule_throws()
    {
        var run = new EulerDiscreteScheduler(SchedulerConfig.SdxlBase).CreateRun(1);
        var sample = new float[4];
        run.Step(new float[4], run.Timesteps[0], sample, new ReplayRandomSource([]));
        Assert.Throws<InvalidOperationException>(() => run.Step(new float[4], run.Timesteps[0], sample, new ReplayRandomSource([])));
    }
}

public sealed class NoiseScheduleTests
{
    [Fact]
    public void Scaled_linear_betas_and_alphas_cumprod_match_torch_float32()
    {
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(GoldenSchedulerFile.PathOf("_common")));
        var root = doc.RootElement;
        var betas = NoiseSchedule.Betas(SchedulerConfig.SdxlBase);
        Assert.Equal(GoldenSchedulerFile.Floats(root.GetProperty("betas_float32")), betas);
        var alphasCumprod = NoiseSchedule.AlphasCumprod(betas);
        Assert.Equal(GoldenSchedulerFile.Floats(root.GetProperty("alphas_cumprod_float32")), alphasCumprod);
        Assert.Equal(GoldenSchedulerFile.Floats(root.GetProperty("train_sigmas_float32")), NoiseSchedule.TrainSigmas(alphasCumprod));
    }
}
