using Sdxl.Cli;
using Sdxl.Net.Imaging;
using Sdxl.Net.Tests.Synthetic;

namespace Sdxl.Net.Tests.Lora;

/// <summary>The CLI's <c>--lora FILE[:WEIGHT]</c> option and <c>lora inspect</c>.</summary>
public sealed class LoraCliTests
{
    private static async Task<(int Exit, string Out, string Err)> Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int exit = await CliApp.RunAsync(args, stdout, stderr);
        return (exit, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public void Lora_argument_splits_on_the_last_colon()
    {
        using var dir = new TempDirectory();
        var colonName = Path.Combine(dir.Path, "C:style.safetensors"); // a colon inside the path, as in Windows drive letters
        File.WriteAllBytes(colonName, []);

        var plain = LoraCommand.ParseArgument(colonName);
        Assert.Equal((colonName, 1.0), (plain.Path, plain.Weight));
        var weighted = LoraCommand.ParseArgument(colonName + ":0.75");
        Assert.Equal((colonName, 0.75), (weighted.Path, weighted.Weight));
        var negative = LoraCommand.ParseArgument(colonName + ":-1.5");
        Assert.Equal(-1.5, negative.Weight);
        var missing = Assert.Throws<UsageException>(() => LoraCommand.ParseArgument(Path.Combine(dir.Path, "absent.safetensors:0.5")));
        Assert.Contains("absent.safetensors'", missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Generate_takes_repeated_lora_options_and_records_them_in_the_png()
    {
        using var dir = new TempDirectory();
        var a = Path.Combine(dir.Path, "a.safetensors");
        var b = Path.Combine(dir.Path, "b.safetensors");
        LoraSyntheticModel.WriteLora(a, LoraSyntheticModel.RandomFactors(seed: 21), "kohya");
        LoraSyntheticModel.WriteLora(b, LoraSyntheticModel.RandomFactors(seed: 22), "peft");
        var png = Path.Combine(dir.Path, "out.png");

        var (exit, _, err) = await Run("generate", "--model", LoraSyntheticModel.Folder, "--prompt", "x", "--width", "64", "--height", "64",
            "--steps", "1", "--guidance", "5", "--seed", "3", "--lora", a + ":0.5", "--lora", b + ":-0.25", "--output", png);
        Assert.True(exit == 0, err);
        var json = Sdxl.Net.Imaging.PngChunks.ReadText(File.ReadAllBytes(png), ImageRecipe.RequestKeyword, png)!;
        Assert.Contains("\"name\":\"a.safetensors\"", json, StringComparison.Ordinal);
        Assert.Contains(Sdxl.Net.Lora.LoraFileCache.Sha256Of(b), json, StringComparison.Ordinal);
        Assert.Contains("\"weight\":-0.25", json, StringComparison.Ordinal);

        // Other options still may not repeat.
        (exit, _, err) = await Run("generate", "--model", LoraSyntheticModel.Folder, "--prompt", "x", "--prompt", "y", "--output", png);
        Assert.Equal(2, exit);
        Assert.Contains("--prompt is given twice", err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Inspect_lists_format_rank_and_matches()
    {
        using var dir = new TempDirectory();
        var lora = Path.Combine(dir.Path, "a.safetensors");
        LoraSyntheticModel.WriteLora(lora, LoraSyntheticModel.RandomFactors(seed: 23), "kohya-sgm");

        var (exit, output, err) = await Run("lora", "inspect", lora, "--model", LoraSyntheticModel.Folder);
        Assert.True(exit == 0, err);
        Assert.Contains("format: kohya (LoCon)", output, StringComparison.Ordinal);
        Assert.Contains("rank: 4", output, StringComparison.Ordinal);
        Assert.Contains("matched: 9", output, StringComparison.Ordinal);
        Assert.Contains("unet:input_blocks_3_1_transformer_blocks_0_attn2_to_q → onnx::MatMul_", output, StringComparison.Ordinal);
        Assert.Contains("unmatched: 0", output, StringComparison.Ordinal);

        (exit, _, err) = await Run("lora", "inspect");
        Assert.Equal(2, exit);
        Assert.Contains("usage: sdxl lora inspect FILE", err, StringComparison.Ordinal);
    }
}
