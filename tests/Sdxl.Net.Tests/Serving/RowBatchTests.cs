using Xunit.Abstractions;

namespace Sdxl.Net.Tests.Serving;

/// <summary>
/// <see cref="SdxlPipeline.GenerateBatchAsync"/>: rows with their own prompts, guidance, seeds and random streams give the
/// images of the same requests run alone (the independent path is <see cref="SdxlPipeline.GenerateAsync(GenerationRequest, CancellationToken)"/>).
/// </summary>
public sealed class RowBatchTests(ITestOutputHelper output)
{
    // The tolerance of the serving contract: float reassociation inside the batched UNet only.
    private const float Tolerance = 1e-5f;

    private static GenerationRequest Request(string prompt, long seed, float guidance = 5, string? scheduler = null) => new()
    {
        Prompt = prompt,
        Width = 64,
        Height = 64,
        Steps = 4,
        GuidanceScale = guidance,
        Seed = seed,
        Scheduler = scheduler,
    };

    public static TheoryData<string?> Schedulers => new() { null, "euler-a", "dpmpp-2m-sde" };

    [Theory]
    [MemberData(nameof(Schedulers))]
    public async Task Each_row_equals_its_request_run_alone(string? scheduler)
    {
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).Build();
        GenerationRequest[] requests =
        [
            Request("a red fox in the snow", 1, 5, scheduler) with { NegativePrompt = "blurry" },
            Request("a blue lake at dawn", 7, 9.5f, scheduler) with { BatchSize = 2 },
            Request("a castle", 3, 2, scheduler) with { GuidanceRescale = 0.7f, Seeds = [5, 6, 8], BatchSize = 3 },
        ];

        var outcomes = await pipeline.GenerateBatchAsync(requests.Select(r => new BatchRow(r)).ToList());

        float worst = 0;
        for (int i = 0; i < requests.Length; i++)
        {
            var alone = await pipeline.GenerateAsync(requests[i]);
            var batched = outcomes[i].Result ?? throw new Xunit.Sdk.XunitException($"row {i} failed: {outcomes[i].Error}");
            Assert.Equal(alone.Images.Count, batched.Images.Count);
            Assert.Equal(alone.Seed, batched.Seed);
            for (int k = 0; k < alone.Images.Count; k++)
            {
                worst = Math.Max(worst, MaxDifference(alone.Images[k].Pixels.Span, batched.Images[k].Pixels.Span));
            }
        }

        output.WriteLine($"largest |batched − alone| over all pixels: {worst:G3}");
        Assert.True(worst <= Tolerance, $"batched images differ from lone runs by {worst}");

        // The rows really are different images (a batch that repeated one row would pass the check above only by luck).
        Assert.True(MaxDifference(outcomes[0].Result!.Images[0].Pixels.Span, outcomes[1].Result!.Images[0].Pixels.Span) > 1e-3f);
    }

    [Fact]
    public async Task A_row_cancelled_mid_run_leaves_without_changing_the_others()
    {
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).Build();
        var keep1 = Request("a red fox in the snow", 1);
        var leave = Request("a blue lake at dawn", 7, 9);
        var keep2 = Request("a castle", 3, 3);
        using var cancel = new CancellationTokenSource();
        var stepsSeen = new List<int>();

        // The leaving row cancels itself after its second step; it must see no later step.
        var progress = new SynchronousProgress(p =>
        {
            if (p.Phase == GenerationPhase.Denoising)
            {
                stepsSeen.Add(p.Step);
                if (p.Step == 2)
                {
                    cancel.Cancel();
                }
            }
        });
        var outcomes = await pipeline.GenerateBatchAsync(
        [
            new BatchRow(keep1),
            new BatchRow(leave) { Progress = progress, CancellationToken = cancel.Token },
            new BatchRow(keep2),
        ]);

        Assert.True(outcomes[1].IsCancelled);
        Assert.Null(outcomes[1].Result);
        Assert.Equal([1, 2], stepsSeen);
        float worst = Math.Max(
            MaxDifference((await pipeline.GenerateAsync(keep1)).Images[0].Pixels.Span, outcomes[0].Result!.Images[0].Pixels.Span),
            MaxDifference((await pipeline.GenerateAsync(keep2)).Images[0].Pixels.Span, outcomes[2].Result!.Images[0].Pixels.Span));
        output.WriteLine($"largest |batched − alone| after a row left: {worst:G3}");
        Assert.True(worst <= Tolerance, $"the remaining rows differ from lone runs by {worst}");
    }

    [Fact]
    public async Task Rows_of_different_shapes_or_with_an_input_image_are_refused_with_the_reason()
    {
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).Build();
        var a = Request("a", 1);
        var e = await Assert.ThrowsAsync<ArgumentException>(() => pipeline.GenerateBatchAsync([new BatchRow(a), new BatchRow(a with { Steps = 5 })]));
        Assert.Contains("Row 1", e.Message);
        Assert.Contains("5 steps", e.Message);
        await Assert.ThrowsAsync<ArgumentException>(() => pipeline.GenerateBatchAsync([new BatchRow(a), new BatchRow(a with { GuidanceScale = 1 })]));

        using var image = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24>(64, 64);
        Assert.Null(pipeline.GetBatchShape(a with { Image = image }));
        Assert.Equal(pipeline.GetBatchShape(a), pipeline.GetBatchShape(a with { Prompt = "b", GuidanceScale = 8, Seed = 9 }));
    }

    private static float MaxDifference(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(a.Length, b.Length);
        float worst = 0;
        for (int i = 0; i < a.Length; i++)
        {
            worst = Math.Max(worst, Math.Abs(a[i] - b[i]));
        }

        return worst;
    }

    /// <summary>Reports on the calling thread (Progress&lt;T&gt; would post to the thread pool).</summary>
    private sealed class SynchronousProgress(Action<GenerationProgress> report) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => report(value);
    }
}
