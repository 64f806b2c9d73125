namespace Sdxl.Net.Serving;

/// <summary>The queue holds <see cref="ServingOptions.MaxQueueLength"/> jobs; the job was not accepted.</summary>
public sealed class QueueFullException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="queueLength">The jobs waiting.</param>
    /// <param name="retryAfter">When a retry is likely to be accepted.</param>
    public QueueFullException(int queueLength, TimeSpan retryAfter)
        : base($"The generation queue is full ({queueLength} jobs waiting); retry in about {Math.Ceiling(retryAfter.TotalSeconds)} s.")
    {
        QueueLength = queueLength;
        RetryAfter = retryAfter;
    }

    /// <summary>The jobs waiting when the job was refused.</summary>
    public int QueueLength { get; }

    /// <summary>An estimate of when the queue will have room (what HTTP's <c>Retry-After</c> carries).</summary>
    public TimeSpan RetryAfter { get; }
}
