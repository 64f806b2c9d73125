using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;
using Sdxl.Net.Runtime;
using Sdxl.Net.Lora;
using Sdxl.Net.Synthetic.Export;
using Sdxl.Net.Tests.Synthetic;

namespace Sdxl.Net.Tests.Lora;

/// <summary>
/// A kohya SGM-named LoRA on a float16 export with SDXL's real block structure (two resnets per level, transformer
/// stacks, weights in external data): every SGM name lands on the module diffusers' LDM conversion gives, and the
/// merged float16 weights are the float32 merge rounded once.
/// </summary>
public sealed class LoraFp16ExportTests
{
    /// <summary>SGM names and their diffusers modules for the miniature's layout (3 levels, layers_per_block 2, transformer depth [0, 1, 2], mid 2).</summary>
    private static readonly (string Sgm, string Path)[] Modules =
    [
        ("input_blocks_4_1_transformer_blocks_0_attn1_to_q", "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"),
        ("input_blocks_8_1_transformer_blocks_1_ff_net_2", "down_blocks.2.attentions.1.transformer_blocks.1.ff.net.2"),
        ("middle_block_1_transformer_blocks_1_attn2_to_k", "mid_block.attentions.0.transformer_blocks.1.attn2.to_k"),
        ("input_blocks_5_0_emb_layers_1", "down_blocks.1.resnets.1.time_emb_proj"),
        ("input_blocks_3_0_op", "down_blocks.0.downsamplers.0.conv"),
        ("output_blocks_2_2_conv", "up_blocks.0.upsamplers.0.conv"),
        ("output_blocks_8_0_skip_connection", "up_blocks.2.resnets.2.conv_shortcut"),
    ];

    [Fact]
    public async Task Sgm_lora_on_a_float16_export_merges_in_float32_and_rounds_once()
    {
        using var dir = new TempDirectory();
        ExportedSdxlModel.Write(dir.Path, new ExportedModelOptions { Architecture = SdxlArchitecture.Miniature, Float16 = true, IncludeVaeEncoder = false });
        var targets = new LoraTargets(dir.Path);
        var index = targets.Index(LoraComponent.Unet)!;
        var random = new Random(3);
        var tensors = new List<TestTensor>();
        var factors = new Dictionary<string, (float[] Up, float[] Down)>();
        foreach (var (sgm, path) in Modules)
        {
            var target = index.FindByPath(path) ?? throw new InvalidOperationException($"the export has no module {path}");
            Assert.Equal(OnnxDataType.Float16, target.Weight.ElementType);
            var (outputs, inputs) = target.MatrixShape;
            bool conv = target.Layout == WeightLayout.Convolution;
            long[] downShape = conv ? [4, target.Weight.Dimensions[1], target.Weight.Dimensions[2], target.Weight.Dimensions[3]] : [4, inputs];
            long[] upShape = conv ? [outputs, 4, 1, 1] : [outputs, 4];
            var down = Enumerable.Range(0, (int)(4 * inputs)).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
            var up = Enumerable.Range(0, (int)(outputs * 4)).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
            factors[path] = (up, down);
            tensors.Add(new TestTensor($"lora_unet_{sgm}.lora_down.weight", downShape, down));
            tensors.Add(new TestTensor($"lora_unet_{sgm}.lora_up.weight", upShape, up));
            tensors.Add(new TestTensor($"lora_unet_{sgm}.alpha", [], [2f]));
        }

        var lora = Path.Combine(dir.Path, "sgm.safetensors");
        SafetensorsWriter.Write(lora, tensors);

        // Every SGM name matches exactly the module LDM numbering gives.
        var inspection = LoraInspection.Inspect(lora, dir.Path);
        Assert.Empty(inspection.Unmatched);
        Assert.Null(inspection.Problem);
        foreach (var (sgm, path) in Modules)
        {
            Assert.Contains(inspection.Matched, m => m.StartsWith($"unet:{sgm} → ", StringComparison.Ordinal) && m.Contains($"({path}, ", StringComparison.Ordinal));
        }

        // The merged weights: base (float16) + 0.7 · 2/4 · up · down in double, rounded once to float16, within one
        // float16 rounding step of what float32 arithmetic rounds to (the two differ only at ties).
        using var overlay = LoraOverlay.Build(targets, [new LoraReference(lora, 0.7)], new LoraFileCache(), NullLogger.Instance);
        var overrides = overlay.For("unet")!.InitializerOverrides.ToDictionary(p => p.Key, p => p.Value);
        Assert.True(overlay.For("unet")!.CapAtExtendedOptimization);
        foreach (var (_, path) in Modules)
        {
            var target = index.FindByPath(path)!;
            var stored = overrides[target.Weight.Name].GetTensorDataAsSpan<Float16>().ToArray().Select(h => (float)BitConverter.UInt16BitsToHalf(h.value)).ToArray();
            var baseWeight = index.Graph.ReadAsSingle(target.Weight);
            var expected = ReferenceMerge.Apply(baseWeight, target.Layout == WeightLayout.InOut, factors[path].Up, factors[path].Down, 4, 0.7 * 2 / 4);
            int exact = 0;
            for (int i = 0; i < stored.Length; i++)
            {
                float rounded = (float)(Half)expected[i];
                exact += stored[i] == rounded ? 1 : 0;
                Assert.True(Math.Abs(stored[i] - rounded) <= Math.Abs(rounded) * (1.0 / 1024) + 1e-7, $"{path}[{i}]: {stored[i]} vs {rounded}");
            }

            Assert.True(exact >= stored.Length * 0.99, $"{path}: only {exact} of {stored.Length} equal the once-rounded value");
            Assert.Contains(Enumerable.Range(0, stored.Length), i => stored[i] != (float)(Half)baseWeight[i]);
        }

        // And the fp16 sessions run with the overrides, changing the image.
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(dir.Path).UseCpu().Build();
        var request = new GenerationRequest { Prompt = "x", Width = 64, Height = 64, Steps = 2, Seed = 5 };
        var plain = (await pipeline.GenerateAsync(request)).Images[0].Pixels.ToArray();
        var adapted = (await pipeline.GenerateAsync(request with { Loras = [new LoraReference(lora, 0.7)] })).Images[0].Pixels.ToArray();
        Assert.True(LoraSyntheticModel.MaxAbsDifference(plain, adapted) > 1e-3);
        Assert.All(adapted, v => Assert.True(float.IsFinite(v)));
    }
}
