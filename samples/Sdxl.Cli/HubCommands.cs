using System.Globalization;
using System.Text.Json;
using Sdxl.Net.Hub;

namespace Sdxl.Cli;

/// <summary>
/// <c>sdxl download REPO</c> and <c>sdxl models</c>: ONNX models from the Hugging Face Hub in the shared
/// huggingface_hub cache, and <c>--model org/name</c> resolved from that cache. Endpoint, cache, token and offline
/// mode come from HF_ENDPOINT, HF_HUB_CACHE / HF_HOME, HF_TOKEN and HF_HUB_OFFLINE, as for Python.
/// </summary>
internal static class HubCommands
{
    /// <summary><c>sdxl download REPO [--revision R] [--variant V] [--cache-dir DIR]</c>: prints the model folder on stdout.</summary>
    public static async Task<int> DownloadAsync(CliArguments options, TextWriter stdout, TextWriter stderr, CancellationToken ct)
    {
        var repo = options.Optional("repo") ?? throw new UsageException("download needs a repository id: sdxl download ORG/NAME [--revision R] [--variant fp16]");
        var hub = HubOptions(options);
        options.RejectUnknown();
        if (!IsRepoId(repo))
        {
            throw new UsageException($"'{repo}' is not a Hugging Face repository id: expected ORG/NAME, e.g. stabilityai/stable-diffusion-xl-base-1.0");
        }

        bool interactive = ReferenceEquals(stderr, Console.Error) && !Console.IsErrorRedirected;
        var progress = new DownloadProgressLines(stderr, interactive);
        var folder = await SdxlModelHub.DownloadAsync(repo, hub, progress, ct).ConfigureAwait(false);
        progress.Finish();
        stdout.WriteLine(folder);
        return CliApp.Ok;
    }

    /// <summary><c>sdxl models [--cache-dir DIR] [--json]</c>: the cached model repositories, their size and ONNX layouts.</summary>
    public static int Models(CliArguments options, TextWriter stdout)
    {
        var cacheDir = options.Optional("cache-dir");
        bool json = options.Flag("json");
        options.RejectUnknown();
        var cache = SdxlModelHub.ResolveCacheDirectory(cacheDir);
        var models = SdxlModelHub.ListCache(cache);
        if (json)
        {
            stdout.WriteLine(JsonSerializer.Serialize(new
            {
                cache,
                models = models.Select(m => new
                {
                    repo = m.RepoId,
                    size_bytes = m.SizeBytes,
                    snapshots = m.Snapshots.Select(s => new { commit = s.Commit, refs = s.Refs, path = s.Directory, onnx_layouts = s.OnnxLayouts }),
                }),
            }));
            return CliApp.Ok;
        }

        stdout.WriteLine($"cache: {cache}");
        if (models.Count == 0)
        {
            stdout.WriteLine("(no models; download one with: sdxl download ORG/NAME)");
            return CliApp.Ok;
        }

        foreach (var model in models)
        {
            stdout.WriteLine($"{model.RepoId,-50} {FormatBytes(model.SizeBytes),10}");
            foreach (var snapshot in model.Snapshots)
            {
                var refs = snapshot.Refs.Count > 0 ? string.Join(", ", snapshot.Refs) + " → " : string.Empty;
                var layouts = snapshot.OnnxLayouts.Count == 0 ? "no ONNX pipeline" : "ONNX: " + string.Join(", ", snapshot.OnnxLayouts.Select(l => l.Length == 0 ? "(root)" : l));
                stdout.WriteLine($"  {refs}{snapshot.Commit[..Math.Min(12, snapshot.Commit.Length)]}  {layouts}");
            }
        }

        return CliApp.Ok;
    }

    /// <summary>
    /// A <c>--model</c>/<c>--refiner</c> value: an existing folder, or an ORG/NAME repository id found in the cache
    /// (never downloaded here: that is <c>sdxl download</c>'s job).
    /// </summary>
    public static string ResolveModel(string value, string option)
    {
        if (Directory.Exists(value))
        {
            return value;
        }

        if (!IsRepoId(value))
        {
            throw new UsageException($"--{option}: folder not found: '{value}'");
        }

        return SdxlModelHub.FindCached(value)
            ?? throw new UsageException($"--{option}: '{value}' is neither a folder nor a model in the Hugging Face cache ({SdxlModelHub.ResolveCacheDirectory()}); download it first: sdxl download {value}");
    }

    private static HubDownloadOptions HubOptions(CliArguments options) => new()
    {
        Revision = options.Optional("revision") ?? "main",
        Variant = options.Optional("variant"),
        CacheDirectory = options.Optional("cache-dir"),
    };

    private static bool IsRepoId(string value) => SdxlModelHub.IsRepositoryId(value);

    internal static string FormatBytes(long bytes)
    {
        string[] units = ["B", "KB", "MB", "GB", "TB"];
        double value = bytes;
        int unit = 0;
        while (value >= 1000 && unit < units.Length - 1)
        {
            value /= 1000;
            unit++;
        }

        return string.Create(CultureInfo.InvariantCulture, $"{value:0.#} {units[unit]}");
    }

    /// <summary>Download progress on stderr: an updating line on a terminal, a line every 2 s otherwise.</summary>
    private sealed class DownloadProgressLines(TextWriter stderr, bool interactive) : IProgress<HubDownloadProgress>
    {
        private readonly object _gate = new();
        private DateTime _last = DateTime.MinValue;
        private HubDownloadProgress? _latest;

        public void Report(HubDownloadProgress value)
        {
            lock (_gate)
            {
                _latest = value;
                var now = DateTime.UtcNow;
                if (now - _last < TimeSpan.FromSeconds(interactive ? 0.2 : 2) && value.FilesCompleted < value.FileCount)
                {
                    return;
                }

                _last = now;
                Write(value);
            }
        }

        public void Finish()
        {
            lock (_gate)
            {
                if (interactive && _latest is not null)
                {
                    stderr.WriteLine();
                }
            }
        }

        private void Write(HubDownloadProgress p)
        {
            var total = p.TotalBytes > 0 ? $" of {FormatBytes(p.TotalBytes)}" : string.Empty;
            var eta = p.EstimatedRemaining is { } r ? $", {r:hh\\:mm\\:ss} left" : string.Empty;
            var line = $"download: {p.FilesCompleted}/{p.FileCount} files, {FormatBytes(p.BytesDownloaded)}{total}, {FormatBytes((long)p.BytesPerSecond)}/s{eta}";
            if (interactive)
            {
                stderr.Write("\r" + line.PadRight(100));
            }
            else
            {
                stderr.WriteLine(line);
            }
        }
    }
}
