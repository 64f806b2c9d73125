using System.Text.Json;
using Sdxl.Cli;
using Sdxl.Net.Distilled;
using Sdxl.Net.Imaging;
using Sdxl.Net.Models;
using Sdxl.Net.Synthetic;
using Sdxl.Net.Tests.EndToEnd;

namespace Sdxl.Net.Tests.FewStep;

/// <summary>Guidance-distilled (LCM) UNets: the guidance embedding input, no classifier-free guidance, the reference case.</summary>
public sealed class LcmTests
{
    private const string Case70 = "70_lcm_unet_4steps_w8_seed70";

    private static readonly SyntheticModelOptions SyntheticLcm = new() { TimeCondProjDim = 16 };

    [TinySdxlFact]
    public void Guidance_embedding_equals_the_one_diffusers_fed_the_unet()
    {
        // timestep_cond.npy = get_guidance_scale_embedding(tensor(8 - 1).repeat(1), embedding_dim=256) (case params.json).
        var (expected, shape) = NpyFile.Read(Path.Combine(TestPaths.TinySdxl!, "feature-cases", Case70, "timestep_cond.npy"));
        Assert.Equal([1, 256], shape);
        var actual = GuidanceEmbedding.Compute(7f, 256);
        for (int i = 0; i < actual.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-6, $"element {i}: {actual[i]} vs {expected[i]}");
        }
    }

    [TinySdxlFact]
    public async Task Reference_case_70_through_the_cli_matches_diffusers()
    {
        var root = TestPaths.TinySdxl!;
        var caseDir = Path.Combine(root, "feature-cases", Case70);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(caseDir, "params.json")));
        var p = doc.RootElement;
        var output = Path.Combine(Path.GetTempPath(), $"sdxl-{Case70}-{Guid.NewGuid():N}.npy");
        var args = TinyReferenceCaseTests.ToCliArguments(p, root, caseDir, output);
        args[args.IndexOf("--model") + 1] = Path.Combine(root, "variants", p.GetProperty("variant").GetString()!);
        var stderr = new StringWriter();
        try
        {
            Assert.Equal(0, await CliApp.RunAsync(args.ToArray(), new StringWriter(), stderr));
            var (actual, _) = NpyFile.Read(output);
            var (expected, _) = NpyFile.Read(Path.Combine(caseDir, "expected_image.npy"));
            double max = actual.Select((v, i) => (double)Math.Abs(v - expected[i])).Max();
            Assert.True(max <= p.GetProperty("tolerance_max_abs").GetDouble(), $"max abs error {max:E3}; {stderr}");
        }
        finally
        {
            File.Delete(output);
        }
    }

    [Fact]
    public async Task A_synthetic_lcm_unet_runs_without_cfg_and_takes_the_guidance_as_an_embedding()
    {
        var dir = SyntheticModels.Get(SyntheticLcm);
        Assert.Equal(16, SdxlModelInfo.Inspect(dir).GuidanceEmbeddingDim);
        Assert.Contains("LCM", SdxlModelInfo.Inspect(dir).Variant);
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(dir).Build();
        var request = FewStepPresets.Get("lcm").ApplyTo(new GenerationRequest { Prompt = "a lighthouse", NegativePrompt = "fog", Width = 64, Height = 64, Seed = 3 });
        var a = await pipeline.GenerateAsync(request);

        // No CFG: the negative prompt is never encoded, so changing it changes nothing.
        var b = await pipeline.GenerateAsync(request with { NegativePrompt = "a completely different negative prompt" });
        Assert.Equal(a.Images[0].Pixels.ToArray(), b.Images[0].Pixels.ToArray());

        // The guidance scale reaches the UNet through timestep_cond.
        var c = await pipeline.GenerateAsync(request with { GuidanceScale = 2f });
        Assert.NotEqual(a.Images[0].Pixels.ToArray(), c.Images[0].Pixels.ToArray());
        Assert.Equal("lcm", a.Scheduler);
    }

    [Fact]
    public async Task Guidance_at_or_below_one_uses_no_negative_branch()
    {
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).Build();
        var request = FewStepPresets.Get("turbo").ApplyTo(new GenerationRequest { Prompt = "a lighthouse", NegativePrompt = "fog", Width = 64, Height = 64, Seed = 3 });
        Assert.Equal(0f, request.GuidanceScale);
        var a = await pipeline.GenerateAsync(request);
        var b = await pipeline.GenerateAsync(request with { NegativePrompt = null });
        Assert.Equal(a.Images[0].Pixels.ToArray(), b.Images[0].Pixels.ToArray());
    }
}
