using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace Sdxl.Net.Streaming;

/// <summary>
/// Runs one generation in the background and hands its progress reports to an async enumerator. Leaving the enumeration
/// early (break, dispose, or cancellation) cancels the generation and waits for it to stop, so no work outlives the loop.
/// </summary>
internal static class GenerationStream
{
    public static async IAsyncEnumerable<GenerationUpdate> Run(
        Func<IProgress<GenerationProgress>, CancellationToken, Task<GenerationResult>> generate,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var channel = Channel.CreateUnbounded<GenerationProgress>(new UnboundedChannelOptions { SingleReader = true });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var generation = Task.Run(() => generate(new ChannelProgress(channel.Writer), stop.Token), stop.Token);
        _ = generation.ContinueWith(_ => channel.Writer.TryComplete(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        try
        {
            while (await channel.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                while (channel.Reader.TryRead(out var progress))
                {
                    yield return new GenerationUpdate(progress);
                }
            }

            yield return new GenerationUpdate(await generation.ConfigureAwait(false));
        }
        finally
        {
            if (!generation.IsCompleted)
            {
                // The consumer left early: stop the generation and wait until its thread is out of the pipeline.
                await stop.CancelAsync().ConfigureAwait(false);
                try
                {
                    await generation.ConfigureAwait(false);
                }
                catch (Exception) when (stop.IsCancellationRequested)
                {
                    // Cancelled on the consumer's behalf; whatever the generation ended with, nobody reads it.
                }
            }
        }
    }

    /// <summary>Writes reports straight into the channel on the reporting thread (no synchronization-context hop, order kept).</summary>
    private sealed class ChannelProgress(ChannelWriter<GenerationProgress> writer) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => writer.TryWrite(value);
    }
}
