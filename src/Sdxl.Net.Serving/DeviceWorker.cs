using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Sdxl.Net.Serving;

/// <summary>
/// One device's worker: a dedicated thread that pulls batches from the queue and runs them on the device's pipeline,
/// so ONNX Runtime never runs on the ASP.NET Core or Orleans schedulers (or the thread pool).
/// </summary>
internal sealed class DeviceWorker
{
    private readonly SdxlPipeline _pipeline;
    private readonly JobQueue _queue;
    private readonly ServingOptions _options;
    private readonly ServingMetrics _metrics;
    private readonly Action<TimeSpan, int> _batchFinished;
    private readonly ILogger _logger;
    private readonly Thread _thread;
    private readonly CancellationTokenSource _stopping = new();

    public DeviceWorker(string name, SdxlPipeline pipeline, JobQueue queue, ServingOptions options, ServingMetrics metrics, Action<TimeSpan, int> batchFinished, ILogger logger)
    {
        Name = name;
        _pipeline = pipeline;
        _queue = queue;
        _options = options;
        _metrics = metrics;
        _batchFinished = batchFinished;
        _logger = logger;
        _thread = new Thread(Loop) { IsBackground = true, Name = $"Sdxl.Net worker {name}" };
    }

    public string Name { get; }

    public void Start() => _thread.Start();

    /// <summary>Stops the running batch (its jobs end Cancelled) and waits for the thread.</summary>
    public void Stop(bool cancelRunning)
    {
        if (cancelRunning)
        {
            _stopping.Cancel();
        }

        _thread.Join();
    }

    private void Loop()
    {
        while (_queue.TakeBatch(_options.MaxBatchSize, _options.MaxBatchDelay) is { } taken)
        {
            var batch = new List<GenerationJob>(taken.Count);
            int images = 0;
            foreach (var job in taken)
            {
                if (job.CancellationToken.IsCancellationRequested)
                {
                    job.MarkCancelled();
                }
                else
                {
                    batch.Add(job);
                    images += job.Images;
                }
            }

            foreach (var job in batch)
            {
                job.TryStart(images);
            }

            if (batch.Count > 0)
            {
                Run(batch, images);
            }
        }
    }

    private void Run(List<GenerationJob> batch, int images)
    {
        var watch = Stopwatch.StartNew();
        var steps = new StepTimer(_metrics);
        try
        {
            if (batch.Count == 1 && batch[0].Shape is null)
            {
                // Not batchable (an input image, or the refiner): the request's own full path.
                var job = batch[0];
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(job.CancellationToken, _stopping.Token);
                var result = _pipeline.GenerateOnCallingThread(job.Request, new JobProgress(job, steps), linked.Token);
                Finish(job, result);
            }
            else
            {
                var rows = new List<BatchRow>(batch.Count);
                for (int i = 0; i < batch.Count; i++)
                {
                    var job = batch[i];
                    rows.Add(new BatchRow(job.Request) { Progress = new JobProgress(job, i == 0 ? steps : null), CancellationToken = job.CancellationToken });
                }

                var outcomes = _pipeline.GenerateBatchOnCallingThread(rows, _stopping.Token);
                for (int i = 0; i < batch.Count; i++)
                {
                    if (outcomes[i].Result is { } result)
                    {
                        Finish(batch[i], result);
                    }
                    else if (outcomes[i].IsCancelled)
                    {
                        batch[i].MarkCancelled();
                    }
                    else
                    {
                        batch[i].Fail(outcomes[i].Error!);
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
            foreach (var job in batch)
            {
                job.MarkCancelled();
            }
        }
        catch (Exception e)
        {
            _logger.LogError(e, "Worker {Worker}: a batch of {Jobs} jobs failed", Name, batch.Count);
            foreach (var job in batch)
            {
                job.Fail(e);
            }
        }

        _metrics.BatchSize.Record(images);
        _batchFinished(watch.Elapsed, images);
    }

    private void Finish(GenerationJob job, GenerationResult result)
    {
        if (job.Complete(result))
        {
            _metrics.Images.Add(result.Images.Count);
            _metrics.JobDuration.Record(Stopwatch.GetElapsedTime(job.SubmittedTimestamp).TotalSeconds);
        }
    }

    /// <summary>Step time of a batch, measured between the first row's step reports.</summary>
    private sealed class StepTimer(ServingMetrics metrics)
    {
        private long _last;

        // The first step's time would include prompt encoding: timing starts there.
        public void Step(int step)
        {
            long now = Stopwatch.GetTimestamp();
            if (step > 1)
            {
                metrics.StepDuration.Record((double)(now - _last) / Stopwatch.Frequency);
            }

            _last = now;
        }
    }

    /// <summary>Turns the pipeline's progress into the job's step events (on the worker thread, synchronously).</summary>
    private sealed class JobProgress(GenerationJob job, StepTimer? timer) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value)
        {
            if (value.Phase is GenerationPhase.Denoising or GenerationPhase.Refining && value.Step > 0)
            {
                timer?.Step(value.Step);
                job.ReportStep(value.Step, value.TotalSteps);
            }
        }
    }
}
