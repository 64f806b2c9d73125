using System.Text.Json;
using Sdxl.Net.Schedulers;
using Xunit;

namespace Sdxl.Net.Tests.Schedulers;

public sealed class TimestepWindowTests
{
    public static TheoryData<int> Img2ImgCases => new() { 0, 1, 2, 3 };

    [Theory]
    [MemberData(nameof(Img2ImgCases))]
    public void Strength_window_noising_and_trajectory_match_diffusers(int caseIndex)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(GoldenSchedulerFile.PathOf("img2img")));
        var c = doc.RootElement.GetProperty("cases")[caseIndex];
        var scheduler = SchedulerCatalog.Default.FromConfig(SchedulerConfig.SdxlBase.With("_class_name", c.GetProperty("scheduler_class").GetString()));
        int steps = c.GetProperty("num_inference_steps").GetInt32();
        var run = scheduler.CreateRun(steps);
        Assert.Equal(GoldenSchedulerFile.Floats(c.GetProperty("full_timesteps")), run.Timesteps);

        var window = TimestepWindow.ForStrength(run, steps, c.GetProperty("strength").GetDouble());
        var expected = GoldenSchedulerFile.Floats(c.GetProperty("timesteps"));
        Assert.Equal(expected, run.Timesteps.Skip(window.BeginIndex).Take(window.Count));
        Assert.Equal(c.GetProperty("returned_num_inference_steps").GetInt32(), window.InferenceSteps);
        if (c.GetProperty("begin_index").ValueKind == JsonValueKind.Number)
        {
            Assert.Equal(c.GetProperty("begin_index").GetInt32(), window.BeginIndex);
            Assert.Equal(c.GetProperty("sigma_at_begin").GetSingle(), run.Sigmas![window.BeginIndex]);
        }

        var x = GoldenAssert.InitialNoise();
        var noise = new float[x.Length];
        for (int i = 0; i < noise.Length; i++)
        {
            noise[i] = (float)Math.Cos(0.23 * i);
        }

        var sample = new float[x.Length];
        run.AddNoise(x, noise, GoldenSchedulerFile.Floats(c.GetProperty("latent_timestep"))[0], sample);
        GoldenAssert.Close(GoldenSchedulerFile.Floats(c.GetProperty("add_noise_output")), sample, "add_noise");

        GoldenAssert.FreeRun(run, expected, sample, new ReplayRandomSource([]));
        GoldenAssert.Close(GoldenSchedulerFile.Floats(c.GetProperty("final_sample")), sample, "final sample");
    }

    [Fact]
    public void Denoising_split_matches_the_base_and_refiner_pipelines()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(GoldenSchedulerFile.PathOf("denoising_split")));
        var root = doc.RootElement;
        int steps = root.GetProperty("num_inference_steps").GetInt32();
        var scheduler = new EulerDiscreteScheduler(SchedulerConfig.SdxlBase);

        var baseRun = scheduler.CreateRun(steps);
        Assert.Equal(GoldenSchedulerFile.Floats(root.GetProperty("full_timesteps")), baseRun.Timesteps);
        Assert.Equal(GoldenSchedulerFile.Floats(root.GetProperty("full_sigmas")), baseRun.Sigmas);
        var b = root.GetProperty("base");
        var baseWindow = TimestepWindow.ForDenoisingEnd(baseRun, b.GetProperty("denoising_end").GetDouble());
        Assert.Equal(b.GetProperty("num_inference_steps").GetInt32(), baseWindow.Count);
        Assert.Equal(GoldenSchedulerFile.Floats(b.GetProperty("timesteps")), baseRun.Timesteps.Take(baseWindow.Count));

        var r = root.GetProperty("refiner");
        var refinerRun = scheduler.CreateRun(steps);
        var refinerWindow = TimestepWindow.ForDenoisingStart(refinerRun, r.GetProperty("denoising_start").GetDouble());
        Assert.Equal(r.GetProperty("num_inference_steps").GetInt32(), refinerWindow.Count);
        Assert.Equal(r.GetProperty("begin_index").GetInt32(), refinerWindow.BeginIndex);
        Assert.Equal(r.GetProperty("sigma_at_begin").GetSingle(), refinerRun.Sigmas![refinerWindow.BeginIndex]);
        var timesteps = GoldenSchedulerFile.Floats(r.GetProperty("timesteps"));
        Assert.Equal(timesteps, refinerRun.Timesteps.Skip(refinerWindow.BeginIndex));

        var sample = GoldenSchedulerFile.Floats(r.GetProperty("initial_sample"));
        var recorded = GoldenSchedulerFile.ParseSteps(r.GetProperty("steps"));
        var scaled = new float[sample.Length];
        foreach (var step in recorded)
        {
            refinerRun.ScaleModelInput(sample, step.Timestep, scaled);
            GoldenAssert.Close(step.ScaledInput, scaled, $"refiner step {step.Index} scaled input");
            refinerRun.Step(step.ModelOutput, step.Timestep, sample, new ReplayRandomSource([]));
            GoldenAssert.Close(step.PrevSample, sample, $"refiner step {step.Index}");
        }
    }

    [Fact]
    public void Second_order_refiner_window_starts_on_a_first_order_step()
    {
        var run = new FakeRun(order: 2, [900, 800, 800, 700, 700, 600, 600]);
        var window = TimestepWindow.ForDenoisingStart(run, 0.25); // cutoff 750: four timesteps below, even -> five
        Assert.Equal(5, window.Count);
        Assert.Equal(2, window.BeginIndex);
        Assert.Equal(2, run.BeginIndex);
    }

    private sealed class FakeRun(int order, float[] timesteps) : ISchedulerRun
    {
        public int? BeginIndex { get; private set; }

        public IReadOnlyList<float> Timesteps => timesteps;

        public IReadOnlyList<float>? Sigmas => null;

        public float InitNoiseSigma => 1;

        public int Order => order;

        public void SetBeginIndex(int beginIndex) => BeginIndex = beginIndex;

        public void ScaleModelInput(ReadOnlySpan<float> sample, float timestep, Span<float> destination) => throw new NotSupportedException();

        public void Step(ReadOnlySpan<float> modelOutput, float timestep, Span<float> sample, Randomness.IRandomSource random) => throw new NotSupportedException();

        public void AddNoise(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, float timestep, Span<float> destination) => throw new NotSupportedException();
    }
}

public sealed class SchedulerCatalogTests
{
    [Fact]
    public void Names_create_the_matching_classes_on_the_model_config()
    {
        var catalog = SchedulerCatalog.Default;
        Assert.IsType<EulerDiscreteScheduler>(catalog.Create("euler", SchedulerConfig.SdxlBase));
        Assert.IsType<EulerAncestralDiscreteScheduler>(catalog.Create("EULER-A", SchedulerConfig.SdxlBase));
        Assert.IsType<DdimScheduler>(catalog.Create("ddim", SchedulerConfig.SdxlBase));
        Assert.Contains("ddpm", catalog.Names);
    }

    [Fact]
    public void Karras_names_switch_on_karras_sigmas()
    {
        var golden = GoldenSchedulerFile.Load("euler_discrete_karras");
        var run = SchedulerCatalog.Default.Create("euler-karras", SchedulerConfig.SdxlBase).CreateRun(golden.Runs[0].InferenceSteps);
        Assert.Equal(golden.Runs[0].Sigmas, run.Sigmas);
    }

    [Fact]
    public void FromConfig_uses_the_class_name_and_rejects_unknown_classes()
    {
        Assert.IsType<EulerDiscreteScheduler>(SchedulerCatalog.Default.FromConfig(SchedulerConfig.SdxlBase));
        var e = Assert.Throws<NotSupportedException>(() => SchedulerCatalog.Default.FromConfig(SchedulerConfig.SdxlBase.With("_class_name", "FancyScheduler")));
        Assert.Contains("FancyScheduler", e.Message);
        Assert.Contains("EulerDiscreteScheduler", e.Message);
    }

    [Fact]
    public void With_registers_without_changing_the_original()
    {
        var custom = SchedulerCatalog.Default.With("my-euler", c => new EulerDiscreteScheduler(c.With("timestep_spacing", "trailing")), "MyScheduler");
        Assert.Contains("my-euler", custom.Names);
        Assert.DoesNotContain("my-euler", SchedulerCatalog.Default.Names);
        Assert.IsType<EulerDiscreteScheduler>(custom.FromConfig(SchedulerConfig.SdxlBase.With("_class_name", "MyScheduler")));
        var e = Assert.Throws<ArgumentException>(() => SchedulerCatalog.Default.Create("my-euler", SchedulerConfig.SdxlBase));
        Assert.Contains("euler-a", e.Message);
    }
}
