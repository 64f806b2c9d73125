using System.Diagnostics.Metrics;

namespace Sdxl.Net.Serving;

/// <summary>
/// The server's instruments on the meter <c>Sdxl.Net.Serving</c> (export them with OpenTelemetry's
/// <c>AddMeter("Sdxl.Net.Serving")</c>): queue length, batch size, generated images (a rate gives images/s), step
/// time, job latency and refused jobs.
/// </summary>
internal sealed class ServingMetrics : IDisposable
{
    public const string MeterName = "Sdxl.Net.Serving";
    private readonly Meter _meter;

    public ServingMetrics(IMeterFactory? factory, Func<int> queueLength)
    {
        _meter = factory?.Create(MeterName) ?? new Meter(MeterName);
        _meter.CreateObservableGauge("sdxl.serving.queue.length", queueLength, "{job}", "Jobs waiting in the queue.");
        BatchSize = _meter.CreateHistogram<int>("sdxl.serving.batch.size", "{image}", "Images per UNet batch.");
        Images = _meter.CreateCounter<long>("sdxl.serving.images", "{image}", "Images generated (its rate is images/s).");
        StepDuration = _meter.CreateHistogram<double>("sdxl.serving.step.duration", "s", "Time of one denoising step of a batch.");
        JobDuration = _meter.CreateHistogram<double>("sdxl.serving.job.duration", "s", "Time from submission to the end of a job.");
        Rejected = _meter.CreateCounter<long>("sdxl.serving.jobs.rejected", "{job}", "Jobs refused because the queue was full.");
    }

    public Histogram<int> BatchSize { get; }

    public Counter<long> Images { get; }

    public Histogram<double> StepDuration { get; }

    public Histogram<double> JobDuration { get; }

    public Counter<long> Rejected { get; }

    public void Dispose() => _meter.Dispose();
}
