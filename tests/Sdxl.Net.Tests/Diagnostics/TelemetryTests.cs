using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Sdxl.Net.Diagnostics;

namespace Sdxl.Net.Tests.Diagnostics;

/// <summary>What an OpenTelemetry exporter would receive from the "Sdxl.Net" activity source and meter.</summary>
public sealed class TelemetryTests
{
    [Fact]
    public async Task A_generation_gives_a_span_with_phase_children_a_duration_and_a_step_rate()
    {
        var activities = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == SdxlTelemetry.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activities.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);

        var measurements = new ConcurrentQueue<(string Name, double Value, string? Tag)>();
        using var meters = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == SdxlTelemetry.Name)
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        meters.SetMeasurementEventCallback<double>((instrument, value, tags, _) =>
            measurements.Enqueue((instrument.Name, value, tags.Length > 0 ? tags[0].Value?.ToString() : null)));
        meters.Start();

        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).UseCpu().Build();
        var result = await pipeline.GenerateAsync(new GenerationRequest { Prompt = "telemetry", Width = 64, Height = 64, Steps = 4, Seed = 3 });

        // Other tests may generate concurrently: find this generation's span by its tags.
        var generation = Assert.Single(activities, a => a.OperationName == "sdxl.generate" && Equals(a.GetTagItem("sdxl.steps"), 4) && activities.Any(c => c.ParentSpanId == a.SpanId));
        Assert.Equal("ok", generation.GetTagItem("sdxl.outcome"));
        var phases = activities.Where(a => a.ParentSpanId == generation.SpanId).OrderBy(a => a.StartTimeUtc).Select(a => a.OperationName).ToList();
        Assert.Equal(["sdxl.encoding_prompts", "sdxl.denoising", "sdxl.decoding"], phases);
        Assert.Contains(measurements, m => m.Name == SdxlTelemetry.GenerationDurationName && m.Tag == "ok" && m.Value > 0);
        Assert.Contains(measurements, m => m.Name == SdxlTelemetry.StepsPerSecondName && m.Tag == "denoising" && m.Value > 0);
        Assert.Single(result.Images);
    }

    [Fact]
    public async Task A_cancelled_generation_is_recorded_as_cancelled()
    {
        var outcomes = new ConcurrentQueue<string?>();
        using var meters = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Name == SdxlTelemetry.GenerationDurationName)
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        meters.SetMeasurementEventCallback<double>((_, _, tags, _) => outcomes.Enqueue(tags[0].Value?.ToString()));
        meters.Start();

        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).UseCpu().Build();
        using var cts = new CancellationTokenSource();
        var progress = new SynchronousProgress(p =>
        {
            if (p.Phase == GenerationPhase.Denoising)
            {
                cts.Cancel();
            }
        });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            pipeline.GenerateAsync(new GenerationRequest { Prompt = "x", Width = 64, Height = 64, Steps = 20, Seed = 1 }, progress, cts.Token));
        Assert.Contains("cancelled", outcomes);
    }

    private sealed class SynchronousProgress(Action<GenerationProgress> report) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => report(value);
    }
}
