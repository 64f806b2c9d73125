namespace Sdxl.Net.Hub;

/// <summary>What went wrong while resolving or downloading a model from the Hugging Face Hub.</summary>
public enum HubErrorKind
{
    /// <summary>The server refused access (HTTP 401/403): a gated or private repository, or a bad token.</summary>
    AccessDenied,

    /// <summary>The repository does not exist (or is private and no token was sent).</summary>
    RepositoryNotFound,

    /// <summary>The repository exists but the branch, tag or commit does not.</summary>
    RevisionNotFound,

    /// <summary>The repository holds no ONNX pipeline folder (or none for the requested variant).</summary>
    NoOnnxFiles,

    /// <summary>A downloaded file did not match its published SHA-256 or size; nothing was put in the cache.</summary>
    CorruptDownload,

    /// <summary>The disk holding the cache has no room for the download.</summary>
    DiskFull,

    /// <summary>The model is not in the local cache and downloading was not allowed (offline mode or cache-only lookup).</summary>
    NotCached,

    /// <summary>Another process held the cache's lock file for longer than the lock timeout.</summary>
    LockTimeout,

    /// <summary>The Hub could not be reached, or kept failing after the retries.</summary>
    Network,
}

/// <summary>
/// A model from the Hugging Face Hub that cannot be resolved or downloaded. <see cref="Kind"/> says why; the message
/// names the repository and file and says what to do.
/// </summary>
public sealed class SdxlHubException : SdxlModelException
{
    /// <summary>Creates the exception.</summary>
    public SdxlHubException(HubErrorKind kind, string message) : base(message) => Kind = kind;

    /// <summary>Creates the exception with the underlying cause.</summary>
    public SdxlHubException(HubErrorKind kind, string message, Exception innerException) : base(message, innerException) => Kind = kind;

    /// <summary>Why the model could not be resolved or downloaded.</summary>
    public HubErrorKind Kind { get; }
}
