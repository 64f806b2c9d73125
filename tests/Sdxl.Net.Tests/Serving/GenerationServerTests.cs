using Sdxl.Net.Serving;

namespace Sdxl.Net.Tests.Serving;

/// <summary>The in-process server: dynamic batching, cancellation, admission control, priority.</summary>
public sealed class GenerationServerTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private static GenerationRequest Request(string prompt, long seed, int steps = 4, float guidance = 5) => new()
    {
        Prompt = prompt,
        Width = 64,
        Height = 64,
        Steps = steps,
        GuidanceScale = guidance,
        Seed = seed,
    };

    [Fact]
    public async Task Compatible_jobs_arriving_within_the_delay_run_as_one_batch_and_equal_lone_runs()
    {
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).Build();
        using var server = new GenerationServer([pipeline], new ServingOptions { MaxBatchSize = 4, MaxBatchDelay = TimeSpan.FromSeconds(5) });
        GenerationRequest[] requests = [Request("a red fox", 1), Request("a blue lake", 2, guidance: 8), Request("a castle", 3, guidance: 2) with { BatchSize = 2 }];
        var jobs = requests.Select(r => server.Submit(r)).ToList();
        var results = await Task.WhenAll(jobs.Select(j => j.Completion)).WaitAsync(Timeout);

        // 1 + 1 + 2 images fill the batch of 4 at once (well before the 5 s delay).
        foreach (var job in jobs)
        {
            Assert.Equal(JobState.Done, job.State);
            Assert.Equal(4, job.Events.Single(e => e.Kind == JobEventKind.Started).BatchImages);
            Assert.Equal([1, 2, 3, 4], job.Events.Where(e => e.Kind == JobEventKind.Step).Select(e => e.Step));
        }

        for (int i = 0; i < requests.Length; i++)
        {
            var alone = await pipeline.GenerateAsync(requests[i]);
            for (int k = 0; k < alone.Images.Count; k++)
            {
                Assert.Equal(alone.Images[k].Pixels.ToArray(), results[i].Images[k].Pixels.ToArray());
            }
        }
    }

    [Fact]
    public async Task Incompatible_jobs_run_in_separate_batches()
    {
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).Build();
        using var server = new GenerationServer([pipeline], new ServingOptions { MaxBatchSize = 4, MaxBatchDelay = TimeSpan.FromMilliseconds(200) });
        var a = server.Submit(Request("a", 1));
        var b = server.Submit(Request("b", 2, steps: 3));
        await Task.WhenAll(a.Completion, b.Completion).WaitAsync(Timeout);
        Assert.Equal(1, a.Events.Single(e => e.Kind == JobEventKind.Started).BatchImages);
        Assert.Equal(1, b.Events.Single(e => e.Kind == JobEventKind.Started).BatchImages);
    }

    [Fact]
    public async Task Cancelling_a_running_job_ends_it_cancelled_and_its_batch_mates_finish_unchanged()
    {
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).Build();
        using var server = new GenerationServer([pipeline], new ServingOptions { MaxBatchSize = 2, MaxBatchDelay = TimeSpan.FromSeconds(5) });
        var keep = server.Submit(Request("a red fox", 1, steps: 300));
        var leave = server.Submit(Request("a blue lake", 2, steps: 300));
        await foreach (var e in leave.WatchAsync().WithCancellation(new CancellationTokenSource(Timeout).Token))
        {
            if (e.Kind == JobEventKind.Step)
            {
                leave.Cancel();
                break;
            }
        }

        var result = await keep.Completion.WaitAsync(Timeout);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => leave.Completion.WaitAsync(Timeout));
        Assert.Equal(JobState.Cancelled, leave.State);
        Assert.Equal(JobEventKind.Cancelled, leave.Events[^1].Kind);
        Assert.True(leave.Events.Count(e => e.Kind == JobEventKind.Step) < 300, "the cancelled job stopped before its last step");
        var alone = await pipeline.GenerateAsync(Request("a red fox", 1, steps: 300));
        Assert.Equal(alone.Images[0].Pixels.ToArray(), result.Images[0].Pixels.ToArray());
    }

    [Fact]
    public async Task A_full_queue_refuses_with_a_retry_estimate_and_a_cancelled_queued_job_frees_its_place()
    {
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).Build();
        using var server = new GenerationServer([pipeline], new ServingOptions { MaxBatchSize = 1, MaxQueueLength = 1 });
        var running = server.Submit(Request("a", 1, steps: 200));
        await WaitFor(running, JobEventKind.Started);
        var queued = server.Submit(Request("b", 2));
        var full = Assert.Throws<QueueFullException>(() => server.Submit(Request("c", 3)));
        Assert.Equal(1, full.QueueLength);
        Assert.True(full.RetryAfter >= TimeSpan.FromSeconds(1));

        // A queued job's cancellation removes it at once, so the next one is accepted.
        queued.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => queued.Completion.WaitAsync(Timeout));
        Assert.Equal(JobState.Cancelled, queued.State);
        Assert.DoesNotContain(queued.Events, e => e.Kind == JobEventKind.Started);
        var accepted = server.Submit(Request("d", 4));
        running.Cancel();
        await accepted.Completion.WaitAsync(Timeout);
    }

    [Fact]
    public async Task Higher_priority_runs_first_and_a_cancelled_client_token_cancels_the_job()
    {
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).Build();
        using var server = new GenerationServer([pipeline], new ServingOptions { MaxBatchSize = 1 });
        var running = server.Submit(Request("a", 1, steps: 60));
        await WaitFor(running, JobEventKind.Started);
        var low = server.Submit(Request("low", 2), priority: 0);
        var high = server.Submit(Request("high", 3), priority: 5);
        using var disconnect = new CancellationTokenSource();
        var gone = server.Submit(Request("gone", 4), priority: 9, cancellationToken: disconnect.Token);
        disconnect.Cancel();
        await Task.WhenAll(running.Completion, low.Completion, high.Completion).WaitAsync(Timeout);

        var highStart = high.Events.Single(e => e.Kind == JobEventKind.Started).At;
        var lowStart = low.Events.Single(e => e.Kind == JobEventKind.Started).At;
        Assert.True(highStart < lowStart, $"high started at {highStart:O}, low at {lowStart:O}");

        // The low job was told how it moved: 0 jobs ahead, 1 (high), 2 (gone, priority 9), ..., 0 before it started.
        var positions = low.Events.Where(e => e.Kind == JobEventKind.Queued).Select(e => e.Position!.Value).ToList();
        Assert.Equal([0, 1, 2], positions.Take(3));
        Assert.Equal(0, positions[^1]);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => gone.Completion.WaitAsync(Timeout));
        Assert.DoesNotContain(gone.Events, e => e.Kind == JobEventKind.Started);
    }

    [Fact]
    public void Bad_requests_are_refused_at_submission()
    {
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).Build();
        using var server = new GenerationServer([pipeline]);
        Assert.ThrowsAny<ArgumentException>(() => server.Submit(Request("a", 1) with { Width = 65 }));
        Assert.Equal(0, server.QueueLength);
    }

    private static async Task WaitFor(GenerationJob job, JobEventKind kind)
    {
        await foreach (var e in job.WatchAsync().WithCancellation(new CancellationTokenSource(Timeout).Token))
        {
            if (e.Kind == kind)
            {
                return;
            }
        }

        throw new Xunit.Sdk.XunitException($"job ended without {kind}");
    }
}
