using System.Text.Json;
using Sdxl.Net.Lora;
using Sdxl.Net.Synthetic;

namespace Sdxl.Net.Tests.Lora;

/// <summary>
/// A synthetic model with diffusers module names, LoRA files for it in each key format, and the same model with the
/// merged weights baked into its ONNX files (computed by <see cref="ReferenceMerge"/> from the stored factors).
/// </summary>
internal static class LoraSyntheticModel
{
    public static readonly SyntheticModelOptions Options = new() { DiffusersModuleNames = true };

    /// <summary>A module the test LoRAs adapt.</summary>
    /// <param name="Component">unet, text_encoder or text_encoder_2.</param>
    /// <param name="Path">The diffusers/transformers module path.</param>
    /// <param name="Node">The consuming node's name as a torch export writes it.</param>
    /// <param name="Sgm">sd-scripts' SGM name (UNet modules), written from the LDM block numbering of this 2-level, 1-layer UNet.</param>
    internal sealed record Module(string Component, string Path, string Node, string? Sgm);

    public static readonly Module[] Modules =
    [
        new("unet", "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_q", "/down_blocks.1/attentions.0/transformer_blocks.0/attn2/to_q/MatMul", "input_blocks_3_1_transformer_blocks_0_attn2_to_q"),
        new("unet", "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k", "/down_blocks.1/attentions.0/transformer_blocks.0/attn2/to_k/MatMul", "input_blocks_3_1_transformer_blocks_0_attn2_to_k"),
        new("unet", "up_blocks.0.attentions.0.transformer_blocks.0.attn2.to_out.0", "/up_blocks.0/attentions.0/transformer_blocks.0/attn2/to_out.0/MatMul", "output_blocks_0_1_transformer_blocks_0_attn2_to_out_0"),
        new("unet", "mid_block.resnets.0.time_emb_proj", "/mid_block/resnets.0/time_emb_proj/Gemm", "middle_block_0_emb_layers_1"),
        new("unet", "down_blocks.0.resnets.0.conv1", "/down_blocks.0/resnets.0/conv1/Conv", "input_blocks_1_0_in_layers_2"),
        new("unet", "down_blocks.1.resnets.0.conv_shortcut", "/down_blocks.1/resnets.0/conv_shortcut/Conv", "input_blocks_3_0_skip_connection"),
        new("unet", "down_blocks.0.downsamplers.0.conv", "/down_blocks.0/downsamplers.0/conv/Conv", "input_blocks_2_0_op"),
        new("text_encoder", "text_model.encoder.layers.0.self_attn.out_proj", "/text_model/encoder/layers.0/self_attn/out_proj/MatMul", null),
        new("text_encoder_2", "text_model.encoder.layers.1.self_attn.v_proj", "/text_model/encoder/layers.1/self_attn/v_proj/MatMul", null),
    ];

    public const int Rank = 4;

    public const float Alpha = 2f;

    /// <summary>The factors of one adapter: per module, up [out, r(,1,1)] and down [r, in(, k, k)] as stored.</summary>
    internal sealed record Factors(Module Module, long[] UpShape, float[] Up, long[] DownShape, float[] Down, string WeightName, bool Transposed, float[] BaseWeight);

    public static string Folder => SyntheticModels.Get(Options);

    /// <summary>Random factors for every module, rounded to <paramref name="dtype"/>; the seed tells adapters apart.</summary>
    public static List<Factors> RandomFactors(int seed, string dtype = "F32", IEnumerable<Module>? modules = null)
    {
        var random = new Random(seed);
        var result = new List<Factors>();
        var models = new Dictionary<string, Onnx.ModelProto>();
        foreach (var m in modules ?? Modules)
        {
            if (!models.TryGetValue(m.Component, out var model))
            {
                models[m.Component] = model = OnnxWeights.Load(System.IO.Path.Combine(Folder, m.Component, "model.onnx"));
            }

            var (name, dims, values) = OnnxWeights.WeightOfNode(model, m.Node);
            bool matmul = m.Node.EndsWith("/MatMul", StringComparison.Ordinal);
            bool conv = dims.Length == 4;
            long outputs = matmul ? dims[1] : dims[0];
            long inputs = matmul ? dims[0] : dims[1];
            long[] downShape = conv ? [Rank, inputs, dims[2], dims[3]] : [Rank, inputs];
            long[] upShape = conv ? [outputs, Rank, 1, 1] : [outputs, Rank];
            var down = SafetensorsWriter.Representable(Draw(random, downShape), dtype);
            var up = SafetensorsWriter.Representable(Draw(random, upShape), dtype);
            result.Add(new Factors(m, upShape, up, downShape, down, name, matmul, values));
        }

        return result;
    }

    /// <summary>Writes the factors as a LoRA file in <paramref name="format"/> (kohya, kohya-sgm or peft).</summary>
    public static void WriteLora(string path, IReadOnlyList<Factors> factors, string format, string dtype = "F32")
    {
        var tensors = new List<TestTensor>();
        Dictionary<string, string>? metadata = null;
        foreach (var f in factors)
        {
            string prefix = format switch
            {
                "peft" => $"{f.Module.Component}.{f.Module.Path}",
                _ => KohyaPrefix(f.Module.Component) + (format == "kohya-sgm" && f.Module.Sgm is { } sgm ? sgm : f.Module.Path.Replace('.', '_')),
            };
            if (format == "peft")
            {
                tensors.Add(new TestTensor(prefix + ".lora_A.weight", f.DownShape, f.Down, dtype));
                tensors.Add(new TestTensor(prefix + ".lora_B.weight", f.UpShape, f.Up, dtype));
            }
            else
            {
                tensors.Add(new TestTensor(prefix + ".lora_down.weight", f.DownShape, f.Down, dtype));
                tensors.Add(new TestTensor(prefix + ".lora_up.weight", f.UpShape, f.Up, dtype));
                tensors.Add(new TestTensor(prefix + ".alpha", [], [Alpha]));
            }
        }

        if (format == "peft")
        {
            // diffusers' save_lora_weights: the LoraConfig per component in the lora_adapter_metadata header entry.
            metadata = new Dictionary<string, string>
            {
                ["lora_adapter_metadata"] = JsonSerializer.Serialize(new Dictionary<string, object>
                {
                    ["unet.r"] = Rank, ["unet.lora_alpha"] = Alpha,
                    ["text_encoder.r"] = Rank, ["text_encoder.lora_alpha"] = Alpha,
                    ["text_encoder_2.r"] = Rank, ["text_encoder_2.lora_alpha"] = Alpha,
                }),
                ["format"] = "pt",
            };
        }

        SafetensorsWriter.Write(path, tensors, metadata);
    }

    /// <summary>
    /// A copy of the model folder whose ONNX files carry W + Σ weight · (alpha / rank) · up · down for each adapter.
    /// </summary>
    public static string Bake(string directory, IReadOnlyList<(IReadOnlyList<Factors> Factors, double Weight)> adapters)
    {
        CopyDirectory(Folder, directory);
        foreach (var component in new[] { "unet", "text_encoder", "text_encoder_2" })
        {
            var replacements = new Dictionary<string, float[]>();
            foreach (var (factors, weight) in adapters)
            {
                foreach (var f in factors.Where(f => f.Module.Component == component))
                {
                    var current = replacements.TryGetValue(f.WeightName, out var w) ? w : f.BaseWeight;
                    replacements[f.WeightName] = ReferenceMerge.Apply(current, f.Transposed, f.Up, f.Down, Rank, weight * Alpha / Rank);
                }
            }

            if (replacements.Count > 0)
            {
                var path = System.IO.Path.Combine(directory, component, "model.onnx");
                OnnxWeights.Bake(OnnxWeights.Load(path), replacements, path);
            }
        }

        return directory;
    }

    public static async Task<float[]> GenerateAsync(SdxlPipeline pipeline, IReadOnlyList<LoraReference>? loras = null)
    {
        var result = await pipeline.GenerateAsync(new GenerationRequest
        {
            Prompt = "a lighthouse at dawn",
            NegativePrompt = "blurry",
            Width = 64,
            Height = 64,
            Steps = 3,
            Seed = 11,
            Loras = loras,
        });
        return result.Images[0].Pixels.ToArray();
    }

    public static double MaxAbsDifference(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        double max = 0;
        for (int i = 0; i < a.Length; i++)
        {
            max = Math.Max(max, Math.Abs(a[i] - b[i]));
        }

        return max;
    }

    private static string KohyaPrefix(string component) => component switch
    {
        "unet" => "lora_unet_",
        "text_encoder" => "lora_te1_",
        _ => "lora_te2_",
    };

    private static float[] Draw(Random random, long[] shape)
    {
        long count = shape.Aggregate(1L, (a, b) => a * b);
        var values = new float[count];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = (float)((random.NextDouble() * 2) - 1) * 0.5f;
        }

        return values;
    }

    private static void CopyDirectory(string source, string destination)
    {
        foreach (var dir in Directory.GetDirectories(source, "*", SearchOption.AllDirectories))
        {
            Directory.CreateDirectory(dir.Replace(source, destination, StringComparison.Ordinal));
        }

        Directory.CreateDirectory(destination);
        foreach (var file in Directory.GetFiles(source, "*", SearchOption.AllDirectories))
        {
            File.Copy(file, file.Replace(source, destination, StringComparison.Ordinal), overwrite: true);
        }
    }
}
