using Sdxl.Net.Hub;
using Sdxl.Net.Tests.Synthetic;

namespace Sdxl.Net.Tests.Hub;

/// <summary>
/// A cache written by hand in huggingface_hub's layout (as Python leaves it) is used as it is, without a request:
/// blobs named by hash, relative links in snapshots/, refs/main; and the copy form Windows leaves without links.
/// </summary>
[Collection(HubCollection.Name)]
public sealed class HubCacheTests : IAsyncLifetime
{
    private readonly TempDirectory _cache = new();
    private FakeHub _hub = null!;

    public async Task InitializeAsync() => _hub = await FakeHub.StartAsync();

    public async Task DisposeAsync()
    {
        await _hub.DisposeAsync();
        _cache.Dispose();
    }

    private HubDownloadOptions Options => new() { CacheDirectory = _cache.Path, Endpoint = _hub.Endpoint, Offline = false, Token = null };

    /// <summary>Writes <paramref name="model"/> as huggingface_hub would, without any Sdxl.Net code; returns the snapshot folder.</summary>
    internal static string WritePythonCache(string cache, string repoId, string model, string commit, bool links)
    {
        var repo = Path.Combine(cache, "models--" + repoId.Replace("/", "--"));
        var snapshot = Path.Combine(repo, "snapshots", commit);
        foreach (var file in HubTestSupport.RelativeFiles(model))
        {
            var bytes = File.ReadAllBytes(Path.Combine(model, file));
            var pointer = Path.Combine(snapshot, file);
            Directory.CreateDirectory(Path.GetDirectoryName(pointer)!);
            if (links)
            {
                var blob = Path.Combine(repo, "blobs", FakeHub.BlobName(bytes));
                Directory.CreateDirectory(Path.GetDirectoryName(blob)!);
                File.WriteAllBytes(blob, bytes);
                File.CreateSymbolicLink(pointer, string.Concat(Enumerable.Repeat("../", file.Count(c => c == '/') + 2)) + "blobs/" + FakeHub.BlobName(bytes));
            }
            else
            {
                File.WriteAllBytes(pointer, bytes);
            }
        }

        Directory.CreateDirectory(Path.Combine(repo, "refs"));
        File.WriteAllText(Path.Combine(repo, "refs", "main"), commit);
        return snapshot;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_python_written_cache_is_used_without_any_request(bool links)
    {
        const string commit = "0123456789abcdef0123456789abcdef01234567";
        var snapshot = WritePythonCache(_cache.Path, "python/sdxl-onnx", SyntheticModels.Get(), commit, links);

        Assert.Equal(snapshot, SdxlModelHub.FindCached("python/sdxl-onnx", Options));
        Assert.Equal(snapshot, SdxlModelHub.FindCached("python/sdxl-onnx", Options with { Revision = commit }));
        Assert.Equal(snapshot, await SdxlModelHub.DownloadAsync("python/sdxl-onnx", Options with { Revision = commit }));
        using (SdxlPipeline.CreateBuilder().WithModel("python/sdxl-onnx", Options, allowDownload: true).Build())
        {
        }

        Assert.Empty(_hub.Requests);

        var listed = Assert.Single(SdxlModelHub.ListCache(_cache.Path));
        Assert.Equal("python/sdxl-onnx", listed.RepoId);
        var listedSnapshot = Assert.Single(listed.Snapshots);
        Assert.Equal(commit, listedSnapshot.Commit);
        Assert.Equal(["main"], listedSnapshot.Refs);
        Assert.Equal([""], listedSnapshot.OnnxLayouts);

        // Size on disk: each distinct file once (blobs are shared by identical files; copies are not).
        var files = HubTestSupport.RelativeFiles(SyntheticModels.Get()).Select(f => File.ReadAllBytes(Path.Combine(SyntheticModels.Get(), f))).ToList();
        long expected = links ? files.DistinctBy(FakeHub.BlobName).Sum(b => (long)b.Length) : files.Sum(b => (long)b.Length);
        Assert.Equal(expected, listed.SizeBytes);
    }

    [Fact]
    public void The_memory_guard_counts_the_blobs_behind_snapshot_links()
    {
        var model = SyntheticModels.Get(new Sdxl.Net.Synthetic.SyntheticModelOptions { UnetExternalData = true });
        var snapshot = WritePythonCache(_cache.Path, "python/linked", model, "89abcdef0123456789abcdef0123456789abcdef", links: true);

        // The links' own sizes are a few dozen bytes; the guard must see the weights.
        Assert.Equal(Sdxl.Net.Models.MemoryGuard.ComponentBytes(Path.Combine(model, "unet")), Sdxl.Net.Models.MemoryGuard.ComponentBytes(Path.Combine(snapshot, "unet")));
        Assert.True(Sdxl.Net.Models.MemoryGuard.ComponentBytes(Path.Combine(snapshot, "unet")) > new FileInfo(Path.Combine(model, "unet", "model.onnx_data")).Length);
    }

    [Fact]
    public async Task A_lock_held_elsewhere_times_out_with_the_lock_file_named()
    {
        var model = SyntheticModels.Get();
        _hub.AddRepo("sdxl-test/locked", model);
        var unet = File.ReadAllBytes(Path.Combine(model, "unet", "model.onnx"));
        var lockPath = Path.Combine(_cache.Path, ".locks", "models--sdxl-test--locked", FakeHub.Sha256(unet) + ".lock");
        Directory.CreateDirectory(Path.GetDirectoryName(lockPath)!);

        // Another downloader holds the blob's lock (FileShare.None, as the library takes it).
        using (new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
        {
            var e = await Assert.ThrowsAsync<SdxlHubException>(() => SdxlModelHub.DownloadAsync("sdxl-test/locked", Options with { LockTimeout = TimeSpan.FromMilliseconds(300) }));
            Assert.Equal(HubErrorKind.LockTimeout, e.Kind);
            Assert.Contains(lockPath, e.Message);
            Assert.Contains("unet/model.onnx", e.Message);
        }

        // Released: the same call completes.
        Assert.NotNull(await SdxlModelHub.DownloadAsync("sdxl-test/locked", Options));
    }
}
