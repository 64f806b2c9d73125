using Microsoft.Extensions.Logging.Abstractions;
using Sdxl.Net.Lora;
using Sdxl.Net.Models;
using Sdxl.Net.Runtime;
using Sdxl.Net.Tests.Synthetic;
using Sdxl.Net.Text;

namespace Sdxl.Net.Tests.Lora;

/// <summary>A request's text-encoder LoRA keeps the pipeline's textual-inversion rows (two overlays on one session).</summary>
public sealed class LoraWithEmbeddingTests
{
    [TinySdxlFact]
    public void Adapted_text_encoders_keep_the_embedding_rows()
    {
        var model = Path.Combine(TestPaths.TinySdxl!, "variants", "diffusers-names");
        using var dir = new TempDirectory();

        // An embedding whose vectors are the token rows of "red cat": "mytok" must encode exactly like "red cat".
        using var plain = SdxlModelFolder.Open(model, ExecutionProviderOptions.Cpu);
        var embedding = Path.Combine(dir.Path, "redcat.safetensors");
        var (clipL, wl) = Rows(model, "text_encoder", plain.Tokenizer!, "red cat");
        var (clipG, wg) = Rows(model, "text_encoder_2", plain.Tokenizer2, "red cat");
        SafetensorsWriter.Write(embedding, [new TestTensor("clip_l", [2, wl], clipL), new TestTensor("clip_g", [2, wg], clipG)]);

        // A LoRA on a self-attention projection of each text encoder.
        var random = new Random(4);
        float[] Draw(int n) => Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        var lora = Path.Combine(dir.Path, "te.safetensors");
        SafetensorsWriter.Write(lora,
        [
            new("lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight", [4, wl], Draw(4 * wl)),
            new("lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight", [wl, 4], Draw(4 * wl)),
            new("lora_te2_text_model_encoder_layers_0_self_attn_v_proj.lora_down.weight", [4, wg], Draw(4 * wg)),
            new("lora_te2_text_model_encoder_layers_0_self_attn_v_proj.lora_up.weight", [wg, 4], Draw(4 * wg)),
        ]);

        using var folder = TextualInversions.OpenFolder(model, ExecutionProviderOptions.Cpu, [new EmbeddingReference(embedding, "mytok")]);
        using var cache = new LoraSessionCache(folder, ExecutionProviderOptions.Cpu, [], new LoraTargets(model), new LoraFileCache(), NullLogger.Instance);
        using var lease = cache.Acquire([new LoraReference(lora, 1.5)]);
        Assert.NotSame(folder.TextEncoder, lease.Model.TextEncoder);
        Assert.NotSame(folder.TextEncoder2, lease.Model.TextEncoder2);

        var words = PromptEncoder.Encode(lease.Model, "a red cat on mars", "a red cat on mars", null, null);
        var token = PromptEncoder.Encode(lease.Model, "a mytok on mars", "a mytok on mars", null, null);
        var unadapted = PromptEncoder.Encode(folder, "a red cat on mars", "a red cat on mars", null, null);
        Assert.Equal(words.Hidden, token.Hidden);
        Assert.NotEqual(unadapted.Hidden, words.Hidden);
    }

    private static (float[] Rows, int Width) Rows(string model, string component, ClipTokenizer tokenizer, string words)
    {
        var graph = OnnxGraphReader.Read(Path.Combine(model, component, "model.onnx"));
        var table = graph.Initializers.Values.Single(t => t.Dimensions.Length == 2 && t.Dimensions[0] == 49408);
        int width = (int)table.Dimensions[1];
        var all = graph.ReadAsSingle(table);
        var ids = tokenizer.EncodeToIds(words);
        var rows = new float[ids.Count * width];
        for (int i = 0; i < ids.Count; i++)
        {
            Array.Copy(all, ids[i] * width, rows, i * width, width);
        }

        return (rows, width);
    }
}
