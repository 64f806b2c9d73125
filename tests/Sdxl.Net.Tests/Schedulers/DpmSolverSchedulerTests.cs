using Sdxl.Net.Randomness;
using Sdxl.Net.Schedulers;
using Xunit;

namespace Sdxl.Net.Tests.Schedulers;

/// <summary>Option handling, catalog entries and run behaviour of the DPM-Solver and UniPC schedulers.</summary>
public sealed class DpmSolverSchedulerTests
{
    [Theory]
    [InlineData(4, 2, false, new[] { 1, 2, 1, 2 })]
    [InlineData(4, 2, true, new[] { 1, 2, 1, 1 })]
    [InlineData(5, 2, true, new[] { 1, 2, 1, 2, 1 })]
    [InlineData(6, 3, true, new[] { 1, 2, 3, 1, 2, 1 })]
    [InlineData(7, 3, true, new[] { 1, 2, 3, 1, 2, 3, 1 })]
    [InlineData(8, 3, true, new[] { 1, 2, 3, 1, 2, 3, 1, 2 })]
    [InlineData(3, 1, false, new[] { 1, 1, 1 })]
    public void Singlestep_order_list_matches_diffusers_get_order_list(int steps, int order, bool lowerOrderFinal, int[] expected) =>
        Assert.Equal(expected, DpmSolverSinglestepScheduler.OrderList(steps, order, lowerOrderFinal));

    [Theory]
    [InlineData("dpmpp-2m", "dpmpp-2m")]
    [InlineData("dpmpp-2m-karras", "dpmpp-2m-karras")]
    [InlineData("dpmpp-2m-sde", "dpmpp-2m-sde")]
    [InlineData("dpmpp-2m-sde-karras", "dpmpp-2m-sde-karras")]
    [InlineData("dpmpp-2s", "dpmpp-2s")]
    [InlineData("dpmpp-singlestep", "dpmpp-2s")]
    [InlineData("unipc", "unipc")]
    public void Catalog_names_create_the_matching_sampler(string name, string expectedName) =>
        Assert.Equal(expectedName, SchedulerCatalog.Default.Create(name, SchedulerConfig.SdxlBase).Name);

    [Fact]
    public void Catalog_class_names_keep_the_configured_algorithm()
    {
        var config = SchedulerConfig.SdxlBase
            .With("_class_name", "DPMSolverMultistepScheduler")
            .With("solver_order", 3.0)
            .With("use_karras_sigmas", true);
        Assert.Equal("dpmpp-3m-karras", SchedulerCatalog.Default.FromConfig(config).Name);
        Assert.Equal("unipc-karras", SchedulerCatalog.Default.FromConfig(config.With("_class_name", "UniPCMultistepScheduler")).Name);
        Assert.Equal("dpmpp-2s-karras", SchedulerCatalog.Default.FromConfig(config.With("_class_name", "DPMSolverSinglestepScheduler").With("solver_order", 2.0)).Name);
    }

    [Fact]
    public void Unsupported_options_fail_with_a_clear_message()
    {
        var solverP = Assert.Throws<NotSupportedException>(() => new UniPcMultistepScheduler(SchedulerConfig.SdxlBase.With("solver_p", "DDIMScheduler")));
        Assert.Contains("solver_p", solverP.Message);
        Assert.Throws<NotSupportedException>(() => new DpmSolverMultistepScheduler(SchedulerConfig.SdxlBase.With("algorithm_type", "unknown")));
        Assert.Throws<ArgumentException>(() => new DpmSolverMultistepScheduler(SchedulerConfig.SdxlBase.With("solver_order", 4.0)));
        var zero = Assert.Throws<ArgumentException>(() => new DpmSolverMultistepScheduler(SchedulerConfig.SdxlBase.With("algorithm_type", "dpmsolver")));
        Assert.Contains("sigma_min", zero.Message);
        Assert.Throws<ArgumentException>(() => new DpmSolverMultistepScheduler(
            SchedulerConfig.SdxlBase.With("use_karras_sigmas", true).With("use_exponential_sigmas", true)));
    }

    [Fact]
    public void Sde_variant_draws_one_normal_of_the_sample_size_per_step()
    {
        var run = new DpmSolverMultistepScheduler(SchedulerConfig.SdxlBase.With("algorithm_type", "sde-dpmsolver++")).CreateRun(5);
        var random = new CountingRandom();
        var sample = new float[12];
        var output = new float[12];
        foreach (float t in run.Timesteps)
        {
            run.Step(output, t, sample, random);
        }

        Assert.Equal(Enumerable.Repeat(12, 5), random.Draws);
    }

    [Theory]
    [InlineData("dpmpp-2m")]
    [InlineData("dpmpp-2s")]
    [InlineData("unipc")]
    public void Add_noise_at_the_begin_index_uses_the_vp_scaling_of_that_sigma(string name)
    {
        var run = SchedulerCatalog.Default.Create(name, SchedulerConfig.SdxlBase).CreateRun(30);
        run.SetBeginIndex(6);
        float[] original = [1f, -2f, 0.5f];
        float[] noise = [0.25f, 1f, -3f];
        var destination = new float[3];
        run.AddNoise(original, noise, run.Timesteps[6], destination);

        double sigma = run.Sigmas![6];
        double alpha = 1 / Math.Sqrt((sigma * sigma) + 1);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal((alpha * original[i]) + (alpha * sigma * noise[i]), destination[i], 1e-5);
        }
    }

    [Fact]
    public void Stepping_past_the_schedule_is_an_error()
    {
        var run = new UniPcMultistepScheduler(SchedulerConfig.SdxlBase).CreateRun(2);
        var sample = new float[4];
        foreach (float t in run.Timesteps)
        {
            run.Step(new float[4], t, sample, new CountingRandom());
        }

        Assert.Throws<InvalidOperationException>(() => run.Step(new float[4], run.Timesteps[^1], sample, new CountingRandom()));
    }

    private sealed class CountingRandom : IRandomSource
    {
        public List<int> Draws { get; } = [];

        public void NextNormal(Span<float> destination)
        {
            Draws.Add(destination.Length);
            destination.Fill(0.5f);
        }

        public void NextUniform(Span<float> destination) => throw new InvalidOperationException("No uniform draws expected.");
    }
}
