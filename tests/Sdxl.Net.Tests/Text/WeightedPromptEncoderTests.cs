using Microsoft.ML.OnnxRuntime;
using Sdxl.Net.Imaging;
using Sdxl.Net.Models;
using Sdxl.Net.Runtime;
using Sdxl.Net.Text;

namespace Sdxl.Net.Tests.Text;

/// <summary>
/// Weighted prompt encoding on the tiny SDXL models: the reference case's embeddings (computed with A1111's algorithm by
/// an independent implementation), equality with the plain path where the two must agree, chunk layout and padding.
/// </summary>
public sealed class WeightedPromptEncoderTests
{
    private const string Prompt = "a photo of an astronaut riding a horse on mars";
    private const string Negative = "blurry, low quality";

    private static SdxlModelFolder OpenBase() => SdxlModelFolder.Open(Path.Combine(TestPaths.TinySdxl!, "tiny-sdxl-base"), ExecutionProviderOptions.Cpu);

    private static (PromptEmbedding Positive, PromptEmbedding Negative) Encode(SdxlModelFolder model, IPromptEncoder encoder, PromptTexts texts)
    {
        using var runOptions = new RunOptions();
        return encoder.EncodePair(model, texts, cfg: true, [], runOptions);
    }

    [TinySdxlFact]
    public void Unit_weights_equal_the_plain_path_bit_for_bit()
    {
        using var model = OpenBase();
        var texts = new PromptTexts(Prompt, null, Negative, null);
        var plain = Encode(model, PromptEncoder.Instance, texts);
        var weighted = Encode(model, WeightedPromptEncoder.Instance, texts);
        Assert.Equal(77, weighted.Positive.SequenceLength);
        Assert.Equal(plain.Positive.Hidden, weighted.Positive.Hidden);
        Assert.Equal(plain.Positive.Pooled, weighted.Positive.Pooled);
        Assert.Equal(plain.Negative.Hidden, weighted.Negative.Hidden);
        Assert.Equal(plain.Negative.Pooled, weighted.Negative.Pooled);

        // Explicit weights of 1.0 are the same prompt.
        var explicitOnes = Encode(model, WeightedPromptEncoder.Instance, new PromptTexts("a photo of an (astronaut:1.0) riding a horse on mars", null, Negative, null));
        Assert.Equal(plain.Positive.Hidden, explicitOnes.Positive.Hidden);
    }

    [TinySdxlFact]
    public void A_200_token_prompt_is_three_chunks_and_the_negative_is_padded_with_the_encoded_empty_prompt()
    {
        using var model = OpenBase();
        var prompt = string.Join(' ', Enumerable.Repeat("cat", 200));
        var (positive, negative) = Encode(model, WeightedPromptEncoder.Instance, new PromptTexts(prompt, null, Negative, null));
        Assert.Equal(3 * 77, positive.SequenceLength);
        Assert.Equal(3 * 77, negative.SequenceLength);
        Assert.Equal(96, positive.HiddenSize);
        Assert.Equal(3 * 77 * 96, positive.Hidden.Length);

        // First chunk = the plain encoding of the first 75 tokens (what diffusers keeps); its pooled is the prompt's.
        var plain = PromptEncoder.Encode(model, prompt, prompt, null, null);
        Assert.Equal(plain.Hidden, positive.Hidden.AsSpan(0, 77 * 96).ToArray());
        Assert.Equal(plain.Pooled, positive.Pooled);

        // The negative: its own chunk, then two chunks of the empty prompt encoded by the plain path (same ids: BOS, EOS, pad).
        var plainNegative = PromptEncoder.Encode(model, Negative, Negative, null, null);
        var empty = PromptEncoder.Encode(model, string.Empty, string.Empty, null, null);
        Assert.Equal(plainNegative.Hidden, negative.Hidden.AsSpan(0, 77 * 96).ToArray());
        Assert.Equal(empty.Hidden, negative.Hidden.AsSpan(77 * 96, 77 * 96).ToArray());
        Assert.Equal(empty.Hidden, negative.Hidden.AsSpan(2 * 77 * 96, 77 * 96).ToArray());
        Assert.Equal(plainNegative.Pooled, negative.Pooled);
    }

    [TinySdxlFact]
    public void Empty_or_absent_negative_gives_zeros_then_empty_prompt_chunks()
    {
        using var model = OpenBase();
        var prompt = "cat BREAK dog";
        var empty = PromptEncoder.Encode(model, string.Empty, string.Empty, null, null);
        foreach (var negativeText in new[] { null, string.Empty })
        {
            var (positive, negative) = Encode(model, WeightedPromptEncoder.Instance, new PromptTexts(prompt, null, negativeText, null));
            Assert.Equal(2 * 77, positive.SequenceLength);
            Assert.Equal(2 * 77, negative.SequenceLength);
            Assert.All(negative.Hidden.AsSpan(0, 77 * 96).ToArray(), v => Assert.Equal(0f, v));
            Assert.Equal(empty.Hidden, negative.Hidden.AsSpan(77 * 96).ToArray());
            Assert.All(negative.Pooled, v => Assert.Equal(0f, v));
        }
    }

    [TinySdxlFact]
    public void Weights_scale_tokens_and_restore_each_chunks_mean_per_encoder()
    {
        using var model = OpenBase();
        var plain = PromptEncoder.Encode(model, "a cat", "a cat", null, null);
        using var runOptions = new RunOptions();
        var weighted = WeightedPromptEncoder.Encode(model, "a (cat:1.5)", "a (cat:1.5)", new PromptTexts("", null, null, null), runOptions);

        // Independent arithmetic on the plain states: per encoder (columns 0..31 ViT-L, 32..95 bigG), multiply token 2
        // by 1.5, then rescale by original mean / new mean over all 77 positions of that encoder.
        foreach (var (offset, width) in new[] { (0, 32), (32, 64) })
        {
            double before = 0, after = 0;
            for (int t = 0; t < 77; t++)
            {
                for (int c = 0; c < width; c++)
                {
                    float v = plain.Hidden[(t * 96) + offset + c];
                    before += v;
                    after += t == 2 ? v * 1.5f : v;
                }
            }

            float scale = (float)(before / (77 * width)) / (float)(after / (77 * width));
            for (int t = 0; t < 77; t++)
            {
                for (int c = 0; c < width; c++)
                {
                    float v = plain.Hidden[(t * 96) + offset + c];
                    float expected = (t == 2 ? v * 1.5f : v) * scale;
                    Assert.Equal(expected, weighted.Hidden[(t * 96) + offset + c], 6);
                }
            }
        }

        Assert.Equal(plain.Pooled, weighted.Pooled);
    }

    [TinySdxlFact]
    public void ComfyUI_weighting_moves_tokens_away_from_the_empty_prompt()
    {
        using var model = OpenBase();
        var plain = PromptEncoder.Encode(model, "a cat", "a cat", null, null);
        var empty = PromptEncoder.Encode(model, string.Empty, string.Empty, null, null);
        using var runOptions = new RunOptions();
        var weighted = WeightedPromptEncoder.Encode(model, "a (cat:1.5)", "a (cat:1.5)", new PromptTexts("", null, null, null, 0, PromptWeighting.ComfyUI), runOptions);
        for (int i = 0; i < 77 * 96; i++)
        {
            int token = i / 96;
            float expected = token == 2 ? ((plain.Hidden[i] - empty.Hidden[i]) * 1.5f) + empty.Hidden[i] : plain.Hidden[i];
            Assert.Equal(expected, weighted.Hidden[i], 5);
        }
    }

    [TinySdxlFact]
    public void Clip_skip_reads_the_earlier_hidden_state_of_the_export()
    {
        // models-io holds torch's hidden_states.N of both encoders for fixed ids; ClipSkip 1 must return hidden_states.1
        // of the 3-layer tiny encoders (hidden_states[-(1 + 2)]).
        var io = Path.Combine(TestPaths.TinySdxl!, "models-io");
        using var model = OpenBase();
        foreach (var (encoder, dir) in new[] { (model.TextEncoder!, "text_encoder"), (model.TextEncoder2, "text_encoder_2") })
        {
            var (ids, shape) = ReadInt64Npy(Path.Combine(io, dir, "in.input_ids.npy"));
            var (expected, _) = NpyFile.Read(Path.Combine(io, dir, "out.hidden_states.1.npy"));
            var (hidden, _, _) = encoder.Encode(ids, shape[0], shape[1], null, clipSkip: 1);
            Assert.Equal(expected.Length, hidden.Length);
            for (int i = 0; i < hidden.Length; i++)
            {
                Assert.True(Math.Abs(expected[i] - hidden[i]) <= 1e-4, $"{dir}[{i}]: {hidden[i]} vs {expected[i]}");
            }

            var e = Assert.Throws<ArgumentOutOfRangeException>(() => encoder.CheckClipSkip(3));
            Assert.Contains("ClipSkip must be from 0 to 2", e.Message, StringComparison.Ordinal);
        }
    }

    [TinySdxlTheory]
    [MemberData(nameof(PromptParserTests.FeatureCases), MemberType = typeof(PromptParserTests))]
    public void Embeddings_match_the_reference_cases(string caseName)
    {
        var p = WeightedFeatureCases.Params(caseName);
        var dir = Path.Combine(WeightedFeatureCases.Root, caseName);
        using var model = SdxlModelFolder.Open(Path.Combine(TestPaths.TinySdxl!, p.GetProperty("model").GetString()!), ExecutionProviderOptions.Cpu);
        string? negativeText = p.TryGetProperty("negative_prompt", out var n) && n.ValueKind == System.Text.Json.JsonValueKind.String ? n.GetString() : null;
        var (positive, negative) = Encode(model, WeightedPromptEncoder.Instance, new PromptTexts(p.GetProperty("prompt").GetString()!, null, negativeText, null));

        // The files hold the CFG batch [negative, positive].
        var (embeds, shape) = NpyFile.Read(Path.Combine(dir, "prompt_embeds.npy"));
        var (pooled, _) = NpyFile.Read(Path.Combine(dir, "pooled_embeds.npy"));
        Assert.Equal([2, positive.SequenceLength, positive.HiddenSize], shape);
        AssertClose(embeds.AsSpan(0, embeds.Length / 2), negative.Hidden, "negative prompt_embeds");
        AssertClose(embeds.AsSpan(embeds.Length / 2), positive.Hidden, "prompt_embeds");
        AssertClose(pooled.AsSpan(0, pooled.Length / 2), negative.Pooled, "negative pooled");
        AssertClose(pooled.AsSpan(pooled.Length / 2), positive.Pooled, "pooled");
    }

    private static void AssertClose(ReadOnlySpan<float> expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double max = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            max = Math.Max(max, Math.Abs(expected[i] - actual[i]));
        }

        // The models agree with torch to 5e-6 (models-io); the weighting adds a few float32 roundings.
        Assert.True(max <= 1e-4, $"{what}: max abs error {max:E3}");
    }

    internal static (int[] Values, int[] Shape) ReadInt64Npy(string path)
    {
        var bytes = File.ReadAllBytes(path);
        int headerLength = BitConverter.ToUInt16(bytes, 8);
        var header = System.Text.Encoding.ASCII.GetString(bytes, 10, headerLength);
        Assert.Contains("'<i8'", header, StringComparison.Ordinal);
        var shapeText = header[(header.IndexOf('(') + 1)..header.IndexOf(')')];
        var shape = shapeText.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(int.Parse).ToArray();
        var values = new int[(bytes.Length - 10 - headerLength) / 8];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = checked((int)BitConverter.ToInt64(bytes, 10 + headerLength + (i * 8)));
        }

        return (values, shape);
    }
}
