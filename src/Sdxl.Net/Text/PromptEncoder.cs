using Microsoft.ML.OnnxRuntime;
using Sdxl.Net.Models;

namespace Sdxl.Net.Text;

/// <summary>Token embeddings [1, seq, D] and the pooled embedding [1, P] of one prompt.</summary>
internal sealed record PromptEmbedding(float[] Hidden, int SequenceLength, int HiddenSize, float[] Pooled)
{
    public static PromptEmbedding ZerosLike(PromptEmbedding other) =>
        new(new float[other.Hidden.Length], other.SequenceLength, other.HiddenSize, new float[other.Pooled.Length]);
}

/// <summary>A note about how a prompt was tokenized (used to report truncation).</summary>
/// <param name="Tokenizer">Which tokenizer (<c>tokenizer</c> or <c>tokenizer_2</c>).</param>
/// <param name="Text">The prompt text.</param>
/// <param name="TokenCount">Its tokens before truncation.</param>
/// <param name="KeptTokenCount">The tokens that were kept.</param>
internal sealed record TruncationNote(string Tokenizer, string Text, int TokenCount, int KeptTokenCount);

/// <summary>
/// SDXL prompt encoding exactly as diffusers' <c>encode_prompt</c>: each tokenizer/encoder pair's penultimate hidden
/// state, concatenated on the channel axis (CLIP ViT-L ‖ OpenCLIP bigG), and the bigG pooled projection.
/// </summary>
internal sealed class PromptEncoder : IPromptEncoder
{
    public static readonly PromptEncoder Instance = new();

    private PromptEncoder()
    {
    }

    /// <inheritdoc/>
    public (PromptEmbedding Positive, PromptEmbedding Negative) EncodePair(
        SdxlModelFolder model, PromptTexts texts, bool cfg, List<TruncationNote> notes, RunOptions? runOptions)
    {
        // diffusers: prompt_2 = prompt_2 or prompt; negative_prompt = negative_prompt or ""; negative_prompt_2 = negative_prompt_2 or negative_prompt.
        var positive = Encode(model, texts.Prompt, string.IsNullOrEmpty(texts.Prompt2) ? texts.Prompt : texts.Prompt2, notes, runOptions, texts.ClipSkip);
        if (!cfg)
        {
            return (positive, positive);
        }

        if (texts.NegativePrompt is null && model.ForceZerosForEmptyPrompt)
        {
            return (positive, PromptEmbedding.ZerosLike(positive));
        }

        var negativeText = texts.NegativePrompt ?? string.Empty;
        var negative2 = string.IsNullOrEmpty(texts.NegativePrompt2) ? negativeText : texts.NegativePrompt2;
        return (positive, Encode(model, negativeText, negative2, notes, runOptions, texts.ClipSkip));
    }

    /// <summary>Encodes one prompt pair. A refiner folder (no first encoder) encodes <paramref name="prompt"/> with tokenizer_2, as diffusers does.</summary>
    public static PromptEmbedding Encode(SdxlModelFolder model, string prompt, string prompt2, List<TruncationNote>? notes, RunOptions? runOptions, int clipSkip = 0)
    {
        if (model.TextEncoder is null || model.Tokenizer is null)
        {
            var (hiddenOnly, sizeOnly, pooledOnly) = Run(model, model.Tokenizer2, model.TextEncoder2, "tokenizer_2", prompt, notes, runOptions, clipSkip);
            return new PromptEmbedding(hiddenOnly, model.Tokenizer2.MaxLength, sizeOnly, pooledOnly!);
        }

        var (h1, d1, _) = Run(model, model.Tokenizer, model.TextEncoder, "tokenizer", prompt, notes, runOptions, clipSkip);
        var (h2, d2, pooled) = Run(model, model.Tokenizer2, model.TextEncoder2, "tokenizer_2", prompt2, notes, runOptions, clipSkip);
        int seq1 = h1.Length / d1, seq2 = h2.Length / d2;
        if (seq1 != seq2)
        {
            throw new SdxlModelException($"The text encoders return different sequence lengths ({seq1} and {seq2}); both tokenizers must use the same model_max_length.");
        }

        return new PromptEmbedding(ConcatenateChannels(h1, d1, h2, d2, seq1), seq1, d1 + d2, pooled!);
    }

    /// <summary>[seq, d1] ‖ [seq, d2] → [seq, d1 + d2]: the two encoders' states side by side for each token.</summary>
    public static float[] ConcatenateChannels(float[] h1, int d1, float[] h2, int d2, int sequenceLength)
    {
        var hidden = new float[sequenceLength * (d1 + d2)];
        for (int s = 0; s < sequenceLength; s++)
        {
            h1.AsSpan(s * d1, d1).CopyTo(hidden.AsSpan(s * (d1 + d2), d1));
            h2.AsSpan(s * d2, d2).CopyTo(hidden.AsSpan((s * (d1 + d2)) + d1, d2));
        }

        return hidden;
    }

    private static (float[] Hidden, int HiddenSize, float[]? Pooled) Run(
        SdxlModelFolder model, ClipTokenizer tokenizer, TextEncoderModel encoder, string name, string text, List<TruncationNote>? notes, RunOptions? runOptions, int clipSkip)
    {
        // Textual inversion: a trigger word becomes the ids of its embedding's rows (diffusers' maybe_convert_prompt).
        var tokens = model.Embeddings is { } embeddings
            ? tokenizer.Pad(embeddings.Expand(tokenizer.EncodeToIds(text), tokenizer, encoder.Component))
            : tokenizer.Encode(text);
        if (tokens.Truncated)
        {
            notes?.Add(new TruncationNote(name, text, tokens.TokenCount, tokens.KeptTokenCount));
        }

        var ids = new int[tokens.InputIds.Count];
        for (int i = 0; i < ids.Length; i++)
        {
            ids[i] = tokens.InputIds[i];
        }

        return encoder.Encode(ids, 1, ids.Length, runOptions, clipSkip);
    }
}
