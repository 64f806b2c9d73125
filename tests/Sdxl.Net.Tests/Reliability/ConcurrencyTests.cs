namespace Sdxl.Net.Tests.Reliability;

/// <summary>One pipeline serves concurrent generations exactly as it serves sequential ones.</summary>
public sealed class ConcurrencyTests(SyntheticPipelineFixture fixture) : IClassFixture<SyntheticPipelineFixture>
{
    private static readonly string[] Schedulers = ["euler", "euler-a", "dpmpp-2m", "ddim", "dpmpp-2m-sde", "unipc", "heun", "euler-a"];

    private static GenerationRequest RequestFor(int i) =>
        Faults.Tiny(seed: 100 + i) with { Scheduler = Schedulers[i % Schedulers.Length], Steps = 3, BatchSize = 1 + (i % 2) };

    [Fact]
    public async Task Eight_concurrent_generations_equal_sequential_runs()
    {
        var sequential = new GenerationResult[8];
        for (int i = 0; i < 8; i++)
        {
            sequential[i] = await fixture.Pipeline.GenerateAsync(RequestFor(i));
        }

        using var start = new ManualResetEventSlim();
        var tasks = Enumerable.Range(0, 8).Select(i => Task.Run(async () =>
        {
            start.Wait();
            return await fixture.Pipeline.GenerateAsync(RequestFor(i));
        })).ToArray();
        start.Set();
        var concurrent = await Task.WhenAll(tasks);

        for (int i = 0; i < 8; i++)
        {
            Assert.Equal(sequential[i].Scheduler, concurrent[i].Scheduler);
            Assert.Equal(sequential[i].Images.Count, concurrent[i].Images.Count);
            for (int b = 0; b < sequential[i].Images.Count; b++)
            {
                Assert.True(sequential[i].Images[b].Pixels.Span.SequenceEqual(concurrent[i].Images[b].Pixels.Span), $"request {i} ({Schedulers[i]}) image {b} differs");
            }
        }

        // Different seeds and samplers really gave different images (else equality above would prove nothing).
        Assert.False(sequential[0].Images[0].Pixels.Span.SequenceEqual(sequential[7].Images[0].Pixels.Span));
    }

    [Fact]
    public async Task Many_threads_hammering_shared_sessions_with_cancellations_and_failures_mixed_in()
    {
        // 48 requests on 12 threads: valid ones of four kinds, invalid ones, and cancelled ones, all on one set of
        // sessions. Every valid result must equal its sequential reference; the failures must not disturb them.
        var references = new float[4][];
        for (int k = 0; k < 4; k++)
        {
            references[k] = (await fixture.Pipeline.GenerateAsync(RequestFor(k) with { BatchSize = 1 })).Images[0].Pixels.ToArray();
        }

        int mismatches = 0, completed = 0, rejected = 0, cancelled = 0;
        await Parallel.ForAsync(0, 48, new ParallelOptions { MaxDegreeOfParallelism = 12 }, async (i, _) =>
        {
            int k = i % 4;
            switch (i % 6)
            {
                case 4:
                    await Assert.ThrowsAnyAsync<ArgumentException>(() => fixture.Pipeline.GenerateAsync(RequestFor(k) with { Width = 70 }));
                    Interlocked.Increment(ref rejected);
                    return;
                case 5:
                    using (var cts = new CancellationTokenSource())
                    {
                        var progress = new PhaseAction(p =>
                        {
                            if (p.Phase == GenerationPhase.Denoising)
                            {
                                cts.Cancel();
                            }
                        });
                        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => fixture.Pipeline.GenerateAsync(RequestFor(k), progress, cts.Token));
                    }

                    Interlocked.Increment(ref cancelled);
                    return;
                default:
                    var result = await fixture.Pipeline.GenerateAsync(RequestFor(k) with { BatchSize = 1 });
                    if (!result.Images[0].Pixels.Span.SequenceEqual(references[k]))
                    {
                        Interlocked.Increment(ref mismatches);
                    }

                    Interlocked.Increment(ref completed);
                    return;
            }
        });

        Assert.Equal(0, mismatches);
        Assert.Equal(32, completed);
        Assert.Equal(8, rejected);
        Assert.Equal(8, cancelled);
    }
}
