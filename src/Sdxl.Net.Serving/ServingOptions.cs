namespace Sdxl.Net.Serving;

/// <summary>Settings of a <see cref="GenerationServer"/>.</summary>
public sealed class ServingOptions
{
    /// <summary>
    /// The most images one UNet batch holds (1 turns batching off). Compatible jobs (<see cref="SdxlPipeline.GetBatchShape"/>)
    /// are combined up to this many images; a job is never split.
    /// </summary>
    public int MaxBatchSize { get; set; } = 4;

    /// <summary>
    /// How long a job may wait, after it was submitted, for compatible jobs to join its batch (Triton's
    /// <c>max_queue_delay</c>). Zero runs whatever is queued at once.
    /// </summary>
    public TimeSpan MaxBatchDelay { get; set; } = TimeSpan.FromMilliseconds(20);

    /// <summary>Jobs that may wait in the queue (not counting running ones); beyond it <see cref="QueueFullException"/>.</summary>
    public int MaxQueueLength { get; set; } = 64;

    internal void Validate()
    {
        if (MaxBatchSize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxBatchSize), MaxBatchSize, "MaxBatchSize must be at least 1 (1 turns batching off).");
        }

        if (MaxBatchDelay < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxBatchDelay), MaxBatchDelay, "MaxBatchDelay must not be negative.");
        }

        if (MaxQueueLength < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxQueueLength), MaxQueueLength, "MaxQueueLength must be at least 1.");
        }
    }
}
