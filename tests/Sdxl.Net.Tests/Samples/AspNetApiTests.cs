using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using Sdxl.Net.Synthetic;
using Sdxl.Net.Tests.Synthetic;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Sdxl.Net.Tests.Samples;

/// <summary>Starts the built samples/AspNetApi as a process on a tiny random-weight model and talks to it over loopback.</summary>
public sealed class AspNetApiTests : IAsyncLifetime
{
    private readonly TempDirectory _model = new();
    private readonly StringBuilder _output = new();
    private Process? _server;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        SyntheticSdxlModel.Write(_model.Path);
        int port = SampleProcess.FreePort();
        var dll = SampleProcess.SampleAssembly("AspNetApi");
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = Path.GetDirectoryName(dll)!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { dll, "--urls", $"http://127.0.0.1:{port}", $"--Sdxl:ModelPath={_model.Path}", "--GenerationQueue:Capacity=1", "--GenerationQueue:MaxConcurrency=1" })
        {
            start.ArgumentList.Add(arg);
        }

        _server = Process.Start(start)!;
        _server.OutputDataReceived += (_, e) => Append(e.Data);
        _server.ErrorDataReceived += (_, e) => Append(e.Data);
        _server.BeginOutputReadLine();
        _server.BeginErrorReadLine();
        _http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromMinutes(2) };

        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (_server.HasExited)
            {
                throw new InvalidOperationException($"The sample exited with {_server.ExitCode}:\n{Output}");
            }

            try
            {
                if ((await _http.GetAsync("/health")).IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }

            if (deadline.Elapsed > TimeSpan.FromSeconds(60))
            {
                throw new TimeoutException($"The sample did not answer /health within 60 s:\n{Output}");
            }

            await Task.Delay(100);
        }
    }

    public Task DisposeAsync()
    {
        _http?.Dispose();
        if (_server is { HasExited: false })
        {
            _server.Kill(entireProcessTree: true);
            _server.WaitForExit(10_000);
        }

        _server?.Dispose();
        _model.Dispose();
        return Task.CompletedTask;
    }

    private string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    [Fact]
    public async Task Generate_returns_a_png_of_the_requested_size()
    {
        using var response = await _http.PostAsJsonAsync("/generate", new { prompt = "a lighthouse", seed = 42, steps = 3, width = 32, height = 48 });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("image/png", response.Content.Headers.ContentType?.MediaType);
        var bytes = await response.Content.ReadAsByteArrayAsync();
        using var image = Image.Load<Rgb24>(bytes);
        Assert.Equal((32, 48), (image.Width, image.Height));
    }

    [Fact]
    public async Task Invalid_requests_get_400_with_the_reason()
    {
        using var response = await _http.PostAsJsonAsync("/generate", new { prompt = "x", steps = 2, width = 33, height = 32 });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("33", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_full_queue_answers_503_and_a_disconnected_client_frees_its_slot()
    {
        // A generation long enough (500 steps at 512 x 512) to hold the only slot for minutes unless cancelled.
        using var slowCancel = new CancellationTokenSource();
        Task<HttpResponseMessage> slow;
        do
        {
            // Give it a second to be admitted before anything else is sent.
            slow = _http.PostAsJsonAsync("/generate", new { prompt = "slow", seed = 1, steps = 500, width = 512, height = 512 }, slowCancel.Token);
            await Task.WhenAny(slow, Task.Delay(1000));
        }
        while (slow.IsCompleted && (await slow).StatusCode == HttpStatusCode.ServiceUnavailable);

        var full = await PollAsync(HttpStatusCode.ServiceUnavailable, TimeSpan.FromSeconds(20));
        var slowState = slow.IsCompleted ? $"{(await slow).StatusCode} {await (await slow).Content.ReadAsStringAsync()}" : "running";
        Assert.True(full, $"no 503 while the slot was taken (slow request: {slowState}):\n{Output}");
        Assert.False(slow.IsCompleted);

        await slowCancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => slow);

        // The server cancels the running generation, so the slot frees long before 1000 steps could finish.
        var served = await PollAsync(HttpStatusCode.OK, TimeSpan.FromSeconds(20));
        Assert.True(served, $"the slot was not freed after the client disconnected:\n{Output}");
        // The server logs the cancellation after releasing the slot, through the asynchronous console logger.
        var logged = Stopwatch.StartNew();
        while (!Output.Contains("its generation was cancelled", StringComparison.Ordinal) && logged.Elapsed < TimeSpan.FromSeconds(10))
        {
            await Task.Delay(50);
        }

        Assert.Contains("its generation was cancelled", Output);
    }

    private async Task<bool> PollAsync(HttpStatusCode wanted, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < timeout)
        {
            using var response = await _http.PostAsJsonAsync("/generate", new { prompt = "quick", seed = 2, steps = 1, width = 32, height = 32 });
            if (response.StatusCode == wanted)
            {
                return true;
            }

            await Task.Delay(50);
        }

        return false;
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_output)
            {
                _output.AppendLine(line);
            }
        }
    }
}
