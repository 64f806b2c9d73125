using System.Text.Json;
using Sdxl.Cli;
using Sdxl.Net.Synthetic;
using Sdxl.Net.Tests.Synthetic;

namespace Sdxl.Net.Tests.Hub;

/// <summary>
/// The CLI as a user runs it, configured only by huggingface_hub's environment variables: <c>sdxl download</c>
/// from a loopback Hub, <c>sdxl models</c>, and <c>generate --model org/name</c> offline with the Hub gone.
/// </summary>
[Collection(HubCollection.Name)]
public sealed class HubCliTests : IAsyncLifetime
{
    private static readonly string[] Variables = ["HF_ENDPOINT", "HF_HUB_CACHE", "HF_HOME", "HF_HUB_OFFLINE", "HF_TOKEN", "HF_TOKEN_PATH"];

    private readonly Dictionary<string, string?> _saved = Variables.ToDictionary(v => v, Environment.GetEnvironmentVariable);
    private readonly TempDirectory _work = new();
    private FakeHub? _hub;

    private string Cache => Path.Combine(_work.Path, "hf", "hub");

    public async Task InitializeAsync()
    {
        HubTestSupport.FastRetries();
        _hub = await FakeHub.StartAsync();
        foreach (var name in Variables)
        {
            Environment.SetEnvironmentVariable(name, null);
        }

        // HF_HOME alone places the cache at $HF_HOME/hub and the token file at $HF_HOME/token.
        Environment.SetEnvironmentVariable("HF_HOME", Path.Combine(_work.Path, "hf"));
        Environment.SetEnvironmentVariable("HF_ENDPOINT", _hub.Endpoint);
    }

    public async Task DisposeAsync()
    {
        foreach (var (name, value) in _saved)
        {
            Environment.SetEnvironmentVariable(name, value);
        }

        if (_hub is not null)
        {
            await _hub.DisposeAsync();
        }

        _work.Dispose();
    }

    private static async Task<(int Exit, string Out, string Err)> Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int exit = await CliApp.RunAsync(args, stdout, stderr);
        return (exit, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public async Task Download_then_generate_offline_with_the_model_id()
    {
        var model = SyntheticModels.Get(new SyntheticModelOptions { UnetExternalData = true });
        var commit = _hub!.AddRepo("sdxl-test/cli-model", model);

        var (exit, output, err) = await Run("download", "sdxl-test/cli-model");

        Assert.True(exit == 0, err);
        var folder = output.Trim();
        Assert.Equal(Path.Combine(Cache, "models--sdxl-test--cli-model", "snapshots", commit), folder);
        Assert.Equal(HubTestSupport.RelativeFiles(model), HubTestSupport.RelativeFiles(folder));
        Assert.Contains("download: ", err);

        var (listExit, listing, listErr) = await Run("models", "--json");
        Assert.True(listExit == 0, listErr);
        using (var doc = JsonDocument.Parse(listing))
        {
            var entry = Assert.Single(doc.RootElement.GetProperty("models").EnumerateArray());
            Assert.Equal("sdxl-test/cli-model", entry.GetProperty("repo").GetString());
            Assert.True(entry.GetProperty("size_bytes").GetInt64() >= new FileInfo(Path.Combine(model, "unet", "model.onnx_data")).Length);
        }

        // The Hub goes away; offline mode resolves the id from the cache alone.
        await _hub.DisposeAsync();
        _hub = null;
        Environment.SetEnvironmentVariable("HF_HUB_OFFLINE", "1");
        var png = Path.Combine(_work.Path, "out.png");
        (exit, _, err) = await Run("generate", "--model", "sdxl-test/cli-model", "--prompt", "a lighthouse", "--steps", "2", "--guidance", "5", "--width", "64", "--height", "64", "--seed", "1", "--output", png);
        Assert.True(exit == 0, err);
        Assert.True(new FileInfo(png).Length > 0);

        // download itself, offline, answers from the cache too.
        (exit, output, err) = await Run("download", "sdxl-test/cli-model");
        Assert.True(exit == 0, err);
        Assert.Equal(folder, output.Trim());
    }

    [TinySdxlFact]
    public async Task The_reference_model_downloaded_and_run_offline_reproduces_diffusers()
    {
        // The tiny diffusers-reference folder published with PyTorch decoys; case 01 run from the cache by id must
        // match diffusers' image as closely as the folder itself does (tolerance from the case).
        var root = TestPaths.TinySdxl!;
        var model = Path.Combine(root, "tiny-sdxl-base");
        _hub!.AddRepo("sdxl-test/tiny-sdxl-base", model, new Dictionary<string, byte[]>
        {
            ["unet/diffusion_pytorch_model.safetensors"] = new byte[4096],
            ["text_encoder/model.safetensors"] = new byte[2048],
        });
        var (exit, output, err) = await Run("download", "sdxl-test/tiny-sdxl-base");
        Assert.True(exit == 0, err);
        Assert.Equal(HubTestSupport.RelativeFiles(model), HubTestSupport.RelativeFiles(output.Trim()));
        Assert.Equal(0, _hub.CountRequests(r => r.Contains("safetensors", StringComparison.Ordinal)));

        Environment.SetEnvironmentVariable("HF_HUB_OFFLINE", "1");
        var caseDir = Path.Combine(root, "cases", "01_euler");
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(caseDir, "params.json")));
        var p = doc.RootElement;
        var npy = Path.Combine(_work.Path, "out.npy");
        (exit, _, err) = await Run("generate", "--model", "sdxl-test/tiny-sdxl-base",
            "--prompt", p.GetProperty("prompt").GetString()!, "--negative-prompt", p.GetProperty("negative_prompt").GetString()!,
            "--width", "64", "--height", "64", "--steps", "8", "--guidance", "5", "--scheduler", "euler",
            "--latents", Path.Combine(caseDir, "latents.npy"), "--device", "cpu", "--output", npy);
        Assert.True(exit == 0, err);

        var (actual, _) = Sdxl.Net.Imaging.NpyFile.Read(npy);
        var (expected, _) = Sdxl.Net.Imaging.NpyFile.Read(Path.Combine(caseDir, "expected_image.npy"));
        Assert.Equal(expected.Length, actual.Length);
        double maxError = expected.Zip(actual, (a, b) => Math.Abs((double)a - b)).Max();
        Assert.True(maxError <= p.GetProperty("tolerance_max_abs").GetDouble(), $"max abs error {maxError:E3}");
    }

    [Fact]
    public async Task A_gated_repository_fails_with_one_line_and_succeeds_with_the_token_file()
    {
        _hub!.AddRepo("gated-org/cli", SyntheticModels.Get(), token: "hf_cli_token");

        var (exit, output, err) = await Run("download", "gated-org/cli");

        Assert.Equal(CliApp.RuntimeFailure, exit);
        Assert.Equal("", output);
        var line = Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("sdxl: failed: Access to gated-org/cli was refused (HTTP 401, GatedRepo)", line);
        Assert.Contains("set HF_TOKEN", line);

        // huggingface-cli login stores the token in $HF_HOME/token.
        Directory.CreateDirectory(Path.Combine(_work.Path, "hf"));
        File.WriteAllText(Path.Combine(_work.Path, "hf", "token"), "hf_cli_token\n");
        (exit, _, err) = await Run("download", "gated-org/cli");
        Assert.True(exit == 0, err);
    }

    [Fact]
    public async Task A_model_id_not_in_the_cache_is_a_usage_error_that_names_sdxl_download()
    {
        var (exit, _, err) = await Run("info", "--model", "someone/not-downloaded");

        Assert.Equal(CliApp.UsageFailure, exit);
        Assert.Contains("--model: 'someone/not-downloaded' is neither a folder nor a model in the Hugging Face cache", err);
        Assert.Contains("sdxl download someone/not-downloaded", err);
        Assert.Empty(_hub!.Requests);
    }

    [Fact]
    public async Task Two_processes_downloading_one_repository_fetch_each_blob_once()
    {
        var model = SyntheticModels.Get(new SyntheticModelOptions { UnetExternalData = true });
        _hub!.AddRepo("sdxl-test/two-processes", model);
        _hub.CdnDelay = TimeSpan.FromMilliseconds(200);

        var processes = Enumerable.Range(0, 2).Select(_ => StartCli("download", "sdxl-test/two-processes")).ToArray();
        var results = await Task.WhenAll(processes.Select(async p =>
        {
            var output = p.StandardOutput.ReadToEndAsync();
            var error = p.StandardError.ReadToEndAsync();
            await p.WaitForExitAsync();
            return (p.ExitCode, Out: await output, Err: await error);
        }));

        Assert.All(results, r => Assert.True(r.ExitCode == 0, r.Err));
        var folder = results[0].Out.Trim();
        Assert.Equal(folder, results[1].Out.Trim());
        foreach (var file in HubTestSupport.RelativeFiles(model))
        {
            Assert.Equal(File.ReadAllBytes(Path.Combine(model, file)), File.ReadAllBytes(Path.Combine(folder, file)));
        }

        // The lock files kept the second process from fetching what the first was fetching.
        var cdn = _hub.Requests.Where(r => r.StartsWith("GET /cdn/", StringComparison.Ordinal)).Select(r => r.Split('?')[0]).ToList();
        Assert.Equal(cdn.Distinct().Count(), cdn.Count);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(Cache, "models--sdxl-test--two-processes", "blobs"), "*.incomplete"));
    }

    /// <summary>The built sdxl CLI (copied beside the tests) as its own process, with this process's HF_* variables.</summary>
    private static System.Diagnostics.Process StartCli(params string[] args)
    {
        var start = new System.Diagnostics.ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "sdxl.dll"));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        return System.Diagnostics.Process.Start(start)!;
    }

    [Fact]
    public async Task Download_usage_errors_exit_2()
    {
        Assert.Equal(CliApp.UsageFailure, (await Run("download")).Exit);
        var (exit, _, err) = await Run("download", "not a repo");
        Assert.Equal(CliApp.UsageFailure, exit);
        Assert.Contains("not a Hugging Face repository id", err);
    }
}
