using Sdxl.Net.Schedulers;
using Xunit;

namespace Sdxl.Net.Tests.Schedulers;

/// <summary>
/// Custom timesteps and sigmas (diffusers' <c>retrieve_timesteps</c> → <c>set_timesteps(timesteps=...)</c> /
/// <c>(sigmas=...)</c>), checked against diffusers-made goldens: a custom list equal to a schedule diffusers recorded must
/// reproduce that recording step by step (trailing Euler N=4 is [999, 749, 499, 249]; LCM N=4 is [999, 759, 499, 259]).
/// </summary>
public sealed class CustomScheduleTests
{
    [Fact]
    public void Euler_custom_timesteps_reproduce_the_trailing_golden()
    {
        var golden = GoldenSchedulerFile.Load("euler_discrete_trailing").Runs.Single(r => r.InferenceSteps == 4);

        // The model's config is SDXL's (leading spacing): a custom list ignores the spacing except in init_noise_sigma,
        // which diffusers derives from timestep_spacing: √(σ_max² + 1) for leading.
        var (run, steps) = CustomSchedules.CreateRun(new EulerDiscreteScheduler(SchedulerConfig.SdxlBase), 50, [999, 749, 499, 249], null);
        Assert.Equal(4, steps);
        Assert.Equal(golden.Timesteps, run.Timesteps.ToArray());
        Assert.Equal(golden.Sigmas, run.Sigmas!.ToArray());
        Assert.Equal(MathF.Sqrt((golden.Sigmas![0] * golden.Sigmas[0]) + 1f), run.InitNoiseSigma);
        StepByStep(run, golden);
    }

    [Fact]
    public void Euler_custom_sigmas_include_the_final_sigma_and_reproduce_the_trailing_golden()
    {
        var golden = GoldenSchedulerFile.Load("euler_discrete_trailing").Runs.Single(r => r.InferenceSteps == 4);
        var sigmas = golden.Sigmas!.Select(s => (double)s).ToArray();
        var (run, steps) = CustomSchedules.CreateRun(new EulerDiscreteScheduler(SchedulerConfig.SdxlBase), 50, null, sigmas);
        Assert.Equal(4, steps);
        Assert.Equal(golden.Sigmas, run.Sigmas!.ToArray());

        // Timesteps are _sigma_to_t of the given sigmas: the training timesteps they were interpolated from.
        for (int i = 0; i < 4; i++)
        {
            Assert.True(Math.Abs(run.Timesteps[i] - golden.Timesteps[i]) < 1e-2, $"timestep {i}: {run.Timesteps[i]} vs {golden.Timesteps[i]}");
        }

        StepByStep(run, golden);
    }

    [Fact]
    public void Lcm_custom_timesteps_reproduce_the_lcm_golden()
    {
        var golden = GoldenSchedulerFile.Load("lcm").Runs.Single(r => r.InferenceSteps == 4);
        var (run, steps) = CustomSchedules.CreateRun(new LcmScheduler(SchedulerConfig.SdxlBase), 1, golden.Timesteps.Select(t => (double)t).ToArray(), null);
        Assert.Equal(4, steps);
        Assert.Equal(golden.Timesteps, run.Timesteps.ToArray());
        StepByStep(run, golden);
    }

    [Fact]
    public void Invalid_lists_are_refused_with_what_is_allowed()
    {
        var euler = new EulerDiscreteScheduler(SchedulerConfig.SdxlBase);
        Assert.Contains("not both", Assert.Throws<ArgumentException>(() => CustomSchedules.CreateRun(euler, 4, [999], [1, 0])).Message);
        Assert.Contains("euler, lcm and tcd", Assert.Throws<ArgumentException>(() => CustomSchedules.CreateRun(new HeunDiscreteScheduler(SchedulerConfig.SdxlBase), 4, [999, 499], null)).Message);
        Assert.Contains("descending", Assert.Throws<ArgumentException>(() => CustomSchedules.CreateRun(new TcdScheduler(SchedulerConfig.SdxlBase), 4, [499, 999], null)).Message);
        Assert.Contains("whole numbers", Assert.Throws<ArgumentException>(() => CustomSchedules.CreateRun(new LcmScheduler(SchedulerConfig.SdxlBase), 4, [999.5], null)).Message);
        Assert.Contains("Karras", Assert.Throws<ArgumentException>(() => CustomSchedules.CreateRun(
            new EulerDiscreteScheduler(SchedulerConfig.SdxlBase.With("use_karras_sigmas", true)), 4, [999, 499], null)).Message);
        Assert.Contains("at least 2", Assert.Throws<ArgumentException>(() => CustomSchedules.CreateRun(euler, 4, null, [1.0])).Message);

        // Euler: diffusers would clamp 1000 to the last training step and walk an ascending list back into noise.
        Assert.Contains("from 0 to 999", Assert.Throws<ArgumentException>(() => CustomSchedules.CreateRun(euler, 4, [1000, 500], null)).Message);
        Assert.Contains("700 at position 1 follows 500", Assert.Throws<ArgumentException>(() => CustomSchedules.CreateRun(euler, 4, [500, 700], null)).Message);
        Assert.Contains("strictly descending", Assert.Throws<ArgumentException>(() => CustomSchedules.CreateRun(euler, 4, [999, 999], null)).Message);
        Assert.Contains("20 at position 1 follows 14", Assert.Throws<ArgumentException>(() => CustomSchedules.CreateRun(euler, 4, null, [14, 20, 0])).Message);
        Assert.Contains("strictly descending", Assert.Throws<ArgumentException>(() => CustomSchedules.CreateRun(euler, 4, null, [14, 1, 1, 0])).Message);

        // Fractional timesteps stay allowed for Euler (its sigmas are interpolated), as do sigmas ending above zero.
        Assert.Equal(2, CustomSchedules.CreateRun(euler, 4, [999.0, 499.25], null).InferenceSteps);
        Assert.Equal(2, CustomSchedules.CreateRun(euler, 4, null, [14.6, 1.2, 0.03]).InferenceSteps);
    }

    [Fact]
    public void Trailing_euler_ancestral_takes_one_step_from_the_top_to_the_clean_sample()
    {
        // diffusers, trailing N=1: timesteps [999], sigmas [σ_999, 0], init_noise_sigma = σ_max (trailing). With σ_to = 0
        // the ancestral step has σ_up = σ_down = 0: x − σ·ε exactly (the noise it draws is multiplied by zero).
        var euler = GoldenSchedulerFile.Load("euler_discrete_trailing").Runs.Single(r => r.InferenceSteps == 4);
        var run = SchedulerCatalog.Default.Create("euler-a-trailing", SchedulerConfig.SdxlBase).CreateRun(1);
        Assert.Equal([999f], run.Timesteps.ToArray());
        Assert.Equal([euler.Sigmas![0], 0f], run.Sigmas!.ToArray());
        Assert.Equal(euler.Sigmas[0], run.InitNoiseSigma);

        var sample = GoldenAssert.InitialNoise().Select(v => v * run.InitNoiseSigma).ToArray();
        var start = sample.ToArray();
        var scaled = new float[sample.Length];
        var eps = new float[sample.Length];
        run.ScaleModelInput(sample, 999f, scaled);
        GoldenAssert.FakeEps(scaled, 999f, eps);
        run.Step(eps, 999f, sample, new ReplayRandomSource([new float[sample.Length]]));
        var expected = start.Select((x, i) => x - (euler.Sigmas[0] * eps[i])).ToArray();
        GoldenAssert.Close(expected, sample, "trailing euler-a, 1 step");
    }

    private static void StepByStep(ISchedulerRun run, GoldenRun golden)
    {
        run.SetBeginIndex(0);
        var random = new ReplayRandomSource(golden.Steps.SelectMany(s => s.Noise));
        var sample = golden.InitialSample.ToArray();
        var scaled = new float[sample.Length];
        foreach (var step in golden.Steps)
        {
            run.ScaleModelInput(sample, step.Timestep, scaled);
            GoldenAssert.Close(step.ScaledInput, scaled, $"step {step.Index} scaled input");
            run.Step(step.ModelOutput, step.Timestep, sample, random);
            GoldenAssert.Close(step.PrevSample, sample, $"step {step.Index} prev_sample");
            step.PrevSample.CopyTo(sample, 0);
        }

        Assert.Equal(0, random.Remaining);
    }
}
