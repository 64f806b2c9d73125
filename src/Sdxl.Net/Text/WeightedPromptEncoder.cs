using Microsoft.ML.OnnxRuntime;
using Sdxl.Net.Models;

namespace Sdxl.Net.Text;

/// <summary>
/// AUTOMATIC1111's prompt encoding for SDXL (<see cref="PromptSyntax.Weighted"/>): each prompt is parsed, split into
/// 75-token chunks, each chunk is padded to 77 and encoded by both text encoders, the per-token weights are applied to
/// the hidden states (and each chunk's mean restored, per encoder), and the chunks are concatenated along the sequence
/// axis. The pooled embedding is the first chunk's. The shorter of prompt and negative prompt is padded with chunks of
/// the encoded empty prompt; an empty or absent negative prompt gives zeros (embeddings and pooled), as A1111 does for SDXL.
/// </summary>
internal sealed class WeightedPromptEncoder : IPromptEncoder
{
    public static readonly WeightedPromptEncoder Instance = new();

    /// <summary>
    /// The most chunks one prompt may take (2400 tokens): every chunk lengthens the UNet's cross-attention, so a pasted
    /// novel would exhaust memory deep inside the UNet instead of failing here.
    /// </summary>
    public const int MaxChunks = 32;

    private WeightedPromptEncoder()
    {
    }

    /// <inheritdoc/>
    public (PromptEmbedding Positive, PromptEmbedding Negative) EncodePair(
        SdxlModelFolder model, PromptTexts texts, bool cfg, List<TruncationNote> notes, RunOptions? runOptions)
    {
        var positive = Encode(model, texts.Prompt, Second(texts.Prompt2, texts.Prompt), texts, runOptions);
        if (!cfg)
        {
            return (positive, positive);
        }

        // A1111 (sd_models_xl.get_learned_conditioning): a negative prompt that is entirely "" is zeroed, not encoded.
        PromptEmbedding negative;
        if (string.IsNullOrEmpty(texts.NegativePrompt) && string.IsNullOrEmpty(texts.NegativePrompt2))
        {
            int length = model.Tokenizer2.MaxLength;
            negative = new PromptEmbedding(new float[length * positive.HiddenSize], length, positive.HiddenSize, new float[positive.Pooled.Length]);
        }
        else
        {
            var negativeText = texts.NegativePrompt ?? string.Empty;
            negative = Encode(model, negativeText, Second(texts.NegativePrompt2, negativeText), texts, runOptions);
        }

        // CFG runs both rows in one batch: the shorter is extended with the encoded empty prompt (A1111's pad_cond_uncond).
        if (positive.SequenceLength != negative.SequenceLength)
        {
            var empty = Encode(model, string.Empty, string.Empty, texts, runOptions);
            positive = PadWith(positive, empty, negative.SequenceLength);
            negative = PadWith(negative, empty, positive.SequenceLength);
        }

        return (positive, negative);
    }

    private static List<PromptChunk> Chunk(SdxlModelFolder model, ClipTokenizer tokenizer, TextEncoderModel encoder, string prompt, PromptTexts options)
    {
        var chunks = PromptChunker.Chunk(tokenizer, PromptParser.Parse(prompt, options.Weighting), model.Embeddings, encoder.Component);
        if (chunks.Count > MaxChunks)
        {
            throw new ArgumentException(
                $"The prompt needs {chunks.Count} chunks of 75 tokens; at most {MaxChunks} are accepted with PromptSyntax.Weighted: \"{Shorten(prompt)}\".", "Prompt");
        }

        return chunks;
    }

    private static string Shorten(string text) => text.Length <= 80 ? text : string.Concat(text.AsSpan(0, 77), "...");

    private static string Second(string? second, string first) => string.IsNullOrEmpty(second) ? first : second;

    /// <summary>Encodes one prompt (and its second-encoder text) into [77·k, D] and the first chunk's pooled embedding.</summary>
    public static PromptEmbedding Encode(SdxlModelFolder model, string prompt, string prompt2, PromptTexts options, RunOptions? runOptions)
    {
        if (model.TextEncoder is null || model.Tokenizer is null)
        {
            // A refiner folder: the bigG encoder reads the prompt, as diffusers does.
            var chunksOnly = Chunk(model, model.Tokenizer2, model.TextEncoder2, prompt, options);
            var (hiddenOnly, sizeOnly, pooledOnly) = EncodeChunks(model, model.Tokenizer2, model.TextEncoder2, chunksOnly, options, runOptions);
            return new PromptEmbedding(hiddenOnly, chunksOnly.Count * model.Tokenizer2.MaxLength, sizeOnly, pooledOnly!);
        }

        if (model.Tokenizer.MaxLength != model.Tokenizer2.MaxLength)
        {
            throw new SdxlModelException($"The tokenizers have different model_max_length ({model.Tokenizer.MaxLength} and {model.Tokenizer2.MaxLength}); both must be the same.");
        }

        var chunks1 = Chunk(model, model.Tokenizer, model.TextEncoder, prompt, options);
        var chunks2 = Chunk(model, model.Tokenizer2, model.TextEncoder2, prompt2, options);

        // Different texts for the two encoders may chunk differently: the shorter gets empty-prompt chunks.
        while (chunks1.Count < chunks2.Count)
        {
            chunks1.Add(PromptChunker.Empty(model.Tokenizer));
        }

        while (chunks2.Count < chunks1.Count)
        {
            chunks2.Add(PromptChunker.Empty(model.Tokenizer2));
        }

        var (h1, d1, _) = EncodeChunks(model, model.Tokenizer, model.TextEncoder, chunks1, options, runOptions);
        var (h2, d2, pooled) = EncodeChunks(model, model.Tokenizer2, model.TextEncoder2, chunks2, options, runOptions);
        int sequence = chunks1.Count * model.Tokenizer.MaxLength;
        return new PromptEmbedding(PromptEncoder.ConcatenateChannels(h1, d1, h2, d2, sequence), sequence, d1 + d2, pooled!);
    }

    /// <summary>Runs one encoder over all chunks (one batch), applies the weights, and returns [k·77, d] and the first chunk's pooled row.</summary>
    private static (float[] Hidden, int HiddenSize, float[]? Pooled) EncodeChunks(
        SdxlModelFolder model, ClipTokenizer tokenizer, TextEncoderModel encoder, List<PromptChunk> chunks, PromptTexts options, RunOptions? runOptions)
    {
        int length = tokenizer.MaxLength;
        bool weighted = false;
        foreach (var chunk in chunks)
        {
            weighted |= !chunk.Unweighted;
        }

        // ComfyUI measures weights from the empty prompt's states: encode it as one more row of the batch.
        bool withEmpty = weighted && options.Weighting == PromptWeighting.ComfyUI;
        int rows = chunks.Count + (withEmpty ? 1 : 0);
        var ids = new int[rows * length];
        for (int c = 0; c < chunks.Count; c++)
        {
            chunks[c].Ids.CopyTo(ids, c * length);
        }

        if (withEmpty)
        {
            PromptChunker.Empty(tokenizer).Ids.CopyTo(ids, chunks.Count * length);
        }

        var (hidden, d, pooled) = encoder.Encode(ids, rows, length, runOptions, options.ClipSkip);
        if (hidden.Length != rows * length * d)
        {
            throw new SdxlModelException($"{encoder.Component}: expected hidden states [{rows}, {length}, {d}] for {rows} chunk(s); got {hidden.Length} values.");
        }

        if (weighted)
        {
            var empty = withEmpty ? hidden.AsSpan(chunks.Count * length * d, length * d) : default;
            for (int c = 0; c < chunks.Count; c++)
            {
                if (!chunks[c].Unweighted)
                {
                    PromptWeights.Apply(hidden.AsSpan(c * length * d, length * d), d, chunks[c].WeightArray, empty, options.Weighting);
                }
            }
        }

        var states = withEmpty ? hidden.AsSpan(0, chunks.Count * length * d).ToArray() : hidden;
        float[]? firstPooled = null;
        if (pooled is not null)
        {
            // The pooled projection of the first chunk; weights never touch it (A1111 takes it from the encoder output).
            firstPooled = model.Embeddings?.PoolAtEndOfText(encoder, chunks[0].Ids, tokenizer.EosTokenId, runOptions)
                ?? pooled.AsSpan(0, pooled.Length / rows).ToArray();
        }

        return (states, d, firstPooled);
    }

    // [seq, D] followed by copies of the empty prompt's [77, D] up to `sequence` tokens.
    private static PromptEmbedding PadWith(PromptEmbedding embedding, PromptEmbedding empty, int sequence)
    {
        if (embedding.SequenceLength >= sequence)
        {
            return embedding;
        }

        var hidden = new float[sequence * embedding.HiddenSize];
        embedding.Hidden.CopyTo(hidden, 0);
        for (int offset = embedding.Hidden.Length; offset < hidden.Length; offset += empty.Hidden.Length)
        {
            empty.Hidden.CopyTo(hidden, offset);
        }

        return embedding with { Hidden = hidden, SequenceLength = sequence };
    }
}
