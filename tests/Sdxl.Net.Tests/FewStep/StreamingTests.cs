namespace Sdxl.Net.Tests.FewStep;

/// <summary><see cref="SdxlPipeline.GenerateStreamingAsync"/>: step updates then the result; leaving early stops the work.</summary>
public sealed class StreamingTests
{
    private static GenerationRequest Request(int steps) => new()
    {
        Prompt = "a windmill",
        Width = 64,
        Height = 64,
        Steps = steps,
        GuidanceScale = 5,
        Seed = 5,
        Preview = new Previews.PreviewOptions { EveryNSteps = 2 },
    };

    [Fact]
    public async Task The_stream_yields_every_step_then_the_result()
    {
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).Build();
        var updates = new List<Streaming.GenerationUpdate>();
        await foreach (var update in pipeline.GenerateStreamingAsync(Request(4)))
        {
            updates.Add(update);
        }

        var steps = updates.Where(u => u.Progress is { Phase: GenerationPhase.Denoising, Step: > 0 }).Select(u => u.Progress!).ToArray();
        Assert.Equal([1, 2, 3, 4], steps.Select(s => s.Step));
        Assert.Equal([2, 4], steps.Where(s => s.Preview is not null).Select(s => s.Step));
        Assert.True(updates[^1].IsFinal);
        Assert.Single(updates, u => u.IsFinal);

        var direct = await pipeline.GenerateAsync(Request(4));
        Assert.Equal(direct.Images[0].Pixels.ToArray(), updates[^1].Result!.Images[0].Pixels.ToArray());
    }

    [Fact]
    public async Task Breaking_out_of_the_stream_cancels_the_generation_and_leaves_no_running_work()
    {
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).Build();
        const int total = 1000;
        int stepsRun = 0;
        // Each step takes at least 5 ms, so the generation is still running when a consumer starved by a loaded machine
        // reads step 2 (the tiny model alone could finish all 1000 steps before that).
        var request = Request(total) with
        {
            Scheduler = "euler",
            StepEnd = _ =>
            {
                Interlocked.Increment(ref stepsRun);
                Thread.Sleep(5);
            },
        };
        await foreach (var update in pipeline.GenerateStreamingAsync(request))
        {
            if (update.Progress is { Phase: GenerationPhase.Denoising, Step: >= 2 })
            {
                break;
            }
        }

        // Leaving the loop waited for the generation to stop: no step runs after it, and it stopped early.
        int afterBreak = Volatile.Read(ref stepsRun);
        await Task.Delay(300);
        Assert.Equal(afterBreak, Volatile.Read(ref stepsRun));
        Assert.InRange(afterBreak, 2, total - 1);

        // The pipeline stays usable.
        var result = await pipeline.GenerateAsync(Request(2));
        Assert.Single(result.Images);
    }

    [Fact]
    public async Task Cancelling_the_token_ends_the_stream_with_cancellation()
    {
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).Build();
        using var cts = new CancellationTokenSource();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var update in pipeline.GenerateStreamingAsync(Request(200), cts.Token))
            {
                if (update.Progress is { Step: 1 })
                {
                    await cts.CancelAsync();
                }
            }
        });
    }
}
