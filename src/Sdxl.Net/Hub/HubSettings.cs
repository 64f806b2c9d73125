namespace Sdxl.Net.Hub;

/// <summary>
/// The effective endpoint, cache folder, token and offline switch: the options first, then the environment variables
/// Python's <c>huggingface_hub</c> reads (constants.py), so that both find the same cache and credentials.
/// </summary>
internal sealed record HubSettings(string Endpoint, string CacheDirectory, string? Token, bool Offline)
{
    public const string DefaultEndpoint = "https://huggingface.co";

    public static HubSettings From(HubDownloadOptions options, Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        var endpoint = (options.Endpoint ?? NonEmpty(environment("HF_ENDPOINT")) ?? DefaultEndpoint).TrimEnd('/');
        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw new ArgumentException($"The Hub endpoint must be an absolute http(s) address; got '{endpoint}' (from {(options.Endpoint is null ? "HF_ENDPOINT" : "HubDownloadOptions.Endpoint")}).");
        }

        var home = HfHome(environment);
        var cache = options.CacheDirectory
            ?? NonEmpty(environment("HF_HUB_CACHE"))
            ?? NonEmpty(environment("HUGGINGFACE_HUB_CACHE"))
            ?? Path.Combine(home, "hub");
        var offline = options.Offline ?? (IsTrue(environment("HF_HUB_OFFLINE")) || IsTrue(environment("TRANSFORMERS_OFFLINE")));
        return new HubSettings(endpoint, Path.GetFullPath(ExpandHome(cache)), options.Token ?? ReadToken(environment, home), offline);
    }

    /// <summary>The cache folder the options or environment name, without the rest of the settings.</summary>
    public static string CacheDirectoryFrom(string? cacheDirectory, Func<string, string?>? environment = null) =>
        From(new HubDownloadOptions { CacheDirectory = cacheDirectory, Offline = true, Endpoint = DefaultEndpoint }, environment).CacheDirectory;

    /// <summary><c>HF_HOME</c>, else <c>$XDG_CACHE_HOME/huggingface</c>, else <c>~/.cache/huggingface</c>.</summary>
    private static string HfHome(Func<string, string?> environment) =>
        ExpandHome(NonEmpty(environment("HF_HOME"))
            ?? Path.Combine(NonEmpty(environment("XDG_CACHE_HOME")) ?? Path.Combine(UserHome(), ".cache"), "huggingface"));

    /// <summary><c>HF_TOKEN</c> (or the older <c>HUGGING_FACE_HUB_TOKEN</c>), else the file <c>HF_TOKEN_PATH</c> or <c>$HF_HOME/token</c>.</summary>
    private static string? ReadToken(Func<string, string?> environment, string home)
    {
        if ((NonEmpty(environment("HF_TOKEN")) ?? NonEmpty(environment("HUGGING_FACE_HUB_TOKEN"))) is { } token)
        {
            return token.Trim();
        }

        var path = ExpandHome(NonEmpty(environment("HF_TOKEN_PATH")) ?? Path.Combine(home, "token"));
        try
        {
            return File.Exists(path) ? NonEmpty(File.ReadAllText(path).Trim()) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>huggingface_hub's truthy values: 1, ON, YES, TRUE (any case).</summary>
    internal static bool IsTrue(string? value) =>
        value is not null && value.Trim().ToUpperInvariant() is "1" or "ON" or "YES" or "TRUE";

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;

    private static string UserHome() => Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);

    private static string ExpandHome(string path) =>
        path == "~" ? UserHome()
        : path.StartsWith("~/", StringComparison.Ordinal) || path.StartsWith("~\\", StringComparison.Ordinal) ? Path.Combine(UserHome(), path[2..])
        : path;
}
