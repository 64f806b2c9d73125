using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Sdxl.Net.Models;
using Sdxl.Net.Previews;
using Sdxl.Net.Synthetic;
using Sdxl.Net.Tests.Synthetic;

namespace Sdxl.Net.Tests.FewStep;

/// <summary>Previews reported with the step progress: kind, size, cadence, and that nothing runs when nobody listens.</summary>
public sealed class PreviewTests
{
    // ComfyUI's SDXL latent → RGB factors (comfy/latent_formats.py, class SDXL), rows = latent channels, columns = R, G, B.
    private static readonly float[,] Factors = { { 0.3651f, 0.4232f, 0.4341f }, { -0.2533f, -0.0042f, 0.1068f }, { 0.1076f, 0.1111f, -0.0362f }, { -0.3165f, -0.2492f, -0.2188f } };
    private static readonly float[] Bias = [0.1084f, -0.0175f, -0.0011f];

    private static GenerationRequest Request(int steps = 5) => new()
    {
        Prompt = "a harbour at dawn",
        Width = 128,
        Height = 64,
        Steps = steps,
        GuidanceScale = 5,
        Seed = 11,
    };

    [Fact]
    public async Task Latent_previews_come_exactly_every_n_steps_and_show_the_latents_after_that_step()
    {
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).Build();
        var captured = new Dictionary<int, float[]>();
        var progress = new ProgressRecorder();
        var request = Request(7) with
        {
            Preview = new PreviewOptions { EveryNSteps = 3 },
            StepEnd = state => captured[state.Step] = state.Latents.ToArray(),
        };
        await pipeline.GenerateAsync(request, progress);

        var steps = progress.Steps;
        Assert.Equal(Enumerable.Range(1, 7), steps.Select(s => s.Step));
        Assert.All(steps, s => Assert.NotNull(s.Timestep));
        Assert.Equal([3, 6], steps.Where(s => s.Previews is not null).Select(s => s.Step));

        var preview = steps[2].Preview!;
        Assert.Equal((16, 8, 3), (preview.Width, preview.Height, preview.Step));

        // Each pixel is the latent pixel through the factors, [-1, 1] → bytes as ComfyUI's preview_to_image.
        var latents = captured[3];
        var rgb = preview.Rgb.ToArray();
        const int plane = 16 * 8;
        for (int p = 0; p < plane; p++)
        {
            for (int c = 0; c < 3; c++)
            {
                double v = Bias[c];
                for (int k = 0; k < 4; k++)
                {
                    v += latents[(k * plane) + p] * Factors[k, c];
                }

                var expected = (byte)Math.Round((Math.Clamp(v, -1, 1) + 1) * 127.5);
                Assert.InRange(rgb[(3 * p) + c], expected - 1, expected + 1);
            }
        }
    }

    [Fact]
    public async Task Previews_respect_max_size_and_cover_the_batch()
    {
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).Build();
        var progress = new ProgressRecorder();
        await pipeline.GenerateAsync(Request(2) with { BatchSize = 2, Preview = new PreviewOptions { MaxSize = 8 } }, progress);
        var previews = progress.Steps[^1].Previews!;
        Assert.Equal([0, 1], previews.Select(p => p.Index));
        Assert.All(previews, p => Assert.Equal((8, 4), (p.Width, p.Height)));
        Assert.All(previews, p => Assert.Equal(8 * 4 * 3, p.Rgb.Length));
        using var image = previews[0].ToImage();
        Assert.Equal((8, 4), (image.Width, image.Height));
    }

    [Fact]
    public async Task Taesd_previews_are_the_tiny_decoder_run_on_the_unet_latents()
    {
        using var taesd = new TempDirectory();
        SyntheticSdxlModel.WriteTaesdDecoder(taesd.Path);
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).Build();
        var captured = new Dictionary<int, float[]>();
        var progress = new ProgressRecorder();
        await pipeline.GenerateAsync(Request(4) with
        {
            Preview = new PreviewOptions { Kind = PreviewKind.Taesd, TaesdDirectory = taesd.Path, EveryNSteps = 2 },
            StepEnd = state => captured[state.Step] = state.Latents.ToArray(),
        }, progress);

        Assert.Equal([2, 4], progress.Steps.Where(s => s.Previews is not null).Select(s => s.Step));
        var preview = progress.Steps[1].Preview!;
        Assert.Equal((128, 64), (preview.Width, preview.Height));

        // Independent path: the ONNX file run directly on the latents of step 2 (scaling_factor 1.0: not rescaled).
        using var session = new InferenceSession(Path.Combine(taesd.Path, "vae_decoder", "model.onnx"));
        using var input = OrtValue.CreateTensorValueFromMemory(captured[2], [1, 4, 8, 16]);
        using var outputs = session.Run(new RunOptions(), ["latent_sample"], [input], ["sample"]);
        var decoded = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        var rgb = preview.Rgb.Span;
        const int plane = 128 * 64;
        for (int p = 0; p < plane; p += 37)
        {
            for (int c = 0; c < 3; c++)
            {
                var expected = (byte)Math.Round((Math.Clamp(decoded[(c * plane) + p], -1f, 1f) + 1) * 127.5);
                Assert.InRange(rgb[(3 * p) + c], expected - 1, expected + 1);
            }
        }

        var small = new ProgressRecorder();
        await pipeline.GenerateAsync(Request(1) with { Preview = new PreviewOptions { Kind = PreviewKind.Taesd, TaesdDirectory = taesd.Path, MaxSize = 32 } }, small);
        Assert.Equal((32, 16), (small.Steps[0].Preview!.Width, small.Steps[0].Preview!.Height));
    }

    [Fact]
    public async Task Nothing_is_computed_when_nobody_listens()
    {
        // A TAESD folder whose model cannot load: without a progress listener the decoder is never opened.
        using var broken = new TempDirectory();
        File.WriteAllText(Path.Combine(broken.Path, "model.onnx"), "not an onnx model");
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).Build();
        var request = Request(2) with { Preview = new PreviewOptions { Kind = PreviewKind.Taesd, TaesdDirectory = broken.Path } };
        var result = await pipeline.GenerateAsync(request);
        Assert.Single(result.Images);
        await Assert.ThrowsAnyAsync<Exception>(() => pipeline.GenerateAsync(request, new ProgressRecorder()));
    }

    [Fact]
    public async Task Invalid_preview_options_are_refused_before_anything_runs()
    {
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).Build();
        var e = await Assert.ThrowsAsync<ArgumentException>(() => pipeline.GenerateAsync(Request() with { Preview = new PreviewOptions { EveryNSteps = 0 } }));
        Assert.Contains("EveryNSteps", e.Message);
        e = await Assert.ThrowsAsync<ArgumentException>(() => pipeline.GenerateAsync(Request() with { Preview = new PreviewOptions { Kind = PreviewKind.Taesd } }));
        Assert.Contains("TaesdDirectory", e.Message);
    }

    [Fact]
    public async Task A_step_end_callback_may_replace_the_latents()
    {
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).Build();
        var seen = new List<(int Step, int Total)>();
        var result = await pipeline.GenerateAsync(Request(3) with
        {
            ReturnLatents = true,
            StepEnd = state =>
            {
                seen.Add((state.Step, state.TotalSteps));
                if (state.Step == state.TotalSteps)
                {
                    state.Latents.Fill(0.25f);
                }
            },
        });

        Assert.Equal([(1, 3), (2, 3), (3, 3)], seen);
        Assert.All(result.Latents!.Value.ToArray(), v => Assert.Equal(0.25f, v));
    }
}
