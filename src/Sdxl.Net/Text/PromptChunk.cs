namespace Sdxl.Net.Text;

/// <summary>
/// One 77-token window of a weighted prompt: <c>[BOS] + up to 75 tokens + [EOS]</c>, padded, with each position's weight.
/// A long prompt is encoded as several chunks whose hidden states are concatenated.
/// </summary>
public sealed class PromptChunk
{
    internal PromptChunk(int[] inputIds, float[] weights, int tokenCount)
    {
        InputIds = inputIds;
        Weights = weights;
        TokenCount = tokenCount;
    }

    /// <summary>The ids fed to the text encoder (<see cref="ClipTokenizer.MaxLength"/> of them); after the first end-of-text token they are the tokenizer's pad id.</summary>
    public IReadOnlyList<int> InputIds { get; }

    /// <summary>The weight of each position (1 for BOS, EOS and padding).</summary>
    public IReadOnlyList<float> Weights { get; }

    /// <summary>The prompt tokens in this chunk (without BOS, EOS and padding).</summary>
    public int TokenCount { get; }

    internal int[] Ids => (int[])InputIds;

    internal float[] WeightArray => (float[])Weights;

    /// <summary>Whether every weight is exactly 1 (no weighting to apply).</summary>
    internal bool Unweighted
    {
        get
        {
            foreach (var w in WeightArray)
            {
                if (w != 1f)
                {
                    return false;
                }
            }

            return true;
        }
    }
}

/// <summary>
/// Splits a parsed prompt into 75-token chunks the way AUTOMATIC1111's <c>tokenize_line</c> does: each piece is
/// tokenized on its own; a chunk that is full when a non-comma token arrives moves the tokens after its last comma
/// to the next chunk if that comma is among its last 20 tokens; <c>BREAK</c> closes the current chunk.
/// </summary>
internal static class PromptChunker
{
    /// <summary>How far back a full chunk looks for a comma to break at (A1111's <c>comma_padding_backtrack</c>, default 20).</summary>
    public const int CommaBacktrack = 20;

    /// <param name="tokenizer">The encoder's tokenizer.</param>
    /// <param name="segments">The parsed prompt.</param>
    /// <param name="embeddings">Textual-inversion embeddings whose trigger words expand to their rows' ids, or <see langword="null"/>.</param>
    /// <param name="component">The text encoder the chunks are for (selects the embeddings' rows).</param>
    public static List<PromptChunk> Chunk(ClipTokenizer tokenizer, IReadOnlyList<PromptSegment> segments, TextualInversions? embeddings = null, string component = "")
    {
        int chunkLength = tokenizer.MaxLength - 2;
        int comma = tokenizer.CommaTokenId;
        var chunks = new List<PromptChunk>();
        var tokens = new List<int>(chunkLength);
        var weights = new List<float>(chunkLength);
        int lastComma = -1;

        void Close()
        {
            chunks.Add(Build(tokenizer, tokens, weights));
            tokens.Clear();
            weights.Clear();
            lastComma = -1;
        }

        foreach (var segment in segments)
        {
            if (segment.IsBreak)
            {
                Close();
                continue;
            }

            // A1111 keeps the multipliers as Python floats and hands them to torch as float32.
            float weight = (float)segment.Weight;
            var ids = tokenizer.EncodeToIds(segment.Text);
            for (int position = 0; position < ids.Count;)
            {
                int token = ids[position];
                if (token == comma)
                {
                    lastComma = tokens.Count;
                }
                else if (tokens.Count == chunkLength && lastComma != -1 && tokens.Count - lastComma <= CommaBacktrack)
                {
                    int breakAt = lastComma + 1;
                    var movedTokens = tokens.GetRange(breakAt, tokens.Count - breakAt);
                    var movedWeights = weights.GetRange(breakAt, weights.Count - breakAt);
                    tokens.RemoveRange(breakAt, tokens.Count - breakAt);
                    weights.RemoveRange(breakAt, weights.Count - breakAt);
                    Close();
                    tokens.AddRange(movedTokens);
                    weights.AddRange(movedWeights);
                }

                if (tokens.Count == chunkLength)
                {
                    Close();
                }

                if (embeddings is not null && embeddings.TryMatch(ids, position, tokenizer, component, out var matched, out var rows))
                {
                    // An embedding's vectors stay together: if they do not fit, the chunk closes first (A1111).
                    if (tokens.Count + rows.Length > chunkLength)
                    {
                        Close();
                    }

                    foreach (var row in rows)
                    {
                        tokens.Add(row);
                        weights.Add(weight);
                    }

                    position += matched;
                    continue;
                }

                tokens.Add(token);
                weights.Add(weight);
                position++;
            }
        }

        if (tokens.Count > 0 || chunks.Count == 0)
        {
            Close();
        }

        return chunks;
    }

    /// <summary>The chunk of an empty prompt: BOS, EOS, padding, all weights 1.</summary>
    public static PromptChunk Empty(ClipTokenizer tokenizer) => Build(tokenizer, [], []);

    // [BOS] + tokens + EOS up to 76 + [EOS]; then every id after the first EOS becomes the pad id (A1111's rule for
    // OpenCLIP, whose pad id 0 differs from EOS; for CLIP ViT-L the pad is EOS and nothing changes).
    private static PromptChunk Build(ClipTokenizer tokenizer, List<int> tokens, List<float> weights)
    {
        int length = tokenizer.MaxLength;
        var ids = new int[length];
        var w = new float[length];
        ids.AsSpan().Fill(tokenizer.EosTokenId);
        w.AsSpan().Fill(1f);
        ids[0] = tokenizer.BosTokenId;
        for (int i = 0; i < tokens.Count; i++)
        {
            ids[i + 1] = tokens[i];
            w[i + 1] = weights[i];
        }

        int firstEos = Array.IndexOf(ids, tokenizer.EosTokenId);
        if (firstEos >= 0)
        {
            ids.AsSpan(firstEos + 1).Fill(tokenizer.PadTokenId);
        }

        return new PromptChunk(ids, w, tokens.Count);
    }
}
