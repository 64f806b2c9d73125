namespace Sdxl.Net.Text;

/// <summary>
/// A prompt encoded for a CLIP text encoder: <c>[BOS] + ids[..MaxLength-2] + [EOS]</c>, padded to the tokenizer's
/// <see cref="ClipTokenizer.MaxLength"/> with its pad id, exactly as diffusers calls the tokenizer
/// (<c>padding="max_length", truncation=True</c>).
/// </summary>
public sealed class TokenizedPrompt
{
    internal TokenizedPrompt(int[] inputIds, int tokenCount, int keptTokenCount)
    {
        InputIds = inputIds;
        TokenCount = tokenCount;
        KeptTokenCount = keptTokenCount;
    }

    /// <summary>The token ids fed to the text encoder; always exactly <see cref="ClipTokenizer.MaxLength"/> ids.</summary>
    public IReadOnlyList<int> InputIds { get; }

    /// <summary>The number of prompt tokens (without BOS and EOS) before truncation.</summary>
    public int TokenCount { get; }

    /// <summary>The number of prompt tokens that survived truncation and appear in <see cref="InputIds"/>.</summary>
    public int KeptTokenCount { get; }

    /// <summary>
    /// <see langword="true"/> when the prompt had more tokens than fit between BOS and EOS and its tail was dropped
    /// (diffusers logs a warning in that case).
    /// </summary>
    public bool Truncated => TokenCount > KeptTokenCount;
}
