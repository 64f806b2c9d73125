using System.Security.Cryptography;

namespace Sdxl.Net.Hub;

/// <summary>
/// SDXL ONNX models from the Hugging Face Hub, kept in the same cache as Python's <c>huggingface_hub</c>
/// (<c>$HF_HOME/hub</c>): a model downloaded by either is found by the other without a second download.
/// </summary>
/// <example>
/// <code>
/// var folder = await SdxlModelHub.DownloadAsync("stabilityai/stable-diffusion-xl-base-1.0");
/// using var pipeline = SdxlPipeline.CreateBuilder().WithModel(folder).Build();
/// </code>
/// </example>
public static class SdxlModelHub
{
    /// <summary>
    /// Downloads the ONNX pipeline files of <paramref name="repoId"/> (model_index.json, configs, scheduler and
    /// tokenizer files, <c>*.onnx</c> and their external data; never PyTorch weights) into the cache and returns the
    /// folder to give to <see cref="SdxlPipelineBuilder.WithModel(string)"/>. Files already in the cache are not
    /// downloaded again; an interrupted download resumes where it stopped. Offline
    /// (<see cref="HubDownloadOptions.Offline"/> or <c>HF_HUB_OFFLINE=1</c>) it resolves from the cache only.
    /// </summary>
    /// <exception cref="SdxlHubException">Access refused (gated or private), unknown repository or revision, no ONNX
    /// files, a corrupt download, a full disk, not cached while offline, or the Hub unreachable.</exception>
    public static async Task<string> DownloadAsync(
        string repoId,
        HubDownloadOptions? options = null,
        IProgress<HubDownloadProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        HubRepoId.Validate(repoId);
        options ??= new HubDownloadOptions();
        options.Validate();
        var settings = HubSettings.From(options);
        var cache = new HubRepoCache(settings.CacheDirectory, repoId);
        if (settings.Offline)
        {
            return FindCached(cache, options) ?? throw NotCached(cache, options, "offline mode (HF_HUB_OFFLINE) is on, so nothing is downloaded");
        }

        if (HubRepoId.CommitHash().IsMatch(options.Revision) && FindCached(cache, options) is { } pinned)
        {
            // A commit never changes: its complete snapshot needs no request (huggingface_hub skips them too).
            return pinned;
        }

        var http = new HubHttp(settings, repoId, options.MaxRetries);
        HubRevision revision;
        try
        {
            revision = await http.GetRevisionAsync(options.Revision, cancellationToken).ConfigureAwait(false);
        }
        catch (SdxlHubException e) when (e.Kind == HubErrorKind.Network && FindCached(cache, options) is { } cached)
        {
            // As huggingface_hub: when the Hub cannot be reached, a cached snapshot of the revision is used.
            return cached;
        }

        var layouts = OnnxLayouts.Detect(revision.Files.Where(IsSafeRepoPath));
        var layout = OnnxLayouts.Choose(layouts, options.Variant) ?? throw NoOnnx(repoId, options, layouts, revision.Files);
        var commit = revision.Commit;
        cache.WriteRef(options.Revision, commit);

        // model_index.json is linked last, so a snapshot folder holds a pipeline only once all its files are there.
        var modelIndex = layout.Root.Length == 0 ? "model_index.json" : layout.Root + "/model_index.json";
        var missing = layout.Files.Where(f => !HubRepoCache.IsUsable(cache.PointerPath(commit, f))).ToList();
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = options.MaxParallelDownloads, CancellationToken = cancellationToken };
        var metadata = new HubFileMetadata[missing.Count];
        await Parallel.ForEachAsync(Enumerable.Range(0, missing.Count), parallel, async (i, ct) =>
            metadata[i] = await http.GetFileMetadataAsync(commit, options.Revision, missing[i], ct).ConfigureAwait(false)).ConfigureAwait(false);

        long totalBytes = 0;
        foreach (var file in metadata.DistinctBy(m => m.Etag))
        {
            totalBytes += File.Exists(cache.BlobPath(file.Etag)) ? 0 : file.Size ?? 0;
        }

        EnsureFreeSpace(cache.RepoDirectory, totalBytes, metadata.Length > 0 ? metadata.MaxBy(m => m.Size ?? 0)! : null);
        var tracker = new HubProgressTracker(progress, layout.Files.Count, layout.Files.Count - missing.Count, totalBytes);
        await Parallel.ForEachAsync(metadata, parallel, async (file, ct) =>
        {
            var blob = await EnsureBlobAsync(cache, http, file, options, tracker, ct).ConfigureAwait(false);
            if (file.Path != modelIndex)
            {
                HubRepoCache.LinkPointer(blob, cache.PointerPath(commit, file.Path));
                tracker.FileCompleted(file.Path);
            }
        }).ConfigureAwait(false);

        if (metadata.FirstOrDefault(m => m.Path == modelIndex) is { } index)
        {
            HubRepoCache.LinkPointer(cache.BlobPath(index.Etag), cache.PointerPath(commit, modelIndex));
            tracker.FileCompleted(modelIndex);
        }

        return LayoutFolder(cache, commit, layout);
    }

    /// <summary>
    /// The cached folder of <paramref name="repoId"/> for the options' revision and variant, without contacting the
    /// Hub; null when it is not in the cache.
    /// </summary>
    public static string? FindCached(string repoId, HubDownloadOptions? options = null)
    {
        HubRepoId.Validate(repoId);
        options ??= new HubDownloadOptions();
        options.Validate();
        return FindCached(new HubRepoCache(HubSettings.From(options with { Offline = true }).CacheDirectory, repoId), options);
    }

    /// <summary>
    /// Whether <paramref name="value"/> has the form of a Hub repository id, <c>owner/name</c> (the Hub's characters,
    /// no <c>--</c> or <c>..</c>): what <see cref="SdxlPipelineBuilder.WithModel(string)"/> looks up in the cache when
    /// no folder of that name exists.
    /// </summary>
    public static bool IsRepositoryId(string value) => value is not null && HubRepoId.IsValid(value);

    /// <summary>The hub cache folder: <paramref name="cacheDirectory"/>, else <c>HF_HUB_CACHE</c>, <c>$HF_HOME/hub</c> or <c>~/.cache/huggingface/hub</c>.</summary>
    public static string ResolveCacheDirectory(string? cacheDirectory = null) => HubSettings.CacheDirectoryFrom(cacheDirectory);

    /// <summary>The model repositories in the cache (also those Python put there), with their size and snapshots.</summary>
    public static IReadOnlyList<HubCachedModel> ListCache(string? cacheDirectory = null)
    {
        var root = ResolveCacheDirectory(cacheDirectory);
        if (!Directory.Exists(root))
        {
            return [];
        }

        var models = new List<HubCachedModel>();
        foreach (var folder in new DirectoryInfo(root).EnumerateDirectories("models--*").OrderBy(d => d.Name, StringComparer.OrdinalIgnoreCase))
        {
            if (HubRepoId.FromFolderName(folder.Name) is not { } repoId)
            {
                continue;
            }

            var cache = new HubRepoCache(root, repoId);
            var refs = cache.RefsByCommit();
            var snapshots = new List<HubCachedSnapshot>();
            var snapshotsDir = new DirectoryInfo(Path.Combine(folder.FullName, "snapshots"));
            if (snapshotsDir.Exists)
            {
                foreach (var snapshot in snapshotsDir.EnumerateDirectories().OrderByDescending(d => d.LastWriteTimeUtc))
                {
                    var layouts = OnnxLayouts.Detect(cache.SnapshotFiles(snapshot.Name)).Select(l => l.Root).ToList();
                    snapshots.Add(new HubCachedSnapshot(snapshot.Name, refs.TryGetValue(snapshot.Name, out var names) ? names : [], snapshot.FullName, layouts));
                }
            }

            models.Add(new HubCachedModel(repoId, folder.FullName, SizeOnDisk(folder), snapshots));
        }

        return models;
    }

    /// <summary>
    /// What <see cref="SdxlPipelineBuilder"/> does with its model argument: an existing folder stays as it is; an
    /// <c>org/name</c> id is looked up in the cache and, when <paramref name="allowDownload"/>, downloaded if missing.
    /// Anything else is returned unchanged, so the pipeline reports the missing folder as before.
    /// </summary>
    internal static string ResolveModelArgument(string directoryOrRepoId, HubDownloadOptions? options, bool allowDownload)
    {
        if (Directory.Exists(directoryOrRepoId) || !HubRepoId.IsValid(directoryOrRepoId))
        {
            return directoryOrRepoId;
        }

        options ??= new HubDownloadOptions();
        options.Validate();
        var settings = HubSettings.From(options);
        var cache = new HubRepoCache(settings.CacheDirectory, directoryOrRepoId);
        if (FindCached(cache, options) is { } cached)
        {
            return cached;
        }

        if (allowDownload && !settings.Offline)
        {
            return DownloadAsync(directoryOrRepoId, options).GetAwaiter().GetResult();
        }

        throw NotCached(cache, options, settings.Offline
            ? "offline mode (HF_HUB_OFFLINE) is on"
            : "it is neither a folder nor in the cache, and downloading was not allowed (WithModel(repoId, options, allowDownload: true) or SdxlModelHub.DownloadAsync)");
    }

    private static string? FindCached(HubRepoCache cache, HubDownloadOptions options)
    {
        if (cache.ResolveCommit(options.Revision) is not { } commit)
        {
            return null;
        }

        var layout = OnnxLayouts.Choose(OnnxLayouts.Detect(cache.SnapshotFiles(commit)), options.Variant);
        return layout is null ? null : LayoutFolder(cache, commit, layout);
    }

    private static async Task<string> EnsureBlobAsync(HubRepoCache cache, HubHttp http, HubFileMetadata file, HubDownloadOptions options, HubProgressTracker tracker, CancellationToken ct)
    {
        var blob = cache.BlobPath(file.Etag);
        if (IsComplete(blob, file))
        {
            return blob;
        }

        using var held = await HubFileLock.AcquireAsync(cache.LockPath(file.Etag), options.LockTimeout, $"'{file.Path}' of {cache.RepoId}", ct).ConfigureAwait(false);
        if (IsComplete(blob, file))
        {
            // Another process or task finished it while this one waited.
            return blob;
        }

        Directory.CreateDirectory(Path.GetDirectoryName(blob)!);
        var incomplete = blob + ".incomplete";
        for (int attempt = 1; ; attempt++)
        {
            await http.DownloadAsync(file, incomplete, n => tracker.AddBytes(file.Path, n), ct).ConfigureAwait(false);
            if (!IsSha256(file.Etag))
            {
                break;
            }

            // Large (LFS) files are named by their SHA-256: check it before the blob becomes visible.
            var actual = await Sha256Async(incomplete, ct).ConfigureAwait(false);
            if (actual == file.Etag)
            {
                break;
            }

            long length = new FileInfo(incomplete).Length;
            File.Delete(incomplete);
            tracker.AddBytes(file.Path, -length);
            file = file with { Content = null };
            if (attempt == 2)
            {
                throw new SdxlHubException(HubErrorKind.CorruptDownload,
                    $"'{file.Path}' of {cache.RepoId} arrived corrupt twice: its SHA-256 is {actual}, the Hub publishes {file.Etag}. " +
                    "Nothing was put in the cache; try again later or from another network or mirror (HF_ENDPOINT).");
            }
        }

        File.Move(incomplete, blob, overwrite: true);
        return blob;
    }

    private static bool IsComplete(string blob, HubFileMetadata file) =>
        File.Exists(blob) && (file.Size is not { } size || new FileInfo(blob).Length == size);

    private static bool IsSha256(string etag) => etag.Length == 64 && etag.All(char.IsAsciiHexDigitLower);

    private static async Task<string> Sha256Async(string path, CancellationToken ct)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, useAsync: true);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, ct).ConfigureAwait(false));
    }

    private static void EnsureFreeSpace(string folder, long bytes, HubFileMetadata? largest)
    {
        if (bytes <= 0 || largest is null)
        {
            return;
        }

        Directory.CreateDirectory(folder);
        long free;
        try
        {
            free = new DriveInfo(Path.GetFullPath(folder)).AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException)
        {
            return;
        }

        if (free < bytes)
        {
            throw new SdxlHubException(HubErrorKind.DiskFull,
                $"Not enough disk space: the download needs {bytes:N0} bytes, the disk holding '{folder}' has {free:N0} free. " +
                "Free some space or point HF_HUB_CACHE (or HF_HOME) at a larger disk.");
        }
    }

    private static long SizeOnDisk(DirectoryInfo repo)
    {
        long size = 0;
        foreach (var folder in new[] { "blobs", "snapshots" })
        {
            var path = new DirectoryInfo(Path.Combine(repo.FullName, folder));
            if (!path.Exists)
            {
                continue;
            }

            foreach (var file in path.EnumerateFiles("*", SearchOption.AllDirectories))
            {
                // Links count nothing: their blobs are counted once in blobs/.
                if (file.LinkTarget is null && !file.Name.EndsWith(".incomplete", StringComparison.Ordinal))
                {
                    size += file.Length;
                }
            }
        }

        return size;
    }

    private static string LayoutFolder(HubRepoCache cache, string commit, OnnxLayout layout) =>
        layout.Root.Length == 0 ? cache.SnapshotDirectory(commit) : Path.Combine(cache.SnapshotDirectory(commit), Path.Combine(layout.Root.Split('/')));

    /// <summary>A repository path that stays inside the snapshot folder once joined to it.</summary>
    private static bool IsSafeRepoPath(string path) =>
        path.Length > 0 && !path.StartsWith('/') && !path.Contains('\\') && !path.Contains(':')
        && path.Split('/').All(part => part.Length > 0 && part != "." && part != "..");

    private static SdxlHubException NotCached(HubRepoCache cache, HubDownloadOptions options, string why) =>
        new(HubErrorKind.NotCached,
            $"{cache.RepoId}{(options.Revision == "main" ? string.Empty : "@" + options.Revision)}{(options.Variant is null ? string.Empty : $" (variant {options.Variant})")} " +
            $"is not in the Hugging Face cache '{cache.CacheDirectory}', and {why}. Download it first: sdxl download {cache.RepoId}" +
            $"{(options.Revision == "main" ? string.Empty : " --revision " + options.Revision)}{(options.Variant is null ? string.Empty : " --variant " + options.Variant)}.");

    private static SdxlHubException NoOnnx(string repoId, HubDownloadOptions options, IReadOnlyList<OnnxLayout> layouts, IReadOnlyList<string> files)
    {
        if (layouts.Count > 0)
        {
            return new SdxlHubException(HubErrorKind.NoOnnxFiles,
                $"{repoId} has no ONNX pipeline for variant '{options.Variant}'; its ONNX layouts are: {OnnxLayouts.Describe(layouts)}.");
        }

        var onnx = files.Where(f => f.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase)).Take(3).ToList();
        return new SdxlHubException(HubErrorKind.NoOnnxFiles,
            $"{repoId} has no ONNX files in the pipeline layout (model_index.json beside unet/model.onnx)" +
            (onnx.Count > 0 ? $"; its .onnx files ({string.Join(", ", onnx)}) are not laid out as an optimum export" : string.Empty) +
            $". Export it with optimum: optimum-cli export onnx --model {repoId} --task stable-diffusion-xl OUT_DIR, then use OUT_DIR as the model folder.");
    }
}
