using System.Text.Json;
using Sdxl.Cli;
using Sdxl.Net.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Sdxl.Net.Tests.EndToEnd;

/// <summary>
/// The weighted-prompt reference cases (feature-cases with <c>"prompt_syntax": "weighted"</c>, images computed with
/// AUTOMATIC1111's algorithm) run through the CLI as a user would, and the CLI's prompt-language options.
/// </summary>
public sealed class WeightedPromptCaseTests
{
    private static async Task<(int Exit, string Out, string Err)> Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int exit = await CliApp.RunAsync(args, stdout, stderr);
        return (exit, stdout.ToString(), stderr.ToString());
    }

    [TinySdxlTheory]
    [MemberData(nameof(Text.PromptParserTests.FeatureCases), MemberType = typeof(Text.PromptParserTests))]
    public async Task Cli_reproduces_the_reference_image(string caseName)
    {
        var args = TinyReferenceCaseTests.ToCliArguments(WeightedFeatureCases.Params(caseName), TestPaths.TinySdxl!, Path.Combine(WeightedFeatureCases.Root, caseName), "out.npy");
        Assert.Contains("--prompt-syntax", args);
        await TinyReferenceCaseTests.AssertCliReproduces(TestPaths.TinySdxl!, Path.Combine(WeightedFeatureCases.Root, caseName));
    }

    [TinySdxlFact]
    public async Task Weighted_syntax_changes_the_image_and_plain_reads_brackets_as_text()
    {
        // The same command with and without --prompt-syntax weighted must differ (the weights reach the UNet).
        var model = Path.Combine(TestPaths.TinySdxl!, "tiny-sdxl-base");
        var latents = Path.Combine(TestPaths.TinySdxl!, "cases", "01_euler", "latents.npy");
        var dir = Directory.CreateTempSubdirectory("sdxl-weighted-").FullName;
        try
        {
            string[] common = ["generate", "--model", model, "--prompt", "a (red:1.5) horse", "--negative-prompt", "blurry", "--width", "64", "--height", "64",
                "--steps", "3", "--guidance", "5", "--latents", latents];
            Assert.Equal(0, (await Run([.. common, "--output", Path.Combine(dir, "plain.npy")])).Exit);
            Assert.Equal(0, (await Run([.. common, "--prompt-syntax", "weighted", "--output", Path.Combine(dir, "weighted.npy")])).Exit);
            var plain = NpyFile.Read(Path.Combine(dir, "plain.npy")).Data;
            var weighted = NpyFile.Read(Path.Combine(dir, "weighted.npy")).Data;
            Assert.NotEqual(plain, weighted);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [TinySdxlFact]
    public async Task Recipe_records_syntax_weighting_and_clip_skip_and_reproduces_the_image()
    {
        var model = Path.Combine(TestPaths.TinySdxl!, "tiny-sdxl-base");
        var dir = Directory.CreateTempSubdirectory("sdxl-weighted-recipe-").FullName;
        try
        {
            var first = Path.Combine(dir, "first.png");
            var again = Path.Combine(dir, "again.png");
            var (exit, _, err) = await Run("generate", "--model", model, "--prompt", "a ((castle)) BREAK fog", "--width", "64", "--height", "64",
                "--steps", "3", "--guidance", "5", "--seed", "7", "--prompt-syntax", "weighted", "--prompt-weighting", "no-mean-restore",
                "--clip-skip", "1", "--output", first);
            Assert.True(exit == 0, err);
            var recipe = ImageRecipe.ReadRequest(first)!;
            Assert.Equal(Sdxl.Net.Text.PromptSyntax.Weighted, recipe.PromptSyntax);
            Assert.Equal(Sdxl.Net.Text.PromptWeighting.NoMeanRestore, recipe.PromptWeighting);
            Assert.Equal(1, recipe.ClipSkip);

            (exit, _, err) = await Run("generate", "--from-image", first, "--model", model, "--output", again);
            Assert.True(exit == 0, err);
            using var a = Image.Load<Rgb24>(first);
            using var b = Image.Load<Rgb24>(again);
            for (int y = 0; y < a.Height; y++)
            {
                for (int x = 0; x < a.Width; x++)
                {
                    Assert.Equal(a[x, y], b[x, y]);
                }
            }

            var parameters = a.Metadata.GetPngMetadata().TextData.Single(t => t.Keyword == ImageRecipe.ParametersKeyword).Value;
            Assert.Contains("Prompt syntax: Weighted, Prompt weighting: NoMeanRestore, Clip skip: 1", parameters, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [TinySdxlFact]
    public async Task Tokenize_shows_chunks_tokens_and_weights()
    {
        var model = Path.Combine(TestPaths.TinySdxl!, "tiny-sdxl-base");
        var prompt = "a (red:1.5) horse BREAK " + string.Join(' ', Enumerable.Repeat("cat", 80));
        var (exit, output, err) = await Run("tokenize", "--model", model, "--prompt", prompt, "--prompt-syntax", "weighted");
        Assert.True(exit == 0, err);
        Assert.Contains("tokenizer: 3 chunk(s), 83 tokens", output, StringComparison.Ordinal);
        Assert.Contains("chunk 1 (3 tokens): a red:1.5 horse", output, StringComparison.Ordinal);
        Assert.Contains("chunk 3 (5 tokens): cat cat cat cat cat", output, StringComparison.Ordinal);

        (exit, output, err) = await Run("tokenize", "--model", model, "--prompt", prompt, "--prompt-syntax", "weighted", "--json");
        Assert.True(exit == 0, err);
        using var doc = JsonDocument.Parse(output);
        var chunks = doc.RootElement.GetProperty("tokenizer_2").GetProperty("chunks");
        Assert.Equal(3, chunks.GetArrayLength());
        Assert.Equal("red</w>", chunks[0].GetProperty("tokens")[1].GetString());
        Assert.Equal(1.5, chunks[0].GetProperty("weights")[2].GetDouble(), 6);
        Assert.Equal(0, chunks[0].GetProperty("input_ids")[76].GetInt32());
    }

    [Theory]
    [InlineData("--prompt-syntax", "fancy", "--prompt-syntax must be plain or weighted")]
    [InlineData("--prompt-weighting", "comfyui", "--prompt-weighting applies to --prompt-syntax weighted")]
    [InlineData("--clip-skip", "-1", "--clip-skip must be an integer from 0 to 64")]
    public async Task Bad_prompt_options_are_usage_errors(string flag, string value, string message)
    {
        var (exit, _, err) = await Run("generate", "--model", SyntheticModels.Get(), "--prompt", "x", "--steps", "1", "--guidance", "5",
            flag, value, "--output", Path.Combine(Path.GetTempPath(), "never.npy"));
        Assert.Equal(2, exit);
        Assert.Contains(message, err, StringComparison.Ordinal);
        Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [TinySdxlFact]
    public async Task Clip_skip_beyond_the_encoders_layers_is_a_usage_error()
    {
        var model = Path.Combine(TestPaths.TinySdxl!, "tiny-sdxl-base");
        var (exit, _, err) = await Run("generate", "--model", model, "--prompt", "x", "--width", "64", "--height", "64", "--steps", "1",
            "--guidance", "5", "--clip-skip", "3", "--output", Path.Combine(Path.GetTempPath(), $"never-{Guid.NewGuid():N}.npy"));
        Assert.Equal(2, exit);
        Assert.Contains("ClipSkip must be from 0 to 2", err, StringComparison.Ordinal);
    }
}

/// <summary>Library-level refusals of the prompt language (no reference data needed).</summary>
public sealed class PromptLanguageValidationTests
{
    [Fact]
    public async Task A_unet_with_a_fixed_77_token_axis_refuses_long_weighted_prompts_and_takes_short_ones()
    {
        using var dir = new Synthetic.TempDirectory();
        Sdxl.Net.Synthetic.SyntheticSdxlModel.Write(dir.Path, new Sdxl.Net.Synthetic.SyntheticModelOptions { UnetSequenceLength = 77 });
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(dir.Path).Build();
        var request = new GenerationRequest { Prompt = "a cat BREAK a dog", PromptSyntax = Sdxl.Net.Text.PromptSyntax.Weighted, Steps = 1, Seed = 1 };
        var e = await Assert.ThrowsAsync<ArgumentException>(() => pipeline.GenerateAsync(request));
        Assert.Contains("154 tokens", e.Message, StringComparison.Ordinal);
        Assert.Contains("fixed at 77", e.Message, StringComparison.Ordinal);

        var result = await pipeline.GenerateAsync(request with { Prompt = "a (cat:1.2)" });
        Assert.Single(result.Images);
    }

    [Fact]
    public async Task Weighting_without_weighted_syntax_and_negative_clip_skip_are_refused()
    {
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).Build();
        var request = new GenerationRequest { Prompt = "x", Steps = 1, Seed = 1 };
        var e = await Assert.ThrowsAsync<ArgumentException>(() => pipeline.GenerateAsync(request with { PromptWeighting = Sdxl.Net.Text.PromptWeighting.ComfyUI }));
        Assert.Contains("applies to PromptSyntax.Weighted", e.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => pipeline.GenerateAsync(request with { ClipSkip = -1 }));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => pipeline.GenerateAsync(request with { PromptSyntax = (Sdxl.Net.Text.PromptSyntax)7 }));
    }
}
