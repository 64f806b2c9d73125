using Sdxl.Net.Runtime;

namespace Sdxl.Net.Tests.Reliability;

/// <summary>Disposing a pipeline with generations in flight: they are cancelled and waited for; nothing crashes.</summary>
public sealed class LifetimeTests
{
    private static GenerationRequest Small(int i) =>
        Faults.Tiny(seed: 7 + i) with { Width = 32, Height = 32, Steps = 3, Scheduler = i % 2 == 0 ? "euler" : "dpmpp-2m" };

    /// <summary>Counts progress reports across generations and signals when the chosen one arrives.</summary>
    private sealed class Trigger(int at) : IProgress<GenerationProgress>
    {
        private int _seen;

        public ManualResetEventSlim Reached { get; } = new();

        /// <summary>Set once Dispose has returned: any report after it came from a generation still running.</summary>
        public volatile bool DisposeReturned;

        public int ReportsAfterDispose;

        public void Report(GenerationProgress value)
        {
            if (DisposeReturned)
            {
                Interlocked.Increment(ref ReportsAfterDispose);
            }

            if (Interlocked.Increment(ref _seen) >= at)
            {
                Reached.Set();
            }
        }
    }

    [Fact]
    public async Task Disposing_at_random_points_of_four_concurrent_generations_never_crashes_100_times()
    {
        // A native crash (freed session under a running call) would end the test process, so the run finishing is
        // itself the main assertion. Each round also checks the contract: Dispose returns only after every generation
        // has ended; each ended with a result or with OperationCanceledException; generating afterwards is refused.
        var model = SyntheticModels.Get();
        var random = new Random(20261201);
        int completed = 0, cancelled = 0;
        for (int round = 0; round < 100; round++)
        {
            var mode = round % 2 == 0 ? MemoryMode.KeepLoaded : MemoryMode.LoadPerPhase;
            var pipeline = SdxlPipeline.CreateBuilder().WithModel(model).UseCpu(intraOpThreads: 1).WithMemoryMode(mode).Build();

            // Four generations make about 4 × 8 progress reports; dispose at a random one of them, or before any.
            var trigger = new Trigger(random.Next(0, 36));
            // GenerateAsync registers the generation before it first yields, so all four are running when this returns.
            var tasks = Enumerable.Range(0, 4).Select(i => pipeline.GenerateAsync(Small(i), trigger)).ToArray();
            var all = Task.WhenAll(tasks);
            await Task.WhenAny(all, Task.Run(() => trigger.Reached.Wait()));

            if (round % 4 == 3)
            {
                await pipeline.DisposeAsync();
            }
            else
            {
                pipeline.Dispose();
            }

            trigger.DisposeReturned = true;

            // Every generation has left its work when Dispose returns (its task completes an instant later, once the
            // async method unwinds): none reports progress afterwards, and each ends at once.
            using var prompt = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await Task.WhenAll(tasks).ContinueWith(_ => { }, prompt.Token, TaskContinuationOptions.None, TaskScheduler.Default);
            Assert.Equal(0, trigger.ReportsAfterDispose);
            foreach (var task in tasks)
            {
                try
                {
                    Assert.Equal(32, (await task).Images[0].Width);
                    completed++;
                }
                catch (OperationCanceledException)
                {
                    cancelled++;
                }
            }

            await Assert.ThrowsAsync<ObjectDisposedException>(() => pipeline.GenerateAsync(Small(0)));
            pipeline.Dispose();
        }

        // The random points really fell both before the end and after it.
        Assert.True(completed > 0 && cancelled > 0, $"completed {completed}, cancelled {cancelled}");
    }

    [Fact]
    public async Task Generation_cancelled_by_dispose_says_so()
    {
        var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).UseCpu(intraOpThreads: 1).Build();
        var trigger = new Trigger(3);
        var task = Task.Run(() => pipeline.GenerateAsync(Faults.Tiny() with { Steps = 50 }, trigger));
        trigger.Reached.Wait();
        pipeline.Dispose();
        var e = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => task);
        Assert.Contains("disposed", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Dispose_from_a_progress_callback_of_its_own_generation_does_not_deadlock()
    {
        // Waiting there would wait for the calling generation itself: Dispose cancels and returns, and the sessions
        // are released when the generation has ended.
        var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).UseCpu(intraOpThreads: 1).Build();
        var progress = new DisposingProgress(pipeline);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pipeline.GenerateAsync(Faults.Tiny() with { Steps = 20 }, progress));
        Assert.True(progress.Disposed);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => pipeline.GenerateAsync(Faults.Tiny()));
    }

    [Fact]
    public void Cancelled_build_throws_and_releases_what_it_opened()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.Throws<OperationCanceledException>(() => SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).Build(cts.Token));
    }

    private sealed class DisposingProgress(SdxlPipeline pipeline) : IProgress<GenerationProgress>
    {
        public bool Disposed { get; private set; }

        public void Report(GenerationProgress value)
        {
            if (value.Phase == GenerationPhase.Denoising && value.Step == 2)
            {
                pipeline.Dispose();
                Disposed = true;
            }
        }
    }
}
