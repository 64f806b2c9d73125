using System.Buffers;
using System.Net;
using System.Net.Http.Headers;
using System.Reflection;
using System.Text.Json;

namespace Sdxl.Net.Hub;

/// <summary>A repository revision as the Hub's API lists it: its commit and every file path.</summary>
internal sealed record HubRevision(string Commit, IReadOnlyList<string> Files);

/// <summary>
/// What the resolve endpoint says about one file: its blob name, size, and where its bytes are; for small files
/// served directly (configs, tokenizer files), the bytes themselves, read with the metadata instead of asked twice.
/// </summary>
internal sealed record HubFileMetadata(string Path, string Etag, long? Size, Uri DownloadUrl, byte[]? Content = null);

/// <summary>
/// The Hub's HTTP protocol as huggingface_hub speaks it (file_download.py, hf_api.py):
/// <c>GET /api/models/{repo}/revision/{rev}</c> for the commit and file list, and
/// <c>/{repo}/resolve/{commit}/{path}</c> for each file, whose first answer carries <c>X-Repo-Commit</c>,
/// <c>X-Linked-Etag</c> and <c>X-Linked-Size</c> (large files, with a redirect to a CDN) or <c>ETag</c> and the body.
/// Redirects are followed here, not by the handler, so the token never leaves the Hub's host.
/// </summary>
internal sealed class HubHttp(HubSettings settings, string repoId, int maxRetries)
{
    private const int MaxRedirects = 10;

    /// <summary>Files up to this size that the resolve endpoint serves itself are kept from the metadata request.</summary>
    private const long InlineLimit = 1 << 20;
    private static readonly TimeSpan HeadersTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(60);

    private static readonly HttpClient Client = new(new SocketsHttpHandler
    {
        AllowAutoRedirect = false,
        AutomaticDecompression = DecompressionMethods.None,
        ConnectTimeout = TimeSpan.FromSeconds(30),
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
    })
    {
        Timeout = Timeout.InfiniteTimeSpan,
    };

    private static readonly string UserAgent =
        $"Sdxl.Net/{typeof(HubHttp).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0"}";

    private readonly Uri _endpoint = new(settings.Endpoint + "/");

    /// <summary>Initial delay between retries; doubled after each failure, at most 8 s.</summary>
    internal static TimeSpan RetryDelay { get; set; } = TimeSpan.FromMilliseconds(250);

    public async Task<HubRevision> GetRevisionAsync(string revision, CancellationToken ct)
    {
        var url = new Uri(_endpoint, $"api/models/{repoId}/revision/{Uri.EscapeDataString(revision)}");
        return await WithRetriesAsync($"the file list of {repoId}@{revision}", async () =>
        {
            using var response = await SendAsync(url, rangeFrom: 0, followRedirects: true, ct).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                throw IsTransient(response.StatusCode) ? new HttpRequestException($"HTTP {(int)response.StatusCode}") : StatusError(response, revision, path: null);
            }

            using var json = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false), cancellationToken: ct).ConfigureAwait(false);
            var root = json.RootElement;
            if (!root.TryGetProperty("sha", out var sha) || sha.GetString() is not { Length: > 0 } commit || !IsSafeName(commit))
            {
                throw new SdxlHubException(HubErrorKind.Network, $"The Hub's answer for {repoId}@{revision} has no commit hash ('sha'): {url}");
            }

            var files = new List<string>();
            if (root.TryGetProperty("siblings", out var siblings) && siblings.ValueKind == JsonValueKind.Array)
            {
                foreach (var sibling in siblings.EnumerateArray())
                {
                    if (sibling.TryGetProperty("rfilename", out var name) && name.GetString() is { Length: > 0 } path)
                    {
                        files.Add(path);
                    }
                }
            }

            return new HubRevision(commit, files);
        }, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Reads a file's metadata from the resolve endpoint without reading its body: at the commit (as huggingface_hub
    /// asks), or at <paramref name="revision"/> when a server (a simple mirror) does not resolve commit hashes.
    /// </summary>
    public async Task<HubFileMetadata> GetFileMetadataAsync(string commit, string revision, string path, CancellationToken ct)
    {
        try
        {
            return await GetFileMetadataAtAsync(commit, path, ct).ConfigureAwait(false);
        }
        catch (SdxlHubException e) when (revision != commit && e.Kind is HubErrorKind.RevisionNotFound or HubErrorKind.RepositoryNotFound)
        {
            return await GetFileMetadataAtAsync(revision, path, ct).ConfigureAwait(false);
        }
    }

    private async Task<HubFileMetadata> GetFileMetadataAtAsync(string commit, string path, CancellationToken ct)
    {
        var start = new Uri(_endpoint, $"{repoId}/resolve/{Uri.EscapeDataString(commit)}/{string.Join('/', path.Split('/').Select(Uri.EscapeDataString))}");
        return await WithRetriesAsync($"'{path}' of {repoId}", async () =>
        {
            string? linkedEtag = null, etag = null;
            long? linkedSize = null;
            var url = start;
            for (int hop = 0; hop <= MaxRedirects; hop++)
            {
                using var response = await SendAsync(url, rangeFrom: 0, followRedirects: false, ct).ConfigureAwait(false);
                linkedEtag ??= Header(response, "X-Linked-Etag");
                linkedSize ??= long.TryParse(Header(response, "X-Linked-Size"), out var s) ? s : null;
                var thisEtag = Header(response, "ETag");
                etag = thisEtag ?? etag;
                if (IsRedirect(response.StatusCode) && response.Headers.Location is { } location)
                {
                    var next = new Uri(url, location);

                    // A redirect that names the linked file (the Hub's 302 to its CDN), or, as huggingface_hub reads
                    // it, any redirect to an absolute address, ends the lookup: the CDN's own headers describe its
                    // storage, not the repository. Relative redirects (a renamed repository) are followed.
                    if (linkedEtag is not null || (location.IsAbsoluteUri && thisEtag is not null))
                    {
                        return Metadata(path, linkedEtag ?? thisEtag, linkedSize, next);
                    }

                    url = next;
                    continue;
                }

                if (!response.IsSuccessStatusCode)
                {
                    throw IsTransient(response.StatusCode) ? new HttpRequestException($"HTTP {(int)response.StatusCode}") : StatusError(response, commit, path);
                }

                var size = linkedSize ?? response.Content.Headers.ContentLength;
                var metadata = Metadata(path, linkedEtag ?? thisEtag ?? etag, size, url);
                if (linkedEtag is null && response.Content.Headers.ContentLength is { } length and <= InlineLimit)
                {
                    var content = await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
                    return content.Length == length ? metadata with { Content = content } : metadata;
                }

                return metadata;
            }

            throw new SdxlHubException(HubErrorKind.Network, $"More than {MaxRedirects} redirects for '{path}' of {repoId}: {start}");
        }, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Downloads <paramref name="file"/> into <paramref name="target"/>, resuming with a Range request after a cut
    /// connection (bytes already in the file are kept). Retries up to the bound when no new byte arrived since the
    /// last failure. <paramref name="onBytes"/> receives each increment (negative when a server ignored the Range and
    /// the file restarts).
    /// </summary>
    public async Task DownloadAsync(HubFileMetadata file, string target, Action<long> onBytes, CancellationToken ct)
    {
        if (file.Content is { } content)
        {
            try
            {
                await File.WriteAllBytesAsync(target, content, ct).ConfigureAwait(false);
            }
            catch (IOException e) when (IsDiskFull(e))
            {
                throw DiskFull(Path.GetDirectoryName(target)!, file, e);
            }

            onBytes(content.Length);
            return;
        }

        int failures = 0;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            while (true)
            {
                long offset = File.Exists(target) ? new FileInfo(target).Length : 0;
                if (file.Size is { } size && offset > size)
                {
                    File.Delete(target);
                    onBytes(-offset);
                    offset = 0;
                }

                if (file.Size is { } complete && offset == complete)
                {
                    return;
                }

                bool progressed = false;
                try
                {
                    using var response = await SendAsync(file.DownloadUrl, offset, followRedirects: true, ct).ConfigureAwait(false);
                    if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
                    {
                        // What is on disk does not fit the server's file: start again.
                        File.Delete(target);
                        onBytes(-offset);
                        throw new HttpRequestException($"HTTP 416 for a resume at byte {offset}");
                    }

                    if (!response.IsSuccessStatusCode)
                    {
                        throw IsTransient(response.StatusCode) ? new HttpRequestException($"HTTP {(int)response.StatusCode}") : StatusError(response, null, file.Path);
                    }

                    bool append = offset > 0 && response.StatusCode == HttpStatusCode.PartialContent
                        && response.Content.Headers.ContentRange is { From: var from } && from == offset;
                    if (!append && offset > 0)
                    {
                        // The server sent the whole file instead of the rest: rewrite it from the start.
                        onBytes(-offset);
                        offset = 0;
                    }

                    await using var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
                    await using var output = new FileStream(target, append ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
                    using var readTimeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    while (true)
                    {
                        readTimeout.CancelAfter(ReadTimeout);
                        int read;
                        try
                        {
                            read = await body.ReadAsync(buffer, readTimeout.Token).ConfigureAwait(false);
                        }
                        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                        {
                            throw new TimeoutException($"no data for {ReadTimeout.TotalSeconds:0} s");
                        }

                        if (read == 0)
                        {
                            break;
                        }

                        try
                        {
                            await output.WriteAsync(buffer.AsMemory(0, read), ct).ConfigureAwait(false);
                        }
                        catch (IOException e) when (IsDiskFull(e))
                        {
                            throw DiskFull(Path.GetDirectoryName(target)!, file, e);
                        }

                        offset += read;
                        progressed = true;
                        onBytes(read);
                        readTimeout.TryReset();
                    }

                    if (file.Size is { } expected && offset < expected)
                    {
                        throw new IOException($"the connection closed at byte {offset} of {expected}");
                    }

                    return;
                }
                catch (Exception e) when (!ct.IsCancellationRequested && e is HttpRequestException or IOException or TimeoutException && !(e is IOException io && IsDiskFull(io)))
                {
                    failures = progressed ? 1 : failures + 1;
                    if (failures > maxRetries)
                    {
                        throw new SdxlHubException(HubErrorKind.Network,
                            $"Downloading '{file.Path}' of {repoId} failed {failures} times in a row without progress ({e.Message}); " +
                            "the part already downloaded is kept and the next download resumes from it.", e);
                    }

                    await Task.Delay(Backoff(failures), ct).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    internal static bool IsDiskFull(IOException e)
    {
        // ERROR_HANDLE_DISK_FULL (39) and ERROR_DISK_FULL (112) on Windows; ENOSPC (28) and EDQUOT (122) on Unix.
        int code = e.HResult & 0xFFFF;
        return OperatingSystem.IsWindows() ? code is 39 or 112 : e.HResult is 28 or 122 || code is 39 or 112;
    }

    internal static SdxlHubException DiskFull(string folder, HubFileMetadata file, Exception? inner = null)
    {
        var message = $"The disk is full: '{file.Path}'{(file.Size is { } s ? $" ({s:N0} bytes)" : string.Empty)} does not fit in '{folder}'. " +
            "Free some space or point HF_HUB_CACHE (or HF_HOME) at a larger disk; the part already downloaded is kept and resumes.";
        return inner is null ? new SdxlHubException(HubErrorKind.DiskFull, message) : new SdxlHubException(HubErrorKind.DiskFull, message, inner);
    }

    private async Task<T> WithRetriesAsync<T>(string what, Func<Task<T>> action, CancellationToken ct)
    {
        for (int failures = 0; ; failures++)
        {
            try
            {
                return await action().ConfigureAwait(false);
            }
            catch (Exception e) when (!ct.IsCancellationRequested && e is HttpRequestException or IOException or TimeoutException or TaskCanceledException)
            {
                if (failures >= maxRetries)
                {
                    throw new SdxlHubException(HubErrorKind.Network, $"Could not reach the Hub at {settings.Endpoint} for {what}: {e.Message}", e);
                }

                await Task.Delay(Backoff(failures + 1), ct).ConfigureAwait(false);
            }
        }
    }

    private async Task<HttpResponseMessage> SendAsync(Uri url, long rangeFrom, bool followRedirects, CancellationToken ct)
    {
        for (int hop = 0; ; hop++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, url);
            request.Headers.UserAgent.ParseAdd(UserAgent);

            // The real size is wanted: no compressed bodies.
            request.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue("identity"));
            if (rangeFrom > 0)
            {
                request.Headers.Range = new RangeHeaderValue(rangeFrom, null);
            }

            if (settings.Token is { } token && IsHubHost(url))
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            }

            HttpResponseMessage response;
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                timeout.CancelAfter(HeadersTimeout);
                try
                {
                    response = await Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    throw new TimeoutException($"no answer from {url.GetLeftPart(UriPartial.Authority)} within {HeadersTimeout.TotalSeconds:0} s");
                }
            }

            if (!followRedirects || !IsRedirect(response.StatusCode) || response.Headers.Location is not { } location)
            {
                return response;
            }

            response.Dispose();
            if (hop >= MaxRedirects)
            {
                throw new SdxlHubException(HubErrorKind.Network, $"More than {MaxRedirects} redirects from {url}");
            }

            url = new Uri(url, location);
        }
    }

    private SdxlHubException StatusError(HttpResponseMessage response, string? revision, string? path)
    {
        int status = (int)response.StatusCode;
        var code = Header(response, "X-Error-Code");
        var page = $"{settings.Endpoint}/{repoId}";
        var what = path is null ? repoId : $"'{path}' of {repoId}";
        if (code == "RevisionNotFound")
        {
            return new SdxlHubException(HubErrorKind.RevisionNotFound, $"Revision '{revision}' not found in {repoId} (HTTP {status}): check the branch, tag or commit on {page}.");
        }

        if (code is "RepoNotFound" || (status == 404 && path is null && code is null))
        {
            return new SdxlHubException(HubErrorKind.RepositoryNotFound,
                $"Repository {repoId}{(revision is null or "main" ? string.Empty : $" (or its revision '{revision}')")} not found at {settings.Endpoint} (HTTP {status}): " +
                "check the id; a private repository also needs HF_TOKEN set to a token with access.");
        }

        if (status is 401 or 403)
        {
            return new SdxlHubException(HubErrorKind.AccessDenied,
                $"Access to {what} was refused (HTTP {status}{(code is null ? string.Empty : ", " + code)}): the repository is gated or private. " +
                $"Accept the licence on the model page ({page}) and set HF_TOKEN to an access token of that account" +
                (settings.Token is null ? " (no token was sent)." : " (the token that was sent has no access)."));
        }

        if (status == 404)
        {
            return new SdxlHubException(HubErrorKind.RepositoryNotFound, $"{what} was not found (HTTP 404{(code is null ? string.Empty : ", " + code)}), although the file list names it.");
        }

        return new SdxlHubException(HubErrorKind.Network, $"The Hub answered HTTP {status} ({response.ReasonPhrase}) for {what}.");
    }

    private HubFileMetadata Metadata(string path, string? rawEtag, long? size, Uri downloadUrl)
    {
        var etag = NormalizeEtag(rawEtag);
        if (etag is null || !IsSafeName(etag))
        {
            throw new SdxlHubException(HubErrorKind.Network,
                $"The Hub sent {(etag is null ? "no ETag" : $"an unusable ETag '{etag}'")} for '{path}' of {repoId}: the file cannot be stored in the cache. Is HF_ENDPOINT a Hub (or a mirror of one)?");
        }

        return new HubFileMetadata(path, etag, size, downloadUrl);
    }

    /// <summary>huggingface_hub's _normalize_etag: drop a weak-validator prefix <c>W/</c> and the quotes.</summary>
    internal static string? NormalizeEtag(string? etag)
    {
        if (string.IsNullOrWhiteSpace(etag))
        {
            return null;
        }

        var value = etag.Trim();
        if (value.StartsWith("W/", StringComparison.Ordinal))
        {
            value = value[2..];
        }

        value = value.Trim('"');
        return value.Length == 0 ? null : value;
    }

    /// <summary>A blob or commit name that is one plain file name on every platform.</summary>
    internal static bool IsSafeName(string name) =>
        name.Length is > 0 and <= 200 && name != "." && name != ".." && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');

    private bool IsHubHost(Uri url) => Uri.Compare(url, _endpoint, UriComponents.SchemeAndServer, UriFormat.Unescaped, StringComparison.OrdinalIgnoreCase) == 0;

    private static bool IsRedirect(HttpStatusCode status) => (int)status is 301 or 302 or 303 or 307 or 308;

    private static bool IsTransient(HttpStatusCode status) => (int)status is 408 or 429 or >= 500;

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) || response.Content.Headers.TryGetValues(name, out values) ? values.FirstOrDefault() : null;

    private static TimeSpan Backoff(int failures) =>
        TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(8).Ticks, RetryDelay.Ticks << Math.Min(failures - 1, 10)));
}
