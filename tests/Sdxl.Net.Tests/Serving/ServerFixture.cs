namespace Sdxl.Net.Tests.Serving;

/// <summary>samples/Sdxl.Server (<c>--role all</c>) on the synthetic model, on a free loopback port.</summary>
public abstract class ServerFixture : IAsyncLifetime
{
    private SampleProcess? _process;

    public HttpClient Http { get; private set; } = null!;

    public Uri BaseAddress { get; private set; } = null!;

    public string Model { get; } = SyntheticModels.Get();

    public string Output => _process?.Output ?? string.Empty;

    protected abstract IEnumerable<string> Flags { get; }

    public async Task InitializeAsync()
    {
        int port = SampleProcess.FreePort();
        BaseAddress = new Uri($"http://127.0.0.1:{port}");
        _process = SampleProcess.Start("Sdxl.Server", ["--role", "all", "--model", Model, "--urls", BaseAddress.ToString().TrimEnd('/'), .. Flags]);
        Http = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromMinutes(2) };
        await _process.WaitUntilHealthyAsync(Http, "/health", TimeSpan.FromSeconds(60));
    }

    public Task DisposeAsync()
    {
        Http?.Dispose();
        _process?.Dispose();
        return Task.CompletedTask;
    }

    public Task<bool> WaitForOutputAsync(string text, TimeSpan timeout) => _process!.WaitForOutputAsync(text, timeout);
}

/// <summary>Batching on: up to 4 images, 50 ms delay.</summary>
public sealed class BatchingServerFixture : ServerFixture
{
    protected override IEnumerable<string> Flags => ["--max-batch", "4", "--max-batch-delay-ms", "50", "--max-queue", "64"];
}

/// <summary>One job at a time and a queue of one, to fill it.</summary>
public sealed class TinyQueueServerFixture : ServerFixture
{
    protected override IEnumerable<string> Flags => ["--max-batch", "1", "--max-queue", "1"];
}
