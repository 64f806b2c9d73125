using System.Text;
using Sdxl.Net.Hub;
using Sdxl.Net.Synthetic;
using Sdxl.Net.Tests.Synthetic;

namespace Sdxl.Net.Tests.Hub;

/// <summary>Hub tests read and set HF_* environment variables, so they run alone, one after another.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class HubCollection
{
    public const string Name = "Hugging Face Hub";
}

/// <summary>
/// <see cref="SdxlModelHub"/> against <see cref="FakeHub"/> on loopback: what lands in the cache, in which layout,
/// and what happens on cut connections, corrupt bodies, gated repositories, full disks and concurrent downloads.
/// The expected cache contents are derived from the published files (their bytes, sha256 and git blob ids), not from
/// the code under test.
/// </summary>
[Collection(HubCollection.Name)]
public sealed class HubDownloadTests : IAsyncLifetime
{
    private const string RepoId = "sdxl-test/tiny-onnx";

    /// <summary>Files an ONNX pipeline never reads: each must never be requested.</summary>
    private static readonly Dictionary<string, byte[]> Decoys = new()
    {
        ["unet/diffusion_pytorch_model.safetensors"] = Filler(5000, 1),
        ["unet/diffusion_pytorch_model.fp16.safetensors"] = Filler(3000, 2),
        ["unet/openvino_model.bin"] = Filler(2000, 3),
        ["unet/openvino_model.xml"] = Encoding.UTF8.GetBytes("<net/>"),
        ["text_encoder/model.fp16.onnx"] = Filler(1500, 4),
        ["vae/diffusion_pytorch_model.safetensors"] = Filler(1200, 5),
        ["sd_xl_base_1.0.safetensors"] = Filler(4000, 6),
        ["README.md"] = Encoding.UTF8.GetBytes("# tiny"),
        [".gitattributes"] = Encoding.UTF8.GetBytes("*.onnx filter=lfs"),
    };

    private readonly TempDirectory _cache = new();
    private FakeHub _hub = null!;
    private string _model = null!;
    private string _commit = null!;

    public async Task InitializeAsync()
    {
        HubTestSupport.FastRetries();
        _model = SyntheticModels.Get(new SyntheticModelOptions { UnetExternalData = true });
        _hub = await FakeHub.StartAsync();
        _commit = _hub.AddRepo(RepoId, _model, Decoys);
    }

    public async Task DisposeAsync()
    {
        await _hub.DisposeAsync();
        _cache.Dispose();
    }

    private HubDownloadOptions Options => new() { CacheDirectory = _cache.Path, Endpoint = _hub.Endpoint, Offline = false, Token = null };

    private string RepoFolder => Path.Combine(_cache.Path, "models--sdxl-test--tiny-onnx");

    [Fact]
    public async Task Download_puts_exactly_the_pipeline_files_in_the_huggingface_hub_layout()
    {
        var folder = await SdxlModelHub.DownloadAsync(RepoId, Options);

        Assert.Equal(Path.Combine(RepoFolder, "snapshots", _commit), folder);
        Assert.Equal(_commit, File.ReadAllText(Path.Combine(RepoFolder, "refs", "main")));

        // Every file of the exported folder is needed (it is exactly what optimum writes), and nothing else arrived.
        var expected = HubTestSupport.RelativeFiles(_model);
        Assert.Contains("unet/model.onnx_data", expected);
        Assert.Equal(expected, HubTestSupport.RelativeFiles(folder));
        foreach (var file in expected)
        {
            var published = File.ReadAllBytes(Path.Combine(_model, file));
            var pointer = Path.Combine(folder, file);
            Assert.Equal(published, File.ReadAllBytes(pointer));

            // A relative link to blobs/<etag>: sha256 for LFS files, the git blob id for the others.
            var link = new FileInfo(pointer).LinkTarget;
            var depth = file.Count(c => c == '/');
            var blobsPrefix = string.Concat(Enumerable.Repeat("../", depth + 2));
            Assert.Equal(blobsPrefix + "blobs/" + FakeHub.BlobName(published), link?.Replace('\\', '/'));
        }

        Assert.Empty(Directory.EnumerateFiles(Path.Combine(RepoFolder, "blobs"), "*.incomplete"));
        Assert.True(File.Exists(Path.Combine(_cache.Path, ".locks", "models--sdxl-test--tiny-onnx", FakeHub.Sha256(File.ReadAllBytes(Path.Combine(_model, "unet", "model.onnx_data"))) + ".lock")));
        foreach (var decoy in Decoys.Keys)
        {
            Assert.Equal(0, _hub.CountRequests(r => r.Contains(decoy, StringComparison.Ordinal) || r.Contains(FakeHub.Sha256(Decoys[decoy]), StringComparison.Ordinal)));
        }

        // The folder is a working model folder.
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(folder).Build();
    }

    [Fact]
    public async Task A_second_download_asks_only_for_the_file_list()
    {
        await SdxlModelHub.DownloadAsync(RepoId, Options);
        int before = _hub.Requests.Count;

        var folder = await SdxlModelHub.DownloadAsync(RepoId, Options);

        Assert.Equal(["GET /api/models/sdxl-test/tiny-onnx/revision/main"], _hub.Requests.Skip(before).ToArray());
        Assert.Equal(HubTestSupport.RelativeFiles(_model), HubTestSupport.RelativeFiles(folder));
    }

    [Fact]
    public async Task A_deleted_blob_is_downloaded_again_and_its_link_repaired()
    {
        var folder = await SdxlModelHub.DownloadAsync(RepoId, Options);
        var data = File.ReadAllBytes(Path.Combine(_model, "unet", "model.onnx_data"));
        var sha = FakeHub.Sha256(data);
        File.Delete(Path.Combine(RepoFolder, "blobs", sha));

        Assert.Equal(folder, await SdxlModelHub.DownloadAsync(RepoId, Options));

        Assert.Equal(data, File.ReadAllBytes(Path.Combine(folder, "unet", "model.onnx_data")));
        Assert.Equal(2, _hub.CountRequests(r => r.StartsWith($"GET /cdn/{sha}", StringComparison.Ordinal)));

        // Only that blob was fetched again.
        Assert.Equal(HubTestSupport.RelativeFiles(_model).Length + 1, _hub.CountRequests(r => r.Contains("/resolve/", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_cut_connection_resumes_with_a_range_request()
    {
        var data = File.ReadAllBytes(Path.Combine(_model, "unet", "model.onnx_data"));
        var sha = FakeHub.Sha256(data);
        long cut = data.Length / 2;
        _hub.CutAfter[sha] = cut;

        var folder = await SdxlModelHub.DownloadAsync(RepoId, Options with { MaxParallelDownloads = 1 });

        Assert.Equal(data, File.ReadAllBytes(Path.Combine(folder, "unet", "model.onnx_data")));
        var cdn = _hub.Requests.Where(r => r.StartsWith($"GET /cdn/{sha}", StringComparison.Ordinal)).ToArray();
        Assert.Equal(2, cdn.Length);
        Assert.DoesNotContain("bytes=", cdn[0]);

        // The retry asks only for the missing bytes: from where the server cut (all of it had been flushed).
        Assert.EndsWith($"bytes={cut}-", cdn[1]);
    }

    [Fact]
    public async Task An_absolute_redirect_to_another_address_works_the_same()
    {
        _hub.AbsoluteRedirects = true;
        var folder = await SdxlModelHub.DownloadAsync(RepoId, Options);
        Assert.Equal(HubTestSupport.RelativeFiles(_model), HubTestSupport.RelativeFiles(folder));
    }

    [Fact]
    public async Task A_blob_with_the_wrong_hash_never_reaches_the_cache()
    {
        var onnx = File.ReadAllBytes(Path.Combine(_model, "unet", "model.onnx"));
        var sha = FakeHub.Sha256(onnx);
        _hub.Corrupt[sha] = true;

        var e = await Assert.ThrowsAsync<SdxlHubException>(() => SdxlModelHub.DownloadAsync(RepoId, Options));

        Assert.Equal(HubErrorKind.CorruptDownload, e.Kind);
        Assert.Contains("unet/model.onnx", e.Message);
        Assert.Contains(sha, e.Message);
        Assert.False(File.Exists(Path.Combine(RepoFolder, "blobs", sha)));
        Assert.False(File.Exists(Path.Combine(RepoFolder, "blobs", sha + ".incomplete")));
        var snapshot = Path.Combine(RepoFolder, "snapshots", _commit);
        Assert.False(File.Exists(Path.Combine(snapshot, "unet", "model.onnx")));

        // model_index.json is linked last, so the half snapshot is not taken for a model.
        Assert.False(File.Exists(Path.Combine(snapshot, "model_index.json")));
        Assert.Null(SdxlModelHub.FindCached(RepoId, Options));

        // Once the Hub serves the right bytes, the download completes.
        _hub.Corrupt.Clear();
        var folder = await SdxlModelHub.DownloadAsync(RepoId, Options);
        Assert.Equal(onnx, File.ReadAllBytes(Path.Combine(folder, "unet", "model.onnx")));
    }

    [Fact]
    public async Task A_gated_repository_says_to_accept_the_licence_and_set_HF_TOKEN()
    {
        _hub.AddRepo("gated-org/sdxl", _model, token: "hf_secret");

        var e = await Assert.ThrowsAsync<SdxlHubException>(() => SdxlModelHub.DownloadAsync("gated-org/sdxl", Options));

        Assert.Equal(HubErrorKind.AccessDenied, e.Kind);
        Assert.Contains("HTTP 401", e.Message);
        Assert.Contains("Accept the licence on the model page", e.Message);
        Assert.Contains(_hub.Endpoint + "/gated-org/sdxl", e.Message);
        Assert.Contains("HF_TOKEN", e.Message);

        var folder = await SdxlModelHub.DownloadAsync("gated-org/sdxl", Options with { Token = "hf_secret" });
        Assert.Equal(HubTestSupport.RelativeFiles(_model), HubTestSupport.RelativeFiles(folder));
    }

    [Fact]
    public async Task Unknown_repositories_and_revisions_are_named()
    {
        var repo = await Assert.ThrowsAsync<SdxlHubException>(() => SdxlModelHub.DownloadAsync("nobody/nothing", Options));
        Assert.Equal(HubErrorKind.RepositoryNotFound, repo.Kind);
        Assert.Contains("nobody/nothing", repo.Message);

        var revision = await Assert.ThrowsAsync<SdxlHubException>(() => SdxlModelHub.DownloadAsync(RepoId, Options with { Revision = "v9" }));
        Assert.Equal(HubErrorKind.RevisionNotFound, revision.Kind);
        Assert.Contains("'v9'", revision.Message);
    }

    [Theory]
    [InlineData("../../outside")]
    [InlineData("/etc/passwd")]
    [InlineData("refs\\..\\x")]
    [InlineData("main/")]
    [InlineData(".hidden")]
    [InlineData("v1 beta")]
    public async Task A_revision_that_is_not_a_ref_name_is_refused_before_any_request(string revision)
    {
        // The revision names refs/<revision> in the cache: a path out of it must never be written or asked for.
        var e = await Assert.ThrowsAsync<ArgumentException>(() => SdxlModelHub.DownloadAsync(RepoId, Options with { Revision = revision }));
        Assert.Contains($"Revision '{revision}' is not a branch, tag or commit name", e.Message);
        Assert.Equal(0, _hub.CountRequests(r => r.Contains(revision, StringComparison.Ordinal)));
        Assert.False(Directory.Exists(Path.Combine(_cache.Path, "outside")));
    }

    [Theory]
    [InlineData("main")]
    [InlineData("refs/pr/1")]
    [InlineData("v1.0")]
    [InlineData("0123456789abcdef0123456789abcdef01234567")]
    public void Branch_tag_pull_request_and_commit_names_are_valid_revisions(string revision) =>
        (Options with { Revision = revision }).Validate();

    [Fact]
    public async Task A_repository_without_onnx_files_says_how_to_export_one()
    {
        _hub.AddRepo("someone/pytorch-only", null, new Dictionary<string, byte[]>
        {
            ["model_index.json"] = Encoding.UTF8.GetBytes("{}"),
            ["unet/config.json"] = Encoding.UTF8.GetBytes("{}"),
            ["unet/diffusion_pytorch_model.safetensors"] = Filler(2000, 7),
        });

        var e = await Assert.ThrowsAsync<SdxlHubException>(() => SdxlModelHub.DownloadAsync("someone/pytorch-only", Options));

        Assert.Equal(HubErrorKind.NoOnnxFiles, e.Kind);
        Assert.Contains("optimum-cli export onnx --model someone/pytorch-only --task stable-diffusion-xl", e.Message);
        Assert.Equal(0, _hub.CountRequests(r => r.Contains("/resolve/", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_download_larger_than_the_free_space_stops_before_writing()
    {
        var data = File.ReadAllBytes(Path.Combine(_model, "unet", "model.onnx_data"));
        _hub.HugeSize[FakeHub.Sha256(data)] = true;

        var e = await Assert.ThrowsAsync<SdxlHubException>(() => SdxlModelHub.DownloadAsync(RepoId, Options));

        Assert.Equal(HubErrorKind.DiskFull, e.Kind);
        Assert.Contains("HF_HUB_CACHE", e.Message);
        Assert.Equal(0, _hub.CountRequests(r => r.Contains("/cdn/", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Two_concurrent_downloads_of_one_repository_fetch_each_blob_once()
    {
        var first = SdxlModelHub.DownloadAsync(RepoId, Options);
        var second = SdxlModelHub.DownloadAsync(RepoId, Options);
        var folders = await Task.WhenAll(first, second);

        Assert.Equal(folders[0], folders[1]);
        foreach (var file in HubTestSupport.RelativeFiles(_model))
        {
            Assert.Equal(File.ReadAllBytes(Path.Combine(_model, file)), File.ReadAllBytes(Path.Combine(folders[0], file)));
        }

        // The per-blob lock lets the second download find the first one's blob instead of fetching it again.
        var cdn = _hub.Requests.Where(r => r.StartsWith("GET /cdn/", StringComparison.Ordinal)).Select(r => r.Split('?')[0]).ToList();
        Assert.Equal(cdn.Distinct().Count(), cdn.Count);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(RepoFolder, "blobs"), "*.incomplete"));
    }

    [Fact]
    public async Task Progress_counts_every_byte_once_and_ends_complete()
    {
        var reports = new List<HubDownloadProgress>();
        var progress = new SynchronousProgress<HubDownloadProgress>(reports.Add);

        await SdxlModelHub.DownloadAsync(RepoId, Options, progress);

        // Total = the published sizes of the distinct blobs (two identical files are stored once).
        long total = HubTestSupport.RelativeFiles(_model).Select(f => File.ReadAllBytes(Path.Combine(_model, f)))
            .DistinctBy(FakeHub.BlobName).Sum(b => (long)b.Length);
        var last = reports[^1];
        Assert.Equal(total, last.TotalBytes);
        Assert.Equal(total, last.BytesDownloaded);
        Assert.Equal(last.FileCount, last.FilesCompleted);
        Assert.Equal("model_index.json", last.File);
        Assert.True(last.BytesPerSecond > 0);
        Assert.All(reports.Zip(reports.Skip(1)), pair => Assert.True(pair.Second.FilesCompleted >= pair.First.FilesCompleted));
    }

    [Fact]
    public async Task Cancellation_stops_the_download_without_a_visible_blob()
    {
        using var cts = new CancellationTokenSource();
        var progress = new SynchronousProgress<HubDownloadProgress>(p =>
        {
            if (p.BytesDownloaded > 0)
            {
                cts.Cancel();
            }
        });

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => SdxlModelHub.DownloadAsync(RepoId, Options with { MaxParallelDownloads = 1 }, progress, cts.Token));

        Assert.Null(SdxlModelHub.FindCached(RepoId, Options));
        Assert.False(File.Exists(Path.Combine(RepoFolder, "snapshots", _commit, "model_index.json")));
    }

    [Fact]
    public async Task A_variant_folder_is_chosen_and_only_its_files_are_fetched()
    {
        var extra = new Dictionary<string, byte[]>();
        foreach (var file in HubTestSupport.RelativeFiles(_model))
        {
            extra["onnx/" + file] = File.ReadAllBytes(Path.Combine(_model, file));
        }

        var fp16 = SyntheticModels.Get(new SyntheticModelOptions { Float16 = true });
        foreach (var file in HubTestSupport.RelativeFiles(fp16))
        {
            extra["onnx/fp16/" + file] = File.ReadAllBytes(Path.Combine(fp16, file));
        }

        var commit = _hub.AddRepo("sdxl-test/variants", null, extra);

        var folder = await SdxlModelHub.DownloadAsync("sdxl-test/variants", Options with { Variant = "fp16" });

        Assert.Equal(Path.Combine(_cache.Path, "models--sdxl-test--variants", "snapshots", commit, "onnx", "fp16"), folder);
        Assert.Equal(HubTestSupport.RelativeFiles(fp16), HubTestSupport.RelativeFiles(folder));
        Assert.Equal(0, _hub.CountRequests(r => r.Contains("/resolve/", StringComparison.Ordinal) && !r.Contains("/onnx/fp16/", StringComparison.Ordinal)));

        // Without a variant the non-fp16 folder is the default; the fp16 one stays reachable from the cache.
        var plain = await SdxlModelHub.DownloadAsync("sdxl-test/variants", Options);
        Assert.EndsWith(Path.Combine(commit, "onnx"), plain);
        Assert.Equal(folder, SdxlModelHub.FindCached("sdxl-test/variants", Options with { Variant = "fp16" }));

        var missing = await Assert.ThrowsAsync<SdxlHubException>(() => SdxlModelHub.DownloadAsync("sdxl-test/variants", Options with { Variant = "int8" }));
        Assert.Equal(HubErrorKind.NoOnnxFiles, missing.Kind);
        Assert.Contains("onnx, onnx/fp16", missing.Message);
    }

    [Fact]
    public async Task Offline_resolves_from_the_cache_without_a_request_and_fails_clearly_when_absent()
    {
        var none = await Assert.ThrowsAsync<SdxlHubException>(() => SdxlModelHub.DownloadAsync(RepoId, Options with { Offline = true }));
        Assert.Equal(HubErrorKind.NotCached, none.Kind);
        Assert.Contains("sdxl download " + RepoId, none.Message);

        var online = await SdxlModelHub.DownloadAsync(RepoId, Options);
        int before = _hub.Requests.Count;
        Assert.Equal(online, await SdxlModelHub.DownloadAsync(RepoId, Options with { Offline = true }));
        Assert.Equal(before, _hub.Requests.Count);
    }

    [Fact]
    public async Task An_unreachable_hub_falls_back_to_the_cached_snapshot()
    {
        var online = await SdxlModelHub.DownloadAsync(RepoId, Options);
        var closed = Options with { Endpoint = "http://127.0.0.1:1", MaxRetries = 0 };
        Assert.Equal(online, await SdxlModelHub.DownloadAsync(RepoId, closed));

        var e = await Assert.ThrowsAsync<SdxlHubException>(() => SdxlModelHub.DownloadAsync("sdxl-test/other", closed));
        Assert.Equal(HubErrorKind.Network, e.Kind);
    }

    [Fact]
    public async Task The_builder_downloads_a_repository_id_only_when_allowed()
    {
        var e = Assert.Throws<SdxlHubException>(() => SdxlPipeline.CreateBuilder().WithModel(RepoId, Options).Build());
        Assert.Equal(HubErrorKind.NotCached, e.Kind);
        Assert.Empty(_hub.Requests);

        using (SdxlPipeline.CreateBuilder().WithModel(RepoId, Options, allowDownload: true).Build())
        {
        }

        Assert.NotEmpty(_hub.Requests);
        await Task.CompletedTask;
    }

    private static byte[] Filler(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }
}

/// <summary>An <see cref="IProgress{T}"/> that calls back on the reporting thread (Progress&lt;T&gt; posts, which a test cannot order).</summary>
internal sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
{
    private readonly object _gate = new();

    public void Report(T value)
    {
        lock (_gate)
        {
            report(value);
        }
    }
}

internal static class HubTestSupport
{
    public static void FastRetries() => HubHttp.RetryDelay = TimeSpan.FromMilliseconds(5);

    /// <summary>Paths (with '/') of every file under <paramref name="folder"/>, following links, sorted.</summary>
    public static string[] RelativeFiles(string folder) =>
        Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(folder, f).Replace('\\', '/'))
            .Order(StringComparer.Ordinal)
            .ToArray();
}
