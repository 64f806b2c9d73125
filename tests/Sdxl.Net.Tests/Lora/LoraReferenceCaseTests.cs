using System.Text.Json;
using Sdxl.Cli;
using Sdxl.Net.Imaging;
using Sdxl.Net.Lora;
using Sdxl.Net.Tests.EndToEnd;
using Sdxl.Net.Tests.Synthetic;

namespace Sdxl.Net.Tests.Lora;

/// <summary>
/// The LoRA feature case of ../shared/golden/tiny-sdxl (a kohya rank-4 adapter at weight 0.8 on the diffusers-names
/// variant; the expected image was made by diffusers' loop from merged weights), run through the CLI as a user would,
/// and the same adapter rewritten in sd-scripts' SGM names and in diffusers/PEFT keys, which must give the same image.
/// </summary>
public sealed class LoraReferenceCaseTests
{
    private const string CaseName = "50_lora_kohya_unet_r4_w08";

    [TinySdxlTheory]
    [InlineData("kohya")]
    [InlineData("kohya-sgm")]
    [InlineData("peft")]
    public async Task Cli_reproduces_the_merged_weights_image(string format)
    {
        var root = TestPaths.TinySdxl!;
        var caseDir = Path.Combine(root, "feature-cases", CaseName);
        using var p = JsonDocument.Parse(File.ReadAllText(Path.Combine(caseDir, "params.json")));
        var lora = p.RootElement.GetProperty("loras")[0];
        var source = Path.Combine(caseDir, lora[0].GetString()!);
        double weight = lora[1].GetDouble();
        using var dir = new TempDirectory();
        var file = format == "kohya" ? source : Rewrite(source, format, Path.Combine(dir.Path, $"{format}.safetensors"));
        var output = Path.Combine(dir.Path, "out.npy");

        var args = TinyReferenceCaseTests.ToCliArguments(p.RootElement, root, caseDir, output);
        args[args.IndexOf("--model") + 1] = Path.Combine(root, "variants", p.RootElement.GetProperty("variant").GetString()!);
        args.AddRange(["--lora", $"{file}:{weight.ToString(System.Globalization.CultureInfo.InvariantCulture)}"]);
        var stderr = new StringWriter();
        int exit = await CliApp.RunAsync(args.ToArray(), new StringWriter(), stderr);
        Assert.True(exit == 0, $"exit {exit}: {stderr}");

        var (actual, shape) = NpyFile.Read(output);
        var (expected, expectedShape) = NpyFile.Read(Path.Combine(caseDir, "expected_image.npy"));
        Assert.Equal(expectedShape, shape);
        double max = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            max = Math.Max(max, Math.Abs(actual[i] - expected[i]));
        }

        double tolerance = p.RootElement.GetProperty("tolerance_max_abs").GetDouble();
        Assert.True(max <= tolerance, $"{format}: max abs error {max:E3} > {tolerance:E1}");
        Assert.DoesNotContain("warning", stderr.ToString(), StringComparison.Ordinal);
    }

    /// <summary>
    /// Rewrites the kohya (diffusers-names) adapter's keys. SGM names follow LDM's block numbering for this UNet
    /// (block_out_channels (32, 48), layers_per_block 1, DownBlock2D + CrossAttnDownBlock2D, CrossAttnUpBlock2D +
    /// UpBlock2D): input_blocks.3.1 is down_blocks.1.attentions.0, middle_block.1 the mid attention, output_blocks.0.1
    /// and .1.1 up_blocks.0.attentions.0 and .1. PEFT keys carry dotted module paths and the alpha in the metadata.
    /// </summary>
    private static string Rewrite(string source, string format, string destination)
    {
        var file = SafetensorsFile.Open(source);
        var tensors = new List<TestTensor>();
        float alpha = float.NaN;
        foreach (var (key, tensor) in file.Tensors)
        {
            var module = key[.."lora_unet_".Length] == "lora_unet_" ? key["lora_unet_".Length..key.IndexOf('.')] : throw new InvalidDataException(key);
            var suffix = key[(key.IndexOf('.') + 1)..];
            if (suffix == "alpha")
            {
                alpha = file.ReadScalar(tensor);
                if (format == "peft")
                {
                    continue;
                }
            }

            string name = format == "kohya-sgm"
                ? "lora_unet_" + module
                    .Replace("down_blocks_1_attentions_0", "input_blocks_3_1", StringComparison.Ordinal)
                    .Replace("mid_block_attentions_0", "middle_block_1", StringComparison.Ordinal)
                    .Replace("up_blocks_0_attentions_0", "output_blocks_0_1", StringComparison.Ordinal)
                    .Replace("up_blocks_0_attentions_1", "output_blocks_1_1", StringComparison.Ordinal) + "." + suffix
                : "unet." + DottedPath(module) + (suffix == "lora_down.weight" ? ".lora_A.weight" : ".lora_B.weight");
            tensors.Add(new TestTensor(name, tensor.Shape, file.ReadAsSingle(tensor)));
        }

        var metadata = format == "peft"
            ? new Dictionary<string, string> { ["lora_adapter_metadata"] = JsonSerializer.Serialize(new Dictionary<string, object> { ["unet.lora_alpha"] = alpha, ["unet.r"] = 4 }) }
            : null;
        SafetensorsWriter.Write(destination, tensors, metadata);
        return destination;
    }

    /// <summary>down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_out_0 → down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_out.0.</summary>
    private static string DottedPath(string underscored)
    {
        var path = System.Text.RegularExpressions.Regex.Replace(underscored, "_(\\d+)(?=_|$)", ".$1");
        path = System.Text.RegularExpressions.Regex.Replace(path, "(\\.\\d+)_", "$1.");
        foreach (var (from, to) in new[] { ("attn1_", "attn1."), ("attn2_", "attn2."), ("ff_net", "ff.net"), ("mid_block_", "mid_block.") })
        {
            path = path.Replace(from, to, StringComparison.Ordinal);
        }

        return path;
    }
}
