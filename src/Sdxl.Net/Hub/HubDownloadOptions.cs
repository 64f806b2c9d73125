namespace Sdxl.Net.Hub;

/// <summary>
/// Where and how <see cref="SdxlModelHub"/> finds and downloads a model. Every unset value comes from the same
/// environment variables as Python's <c>huggingface_hub</c>, so both share one cache.
/// </summary>
public sealed record HubDownloadOptions
{
    /// <summary>The branch, tag or commit hash (default <c>main</c>).</summary>
    public string Revision { get; init; } = "main";

    /// <summary>
    /// The ONNX layout to take when the repository has several, e.g. <c>fp16</c> or <c>onnx</c>: a folder of the
    /// repository (or one part of its name) that holds <c>model_index.json</c> and <c>unet/model.onnx</c>.
    /// Null takes the repository root when it is an ONNX pipeline, otherwise the shortest non-fp16 layout.
    /// </summary>
    public string? Variant { get; init; }

    /// <summary>The hub cache folder. Default: <c>HF_HUB_CACHE</c>, else <c>$HF_HOME/hub</c>, else <c>~/.cache/huggingface/hub</c>.</summary>
    public string? CacheDirectory { get; init; }

    /// <summary>The Hub's address. Default: <c>HF_ENDPOINT</c>, else <c>https://huggingface.co</c>.</summary>
    public string? Endpoint { get; init; }

    /// <summary>An access token for gated or private repositories. Default: <c>HF_TOKEN</c>, else the file <c>$HF_HOME/token</c>.</summary>
    public string? Token { get; init; }

    /// <summary>Resolve from the cache only, never contact the Hub. Default: <c>HF_HUB_OFFLINE</c> (1/ON/YES/TRUE).</summary>
    public bool? Offline { get; init; }

    /// <summary>How many files download at the same time (1 to 16, default 4).</summary>
    public int MaxParallelDownloads { get; init; } = 4;

    /// <summary>How many times a failed transfer is retried without any new bytes arriving (default 5).</summary>
    public int MaxRetries { get; init; } = 5;

    /// <summary>How long to wait for another process that is downloading the same file (default 10 minutes).</summary>
    public TimeSpan LockTimeout { get; init; } = TimeSpan.FromMinutes(10);

    internal void Validate()
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(Revision, nameof(Revision));
        if (RevisionProblem(Revision) is { } problem)
        {
            throw new ArgumentException(
                $"Revision '{Revision}' is not a branch, tag or commit name: {problem}.", nameof(Revision));
        }

        if (MaxParallelDownloads is < 1 or > 16)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxParallelDownloads), MaxParallelDownloads, "MaxParallelDownloads must be from 1 to 16.");
        }

        if (MaxRetries is < 0 or > 100)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxRetries), MaxRetries, "MaxRetries must be from 0 to 100.");
        }

        if (LockTimeout < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(LockTimeout), LockTimeout, "LockTimeout must not be negative.");
        }
    }

    // A revision becomes a path in the cache (refs/<revision>) and a URL segment, so it must be a name git itself
    // would accept (git check-ref-format's rules, which the Hub's branches and tags follow): above all no "..", no
    // absolute path and no backslash, which would lead outside the cache.
    private static string? RevisionProblem(string revision)
    {
        if (revision.Length > 255)
        {
            return "longer than 255 characters";
        }

        foreach (char c in revision)
        {
            if (char.IsControl(c) || c is ' ' or '~' or '^' or ':' or '?' or '*' or '[' or '\\')
            {
                return $"it contains '{(char.IsControl(c) ? $"U+{(int)c:X4}" : c.ToString())}'";
            }
        }

        if (revision.Contains("..", StringComparison.Ordinal) || revision.Contains("@{", StringComparison.Ordinal))
        {
            return "it contains '..' or '@{'";
        }

        if (revision.StartsWith('/') || revision.EndsWith('/') || revision.Contains("//", StringComparison.Ordinal))
        {
            return "it starts or ends with '/' or has an empty part";
        }

        foreach (var part in revision.Split('/'))
        {
            if (part.StartsWith('.') || part.EndsWith(".lock", StringComparison.Ordinal) || part.EndsWith('.'))
            {
                return $"its part '{part}' starts or ends with '.' or ends with '.lock'";
            }
        }

        return null;
    }
}
