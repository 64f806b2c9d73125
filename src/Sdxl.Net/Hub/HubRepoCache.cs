namespace Sdxl.Net.Hub;

/// <summary>
/// One repository's folder in the huggingface_hub cache layout (file_download.py):
/// <c>models--org--name/blobs/&lt;etag&gt;</c> holds each file once, <c>snapshots/&lt;commit&gt;/&lt;path&gt;</c> links
/// to the blob (relative symbolic links; copies where links cannot be made), <c>refs/&lt;revision&gt;</c> holds the
/// commit a branch or tag pointed at, and <c>.locks/models--org--name/&lt;etag&gt;.lock</c> guards each blob's download.
/// </summary>
internal sealed class HubRepoCache(string cacheDirectory, string repoId)
{
    public string CacheDirectory { get; } = cacheDirectory;

    public string RepoId { get; } = repoId;

    public string RepoDirectory => Path.Combine(CacheDirectory, HubRepoId.FolderName(RepoId));

    public string BlobPath(string etag) => Path.Combine(RepoDirectory, "blobs", etag);

    public string SnapshotDirectory(string commit) => Path.Combine(RepoDirectory, "snapshots", commit);

    public string PointerPath(string commit, string repoPath) =>
        Path.Combine(SnapshotDirectory(commit), Path.Combine(repoPath.Split('/')));

    public string LockPath(string etag) => Path.Combine(CacheDirectory, ".locks", HubRepoId.FolderName(RepoId), etag + ".lock");

    /// <summary>The commit a branch or tag was last resolved to, or null.</summary>
    public string? ReadRef(string revision)
    {
        var path = RefPath(revision);
        try
        {
            return File.Exists(path) ? File.ReadAllText(path).Trim() : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Records that <paramref name="revision"/> is <paramref name="commit"/>, atomically (readers never see half a hash).</summary>
    public void WriteRef(string revision, string commit)
    {
        if (revision == commit || ReadRef(revision) == commit)
        {
            return;
        }

        var path = RefPath(revision);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = path + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp";
        File.WriteAllText(temp, commit);
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>
    /// The commit to read <paramref name="revision"/> from, from the cache alone: a full hash with a snapshot, the
    /// ref's commit, or, for <c>main</c> when no ref was recorded, the newest snapshot that holds an ONNX pipeline.
    /// </summary>
    public string? ResolveCommit(string revision)
    {
        if (HubRepoId.CommitHash().IsMatch(revision))
        {
            return Directory.Exists(SnapshotDirectory(revision)) ? revision : null;
        }

        if (ReadRef(revision) is { } commit && Directory.Exists(SnapshotDirectory(commit)))
        {
            return commit;
        }

        if (revision != "main" || !Directory.Exists(Path.Combine(RepoDirectory, "snapshots")))
        {
            return null;
        }

        return new DirectoryInfo(Path.Combine(RepoDirectory, "snapshots")).EnumerateDirectories()
            .OrderByDescending(d => d.LastWriteTimeUtc)
            .Select(d => d.Name)
            .FirstOrDefault(c => OnnxLayouts.Detect(SnapshotFiles(c)).Count > 0);
    }

    /// <summary>Paths (with '/') of the files in a snapshot whose link or copy can be opened; broken links are left out.</summary>
    public IReadOnlyList<string> SnapshotFiles(string commit)
    {
        var root = SnapshotDirectory(commit);
        if (!Directory.Exists(root))
        {
            return [];
        }

        var files = new List<string>();
        foreach (var path in Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories))
        {
            if (IsUsable(path))
            {
                files.Add(Path.GetRelativePath(root, path).Replace('\\', '/'));
            }
        }

        return files;
    }

    /// <summary>
    /// Whether a snapshot file can be read: a copy, or a link whose blob is there. (File.Exists is true for a dangling
    /// link on Unix, and a user may have deleted blobs to free space.)
    /// </summary>
    public static bool IsUsable(string pointerPath)
    {
        var info = new FileInfo(pointerPath);
        return info.LinkTarget is null ? info.Exists : info.ResolveLinkTarget(returnFinalTarget: true) is { Exists: true };
    }

    /// <summary>The branches and tags recorded for each commit.</summary>
    public Dictionary<string, List<string>> RefsByCommit()
    {
        var result = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var refs = Path.Combine(RepoDirectory, "refs");
        if (!Directory.Exists(refs))
        {
            return result;
        }

        foreach (var path in Directory.EnumerateFiles(refs, "*", SearchOption.AllDirectories))
        {
            if (path.EndsWith(".tmp", StringComparison.Ordinal))
            {
                continue;
            }

            var name = Path.GetRelativePath(refs, path).Replace('\\', '/');
            if (ReadRef(name) is { } commit)
            {
                if (!result.TryGetValue(commit, out var list))
                {
                    result[commit] = list = [];
                }

                list.Add(name);
            }
        }

        return result;
    }

    /// <summary>
    /// Makes <paramref name="pointerPath"/> a relative symbolic link to <paramref name="blobPath"/>, as huggingface_hub
    /// does (relative, so the cache can be moved); where links cannot be made (Windows without developer mode), a copy.
    /// Safe when two downloads link the same file at once.
    /// </summary>
    public static void LinkPointer(string blobPath, string pointerPath)
    {
        var folder = Path.GetDirectoryName(pointerPath)!;
        Directory.CreateDirectory(folder);
        var info = new FileInfo(pointerPath);
        if (info.Exists || info.LinkTarget is not null)
        {
            if (info.LinkTarget is null || info.ResolveLinkTarget(returnFinalTarget: true) is { Exists: true } target && SamePath(target.FullName, blobPath))
            {
                return;
            }

            File.Delete(pointerPath);
        }

        try
        {
            File.CreateSymbolicLink(pointerPath, Path.GetRelativePath(folder, blobPath));
            return;
        }
        catch (IOException) when (File.Exists(pointerPath))
        {
            // Another download linked it between the check and here.
            return;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            // No symbolic links here: fall back to a copy, written aside and renamed so it is never seen half-written.
        }

        var temp = pointerPath + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp";
        File.Copy(blobPath, temp);
        File.Move(temp, pointerPath, overwrite: true);
    }

    private string RefPath(string revision) => Path.Combine(RepoDirectory, "refs", Path.Combine(revision.Split('/')));

    private static bool SamePath(string a, string b) =>
        string.Equals(Path.GetFullPath(a), Path.GetFullPath(b), OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal);
}
