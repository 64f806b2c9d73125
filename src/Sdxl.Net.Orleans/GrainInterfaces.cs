namespace Sdxl.Net.Orleans;

/// <summary>One request (key: the job id). Every submitted job ends Done, Failed or Cancelled.</summary>
[Alias("Sdxl.IImageJobGrain")]
public interface IImageJobGrain : IGrainWithStringKey
{
    /// <summary>Queues the job; the result says whether the cluster queue had room.</summary>
    [Alias("Submit")]
    Task<EnqueueResult> Submit(ImageJobRequest request);

    /// <summary>The current status.</summary>
    [Alias("GetStatus")]
    Task<ImageJobStatus> GetStatus();

    /// <summary>The job's events from <paramref name="fromSequence"/> on, ending with its terminal event.</summary>
    [Alias("Watch")]
    IAsyncEnumerable<ImageJobEvent> Watch(int fromSequence, CancellationToken cancellationToken = default);

    /// <summary>
    /// Waits for the end of the job; cancelling <paramref name="cancelJob"/> (the token crosses the wire, e.g. an HTTP
    /// client's disconnect) cancels the job once the grain has started this call. A cancel that comes earlier is
    /// dropped by Orleans together with the call: use <see cref="ImageJobGrainExtensions.RunToEndAsync"/>, which then
    /// cancels the job explicitly.
    /// </summary>
    [Alias("RunToEnd"), ResponseTimeout("01:00:00")]
    Task<ImageJobStatus> RunToEnd(CancellationToken cancelJob);

    /// <summary>Cancels the job: a queued one leaves the queue, a running one stops between steps.</summary>
    [Alias("Cancel")]
    Task<ImageJobStatus> Cancel();

    /// <summary>A worker took the job; false when it is no longer queued (cancelled meanwhile).</summary>
    [Alias("Assign")]
    Task<bool> Assign(string worker, string silo);

    /// <summary>A worker reports an event of its run (started, step, done, failed, cancelled).</summary>
    [Alias("Report")]
    Task Report(string worker, ImageJobEvent update);
}

/// <summary>The cluster queue (key <c>default</c>): jobs in priority order, grouped by batchable shape for the workers.</summary>
[Alias("Sdxl.IImageQueueGrain")]
public interface IImageQueueGrain : IGrainWithStringKey
{
    /// <summary>Adds a job unless the queue is full (<paramref name="force"/>: a job queued again after its worker was lost).</summary>
    [Alias("Enqueue")]
    Task<EnqueueResult> Enqueue(QueuedImageJob job, bool force);

    /// <summary>
    /// For a worker: the head job and the queued jobs of its shape, up to <paramref name="maxImages"/> images; empty
    /// when nothing waits. <paramref name="secondsPerImage"/> is the worker's measured speed (for Retry-After).
    /// </summary>
    [Alias("Take")]
    Task<IReadOnlyList<QueuedImageJob>> Take(string worker, int maxImages, double secondsPerImage);

    /// <summary>Removes a queued job; false when it is not queued.</summary>
    [Alias("Remove")]
    Task<bool> Remove(string jobId);

    /// <summary>The job's position, or null when not queued.</summary>
    [Alias("PositionOf")]
    Task<int?> PositionOf(string jobId);

    /// <summary>Queue length, capacity, live workers and the retry estimate.</summary>
    [Alias("GetInfo")]
    Task<QueueInfo> GetInfo();
}

/// <summary>One device of a GPU silo (key: <c>silo/device</c>): pulls batches from the queue into its local pipeline.</summary>
[Alias("Sdxl.IGpuWorkerGrain")]
public interface IGpuWorkerGrain : IGrainWithStringKey
{
    /// <summary>Starts pulling (idempotent).</summary>
    [Alias("Start")]
    Task Start();

    /// <summary>Cancels a job this worker runs.</summary>
    [Alias("CancelJob")]
    Task CancelJob(string jobId);

    /// <summary>The silo the worker runs on.</summary>
    [Alias("GetSilo")]
    Task<string> GetSilo();
}
