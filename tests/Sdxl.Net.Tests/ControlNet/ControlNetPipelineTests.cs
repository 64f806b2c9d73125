using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.ML.OnnxRuntime;
using Sdxl.Net.ControlNet;
using Sdxl.Net.Denoising;
using Sdxl.Net.DependencyInjection;
using Sdxl.Net.Models;
using Sdxl.Net.Randomness;
using Sdxl.Net.Runtime;
using Sdxl.Net.Schedulers;
using Sdxl.Net.Synthetic;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Sdxl.Net.Tests.ControlNet;

/// <summary>
/// ControlNet on synthetic folders: a ControlNet-enabled UNet (residual inputs added where diffusers adds them, same
/// weights as the plain UNet) and random ControlNets with OnnxStack's SDXL signature.
/// </summary>
public sealed class ControlNetPipelineTests
{
    private static readonly SyntheticModelOptions OnnxStack = new() { ControlNetUNet = ControlNetUNetLayout.OnnxStackFolder };
    private static readonly SyntheticModelOptions OwnUnet = new() { ControlNetUNet = ControlNetUNetLayout.UNetTakesResiduals };
    private static readonly ConcurrentDictionary<SyntheticControlNetOptions, Lazy<string>> Nets = new();

    private static string Net(SyntheticControlNetOptions? options = null)
    {
        options ??= new SyntheticControlNetOptions();
        return Nets.GetOrAdd(options, o => new Lazy<string>(() =>
        {
            var dir = Path.Combine(Path.GetTempPath(), "sdxl-tests-controlnet-" + Guid.NewGuid().ToString("N"), "net-" + o.Seed);
            SyntheticSdxlModel.WriteControlNet(dir, new SyntheticModelOptions(), o);
            return dir;
        })).Value;
    }

    private static Image<Rgb24> Edges(int seed)
    {
        var image = new Image<Rgb24>(64, 64);
        var random = new Random(seed);
        for (int i = 0; i < 40; i++)
        {
            int x = random.Next(64), y = random.Next(64);
            for (int d = 0; d < 12 && x + d < 64; d++)
            {
                image[x + d, y] = new Rgb24(255, 255, 255);
            }
        }

        return image;
    }

    private static GenerationRequest Request(params ControlImage[] images) => new()
    {
        Prompt = "a house", NegativePrompt = "blurry", Width = 64, Height = 64, Steps = 6, GuidanceScale = 5, Seed = 21,
        ControlImages = images.Length == 0 ? null : images,
    };

    private static float[] Pixels(GenerationResult result) => result.Images[0].Pixels.ToArray();

    [Fact]
    public async Task Scale_zero_equals_the_plain_unet_exactly_and_a_scale_changes_the_image()
    {
        using var edges = Edges(1);
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get(OnnxStack)).AddControlNet(Net()).Build();
        var plain = Pixels(await pipeline.GenerateAsync(Request()));
        var zero = Pixels(await pipeline.GenerateAsync(Request(new ControlImage { Image = edges, Scale = 0 })));
        var controlled = Pixels(await pipeline.GenerateAsync(Request(new ControlImage { Image = edges, Scale = 0.8 })));
        Assert.Equal(plain, zero);
        Assert.True(MaxDifference(plain, controlled) > 1e-3, "a ControlNet at scale 0.8 must change the image");

        // The same plain folder without any ControlNet configured (unet/ only) gives the same image.
        using var withoutNets = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get(OnnxStack)).Build();
        Assert.Equal(plain, Pixels(await withoutNets.GenerateAsync(Request())));
    }

    [Fact]
    public async Task A_unet_that_takes_residuals_is_fed_zeros_without_a_controlnet_which_equals_the_plain_unet()
    {
        using var own = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get(OwnUnet)).Build();
        using var plain = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).Build();
        Assert.Equal(Pixels(await plain.GenerateAsync(Request())), Pixels(await own.GenerateAsync(Request())));

        // And the folder's own UNet serves a ControlNet too.
        using var edges = Edges(2);
        using var controlled = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get(OwnUnet)).AddControlNet(Net()).Build();
        var image = Pixels(await controlled.GenerateAsync(Request(new ControlImage { Image = edges, Scale = 0.5 })));
        Assert.True(MaxDifference(Pixels(await plain.GenerateAsync(Request())), image) > 1e-3);
    }

    // Exports differ in conditioning_scale (double or float), timestep (1-D or scalar) and whether config.json is there
    // (then the residual shapes are probed by running the net once). Same weights: the same image.
    [Fact]
    public async Task Signature_variants_and_a_missing_config_give_the_same_image()
    {
        using var edges = Edges(3);
        async Task<float[]> Run(SyntheticControlNetOptions options)
        {
            using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get(OnnxStack)).AddControlNet(Net(options), "net").Build();
            return Pixels(await pipeline.GenerateAsync(Request(new ControlImage { Image = edges, Scale = 0.7 })));
        }

        var reference = await Run(new SyntheticControlNetOptions());
        Assert.Equal(reference, await Run(new SyntheticControlNetOptions { DoubleScale = false }));
        Assert.Equal(reference, await Run(new SyntheticControlNetOptions { VectorTimestep = false }));
        Assert.Equal(reference, await Run(new SyntheticControlNetOptions { WriteConfig = false }));
    }

    // diffusers' controlnet_keep for 10 steps: on when i/10 >= start and (i + 1)/10 <= end.
    [Theory]
    [InlineData(0.0, 1.0, "1111111111")]
    [InlineData(0.2, 0.75, "0011111000")]
    [InlineData(0.0, 0.3, "1110000000")]
    [InlineData(0.55, 1.0, "0000001111")]
    [InlineData(0.5, 0.55, "0000000000")]
    public void The_guidance_window_keeps_the_steps_diffusers_keeps(double start, double end, string expected)
    {
        var unit = new ControlUnit(null!, [], 1.0, start, end);
        var keep = string.Concat(Enumerable.Range(0, 10).Select(i => unit.Keep(i, 10) == 1.0 ? '1' : '0'));
        Assert.Equal(expected, keep);
    }

    // The residuals the UNet receives, step by step, for a window [0.25, 0.75] of 8 steps: zero on steps 0, 1, 6, 7.
    [Fact]
    public void Windows_switch_the_residuals_on_and_off_at_the_right_steps()
    {
        using var edges = Edges(4);
        var sums = RecordResiduals(8, new ControlImage { Image = edges, Scale = 1.0, GuidanceStart = 0.25, GuidanceEnd = 0.75 });
        var on = sums.Select(s => s.Max(r => r.Max(Math.Abs)) > 0 ? '1' : '0');
        Assert.Equal("00111100", string.Concat(on));
    }

    // Two nets with scales a and b: the UNet receives a·R_A + b·R_B, where R_A and R_B are each net's residuals at
    // scale 1 (the graph multiplies by the scale, so the sum matches to the last bit). Checked on the first step, whose
    // model input does not depend on the residuals.
    [Fact]
    public void Two_nets_sum_their_residuals_each_times_its_scale()
    {
        using var edgesA = Edges(5);
        using var edgesB = Edges(6);
        const double a = 0.6, b = 1.3;
        var ra = RecordResiduals(1, new ControlImage { Image = edgesA, Scale = 1.0, ControlNet = "a" })[0];
        var rb = RecordResiduals(1, new ControlImage { Image = edgesB, Scale = 1.0, ControlNet = "b" })[0];
        var both = RecordResiduals(1,
            new ControlImage { Image = edgesA, Scale = a, ControlNet = "a" },
            new ControlImage { Image = edgesB, Scale = b, ControlNet = "b" })[0];
        Assert.Equal(ra.Length, both.Length);
        for (int k = 0; k < both.Length; k++)
        {
            Assert.True(ra[k].Any(v => v != 0) && rb[k].Any(v => v != 0));
            for (int i = 0; i < both[k].Length; i++)
            {
                float expected = (ra[k][i] * (float)a) + (rb[k][i] * (float)b);
                Assert.True(Math.Abs(expected - both[k][i]) <= 1e-6f * (1 + Math.Abs(expected)), $"residual {k}[{i}]: {both[k][i]} != a·{ra[k][i]} + b·{rb[k][i]}");
            }
        }

    }

    // Guess mode: the nets see only the positive rows and the negative half gets zeros, so with guidance the image differs.
    [Fact]
    public async Task Guess_mode_changes_the_image_and_leaves_the_negative_residuals_zero()
    {
        using var edges = Edges(7);
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get(OnnxStack)).AddControlNet(Net()).Build();
        var normal = Pixels(await pipeline.GenerateAsync(Request(new ControlImage { Image = edges })));
        var guess = Pixels(await pipeline.GenerateAsync(Request(new ControlImage { Image = edges }) with { ControlNetGuessMode = true }));
        Assert.True(MaxDifference(normal, guess) > 1e-4);

        var residuals = RecordResiduals(1, guess: true, new ControlImage { Image = edges, Scale = 1.0, ControlNet = "a" })[0];
        foreach (var r in residuals)
        {
            Assert.All(r.AsSpan(0, r.Length / 2).ToArray(), v => Assert.Equal(0f, v));
            Assert.Contains(r.Skip(r.Length / 2), v => v != 0);
        }
    }

    [Fact]
    public async Task Img2img_with_a_controlnet_differs_from_img2img_alone()
    {
        using var edges = Edges(8);
        using var init = Edges(9);
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get(OnnxStack)).AddControlNet(Net()).Build();
        var request = new GenerationRequest { Prompt = "a house", Steps = 6, GuidanceScale = 5, Seed = 2, Image = init, Strength = 0.6 };
        var plain = Pixels(await pipeline.GenerateAsync(request));
        var controlled = Pixels(await pipeline.GenerateAsync(request with { ControlImages = [new ControlImage { Image = edges }] }));
        var zero = Pixels(await pipeline.GenerateAsync(request with { ControlImages = [new ControlImage { Image = edges, Scale = 0 }] }));
        Assert.Equal(plain, zero);
        Assert.True(MaxDifference(plain, controlled) > 1e-4);
    }

    [Fact]
    public async Task Per_phase_loading_and_dependency_injection_give_the_same_image()
    {
        using var edges = Edges(11);
        var request = Request(new ControlImage { Image = edges, Scale = 0.9 });
        using var keep = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get(OnnxStack)).AddControlNet(Net()).Build();
        using var perPhase = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get(OnnxStack)).AddControlNet(Net())
            .WithMemoryMode(MemoryMode.LoadPerPhase).Build();
        var expected = Pixels(await keep.GenerateAsync(request));
        Assert.Equal(expected, Pixels(await perPhase.GenerateAsync(request)));

        var services = new ServiceCollection();
        services.AddSdxl(o =>
        {
            o.ModelPath = SyntheticModels.Get(OnnxStack);
            o.ControlNetPaths = [Net()];
        });
        using (var provider = services.BuildServiceProvider())
        {
            var pipeline = provider.GetRequiredService<SdxlPipeline>();
            Assert.Equal(expected, Pixels(await pipeline.GenerateAsync(request)));
        }

        var options = new SdxlOptions { ModelPath = SyntheticModels.Get(OnnxStack), ControlNetPaths = ["/no/such/controlnet"] };
        Assert.Contains(options.Validate(), e => e.Contains("Sdxl:ControlNetPaths", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Wrong_setups_fail_clearly()
    {
        using var edges = Edges(10);
        var e = Assert.Throws<SdxlModelException>(() => SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).AddControlNet(Net()).Build());
        Assert.Contains("ControlNet-enabled UNet", e.Message);

        // A net made for a three-level UNet has 6 down residuals; the two-level UNet takes 4.
        var deep = Path.Combine(Path.GetTempPath(), "sdxl-tests-controlnet-" + Guid.NewGuid().ToString("N"));
        SyntheticSdxlModel.WriteControlNet(deep, new SyntheticModelOptions { UnetDownLevels = 3 });
        var counts = Assert.Throws<SdxlModelException>(() => SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get(OnnxStack)).AddControlNet(deep).Build());
        Assert.Contains("6 down-block residuals", counts.Message);
        Assert.Contains("takes 4", counts.Message);

        using var plain = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).Build();
        await Assert.ThrowsAsync<ArgumentException>(() => plain.GenerateAsync(Request(new ControlImage { Image = edges })));

        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get(OnnxStack)).AddControlNet(Net(), "canny").Build();
        var name = await Assert.ThrowsAsync<ArgumentException>(() => pipeline.GenerateAsync(Request(new ControlImage { Image = edges, ControlNet = "depth" })));
        Assert.Contains("'canny'", name.Message);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => pipeline.GenerateAsync(Request(new ControlImage { Image = edges, GuidanceStart = 0.6, GuidanceEnd = 0.5 })));
        await Assert.ThrowsAsync<ArgumentException>(() => pipeline.GenerateAsync(Request(new ControlImage { Image = edges }, new ControlImage { Image = edges })));
        Assert.Throws<ArgumentException>(() => SdxlPipeline.CreateBuilder().AddControlNet(Net(), "x").AddControlNet(Net(), "x"));
    }

    /// <summary>
    /// Runs the denoising loop of the synthetic OnnxStack folder with the pipeline's ControlNet provider and records,
    /// per step, the residuals written into the UNet's inputs.
    /// </summary>
    private static float[][][] RecordResiduals(int steps, params ControlImage[] images) => RecordResiduals(steps, false, images);

    private static float[][][] RecordResiduals(int steps, bool guess, params ControlImage[] images)
    {
        using var model = SdxlModelFolder.Open(SyntheticModels.Get(OnnxStack), ExecutionProviderOptions.Cpu);
        model.LoadControlNetUNet(ExecutionProviderOptions.Cpu);
        var names = images.Select(i => i.ControlNet).Distinct().ToList();
        var nets = new List<ControlNetModel>();
        try
        {
            foreach (var n in names)
            {
                nets.Add(new ControlNetModel(n ?? "a", Net(n == "b" ? new SyntheticControlNetOptions { Seed = 12 } : null), ExecutionProviderOptions.Cpu));
            }

            var request = Request(images) with { ControlNetGuessMode = guess };
            const int rows = 2, lh = 8, lw = 8;
            var random = new Random(9);
            float[] Fill(int n) => Enumerable.Range(0, n).Select(_ => (float)((random.NextDouble() * 2) - 1)).ToArray();
            var cond = new DenoisingConditioning(Fill(rows * 77 * 96), 77, 96, Fill(rows * 48), Fill(rows * 6), 6);
            var provider = ControlNetStage.CreateProvider(model, nets, request, cond, 64, 64)!;
            var recorder = new Recorder(provider);
            var run = SchedulerCatalog.Default.Create("euler", model.SchedulerConfig).CreateRun(steps);
            run.SetBeginIndex(0);
            var latents = Fill(4 * lh * lw);
            using var runOptions = new RunOptions();
            DenoisingLoop.Run(ControlNetStage.UNetFor(model, request), run, run.Timesteps, latents, 1, lh, lw, cond, 5f, 0f,
                new TorchCpuGenerator(1), null, runOptions, CancellationToken.None, null, new DenoisingExtensions([recorder], []));
            return [.. recorder.Steps];
        }
        finally
        {
            foreach (var n in nets)
            {
                n.Dispose();
            }
        }
    }

    private static double MaxDifference(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs(x - y)).Max();

    private sealed class Recorder(ControlNetInputProvider inner) : IUNetInputProvider
    {
        private List<string> _names = [];

        public List<float[][]> Steps { get; } = [];

        public IEnumerable<UNetExtraInput> Declare(UNetShape shape)
        {
            var declared = inner.Declare(shape).ToList();
            _names = declared.Select(d => d.Name).ToList();
            return declared;
        }

        public void WriteFixed(UNetBinding binding) => inner.WriteFixed(binding);

        public void WriteStep(in DenoisingStepInput step, UNetBinding binding, RunOptions runOptions)
        {
            inner.WriteStep(step, binding, runOptions);
            Steps.Add(_names.Select(n => binding.ExtraInput(n).Readable.ToArray()).ToArray());
        }
    }
}
