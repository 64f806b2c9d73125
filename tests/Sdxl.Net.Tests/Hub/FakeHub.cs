using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Sdxl.Net.Tests.Hub;

/// <summary>
/// A Hugging Face Hub on 127.0.0.1, written from huggingface_hub's client (hf_api.py, file_download.py):
/// <c>GET /api/models/{repo}/revision/{rev}</c> answers the commit and file list; <c>/{repo}/resolve/{rev}/{path}</c>
/// answers small files directly with <c>ETag: W/"&lt;git blob sha1&gt;"</c> and large ones (LFS) with a 302 to
/// <c>/cdn/&lt;sha256&gt;</c> carrying <c>X-Linked-Etag</c>/<c>X-Linked-Size</c>; the CDN honours Range. Faults on
/// request: a gated repository (401 GatedRepo without the token), a connection cut mid-file, a corrupt body, a size
/// larger than any disk. Every request is logged.
/// </summary>
internal sealed class FakeHub : IAsyncDisposable
{
    /// <summary>Files at least this large are LFS files (as the Hub stores weights), the rest are git blobs.</summary>
    private const int LfsThreshold = 1024;

    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, Repo> _repos = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte[]> _lfs = new(StringComparer.Ordinal);

    private FakeHub(WebApplication app) => _app = app;

    public string Endpoint { get; private set; } = "";

    /// <summary>Method, path and Range of every request, in order.</summary>
    public ConcurrentQueue<string> Requests { get; } = new();

    /// <summary>LFS blobs (by sha256) whose next CDN answer is cut after this many bytes (once each).</summary>
    public ConcurrentDictionary<string, long> CutAfter { get; } = new(StringComparer.Ordinal);

    /// <summary>LFS blobs (by sha256) that the CDN always serves with one byte flipped.</summary>
    public ConcurrentDictionary<string, bool> Corrupt { get; } = new(StringComparer.Ordinal);

    /// <summary>LFS blobs (by sha256) whose advertised X-Linked-Size is absurd (a petabyte).</summary>
    public ConcurrentDictionary<string, bool> HugeSize { get; } = new(StringComparer.Ordinal);

    /// <summary>A pause before each CDN body, so that concurrent downloads overlap.</summary>
    public TimeSpan CdnDelay { get; set; }

    /// <summary>Whether the resolve endpoint's redirect is absolute (http://127.0.0.1:port/cdn/…) rather than relative.</summary>
    public bool AbsoluteRedirects { get; set; }

    public static async Task<FakeHub> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var hub = new FakeHub(app);
        app.Run(hub.HandleAsync);
        await app.StartAsync();
        hub.Endpoint = app.Urls.Single().TrimEnd('/');
        return hub;
    }

    /// <summary>Publishes every file under <paramref name="folder"/> plus <paramref name="extra"/> as one commit; returns the commit hash.</summary>
    public string AddRepo(string repoId, string? folder, IReadOnlyDictionary<string, byte[]>? extra = null, string? token = null, string? tag = null)
    {
        var files = new SortedDictionary<string, byte[]>(StringComparer.Ordinal);
        if (folder is not null)
        {
            foreach (var path in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories))
            {
                files[Path.GetRelativePath(folder, path).Replace('\\', '/')] = File.ReadAllBytes(path);
            }
        }

        foreach (var (path, bytes) in extra ?? new Dictionary<string, byte[]>())
        {
            files[path] = bytes;
        }

        var commit = Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(repoId + string.Join(',', files.Keys) + Guid.NewGuid())));
        foreach (var bytes in files.Values.Where(b => b.Length >= LfsThreshold))
        {
            _lfs[Sha256(bytes)] = bytes;
        }

        _repos[repoId] = new Repo(commit, tag, files, token);
        return commit;
    }

    /// <summary>The name huggingface_hub gives a file's blob: the sha256 of LFS files, the git blob sha1 of others.</summary>
    public static string BlobName(byte[] bytes) => bytes.Length >= LfsThreshold ? Sha256(bytes) : GitBlobSha1(bytes);

    public static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>git's object id: sha1 over "blob {length}\0" and the content.</summary>
    public static string GitBlobSha1(byte[] bytes) =>
        Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {bytes.Length}\0"), .. bytes]));

    public int CountRequests(Func<string, bool> predicate) => Requests.Count(predicate);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        var path = Uri.UnescapeDataString(request.Path.Value ?? "/");
        Requests.Enqueue($"{request.Method} {path} {request.Headers.Range}".TrimEnd());
        var response = context.Response;
        var parts = path.TrimStart('/').Split('/');

        if (parts is ["api", "models", var org, var name, "revision", var revision])
        {
            if (await AuthorizeAsync(context, $"{org}/{name}") is not { } repo)
            {
                return;
            }

            if (revision != "main" && revision != repo.Commit && revision != repo.Tag)
            {
                await Error(response, 404, "RevisionNotFound");
                return;
            }

            response.ContentType = "application/json";
            await response.WriteAsync(JsonSerializer.Serialize(new
            {
                id = $"{org}/{name}",
                sha = repo.Commit,
                siblings = repo.Files.Keys.Select(f => new { rfilename = f }),
            }));
            return;
        }

        if (parts.Length >= 5 && parts[2] == "resolve")
        {
            if (await AuthorizeAsync(context, $"{parts[0]}/{parts[1]}") is not { } repo)
            {
                return;
            }

            var file = string.Join('/', parts[4..]);
            if (parts[3] != repo.Commit && parts[3] != "main")
            {
                await Error(response, 404, "RevisionNotFound");
                return;
            }

            if (!repo.Files.TryGetValue(file, out var bytes))
            {
                await Error(response, 404, "EntryNotFound");
                return;
            }

            response.Headers["X-Repo-Commit"] = repo.Commit;
            if (bytes.Length >= LfsThreshold)
            {
                var sha = Sha256(bytes);
                response.StatusCode = 302;
                response.Headers["X-Linked-Etag"] = $"\"{sha}\"";
                response.Headers["X-Linked-Size"] = HugeSize.ContainsKey(sha) ? "1000000000000000" : bytes.Length.ToString();
                response.Headers.ETag = $"\"{GitBlobSha1(Encoding.ASCII.GetBytes(sha))}\"";
                response.Headers.Location = AbsoluteRedirects ? $"{Endpoint}/cdn/{sha}?file={Uri.EscapeDataString(file)}" : $"/cdn/{sha}?file={Uri.EscapeDataString(file)}";
                return;
            }

            response.Headers.ETag = $"W/\"{GitBlobSha1(bytes)}\"";
            response.ContentLength = bytes.Length;
            if (!HttpMethods.IsHead(request.Method))
            {
                await response.Body.WriteAsync(bytes);
            }

            return;
        }

        if (parts is ["cdn", var blob] && _lfs.TryGetValue(blob, out var content))
        {
            await ServeCdnAsync(context, blob, content);
            return;
        }

        response.StatusCode = 404;
    }

    private async Task ServeCdnAsync(HttpContext context, string sha, byte[] content)
    {
        var response = context.Response;
        if (Corrupt.ContainsKey(sha))
        {
            content = (byte[])content.Clone();
            content[content.Length / 2] ^= 0xFF;
        }

        long from = 0;
        var range = context.Request.Headers.Range.ToString();
        if (range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-')
            && long.TryParse(range["bytes=".Length..^1], out var start))
        {
            if (start >= content.Length)
            {
                response.StatusCode = 416;
                return;
            }

            from = start;
            response.StatusCode = 206;
            response.Headers.ContentRange = $"bytes {from}-{content.Length - 1}/{content.Length}";
        }

        response.Headers.ETag = $"\"{sha}\"";
        response.Headers.AcceptRanges = "bytes";
        response.ContentLength = content.Length - from;
        if (HttpMethods.IsHead(context.Request.Method))
        {
            return;
        }

        if (CdnDelay > TimeSpan.Zero)
        {
            await Task.Delay(CdnDelay);
        }

        if (CutAfter.TryRemove(sha, out var cut) && cut > from)
        {
            await response.Body.WriteAsync(content.AsMemory((int)from, (int)(cut - from)));
            await response.Body.FlushAsync();
            context.Abort();
            return;
        }

        await response.Body.WriteAsync(content.AsMemory((int)from));
    }

    private async Task<Repo?> AuthorizeAsync(HttpContext context, string repoId)
    {
        if (!_repos.TryGetValue(repoId, out var repo))
        {
            await Error(context.Response, 404, "RepoNotFound");
            return null;
        }

        if (repo.Token is { } token && context.Request.Headers.Authorization.ToString() != $"Bearer {token}")
        {
            await Error(context.Response, 401, "GatedRepo");
            return null;
        }

        return repo;
    }

    private static Task Error(HttpResponse response, int status, string code)
    {
        response.StatusCode = status;
        response.Headers["X-Error-Code"] = code;
        return response.WriteAsync($"{{\"error\":\"{code}\"}}");
    }

    private sealed record Repo(string Commit, string? Tag, SortedDictionary<string, byte[]> Files, string? Token);
}
