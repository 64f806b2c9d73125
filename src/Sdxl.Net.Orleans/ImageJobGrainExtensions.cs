namespace Sdxl.Net.Orleans;

/// <summary>Client-side helpers for <see cref="IImageJobGrain"/>.</summary>
public static class ImageJobGrainExtensions
{
    /// <summary>
    /// Waits for the end of the job; cancelling <paramref name="cancelJob"/> cancels the job, whenever it happens.
    /// </summary>
    /// <remarks>
    /// <see cref="IImageJobGrain.RunToEnd"/> cancels the job through its cross-wire token only once the grain has
    /// started the call: Orleans drops a call that is cancelled while it is still on its way or enqueued, and with it
    /// the grain's registration. This helper then cancels the job explicitly, so a cancel right after the call is not
    /// lost. It throws <see cref="OperationCanceledException"/> after the job has been asked to stop.
    /// </remarks>
    /// <param name="job">The job.</param>
    /// <param name="cancelJob">Cancels the job.</param>
    public static async Task<ImageJobStatus> RunToEndAsync(this IImageJobGrain job, CancellationToken cancelJob = default)
    {
        ArgumentNullException.ThrowIfNull(job);
        try
        {
            return await job.RunToEnd(cancelJob).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancelJob.IsCancellationRequested)
        {
            await job.Cancel().ConfigureAwait(false);
            throw;
        }
    }
}
