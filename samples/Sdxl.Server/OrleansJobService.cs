using System.Runtime.CompilerServices;
using Sdxl.Net.Orleans;
using Sdxl.Net.Serving;

namespace Sdxl.Server;

/// <summary>
/// Jobs on the cluster (<c>--role gateway</c>): one job grain per request; the gateway's silo hosts the job and queue
/// grains, the workers' silos run them. Admission reads the cluster queue's state, refreshed in the background.
/// </summary>
internal sealed class OrleansJobService(IGrainFactory grains, ILogger<OrleansJobService> logger) : IJobService, IHostedService
{
    private static readonly TimeSpan RefreshInterval = TimeSpan.FromMilliseconds(250);
    private readonly CancellationTokenSource _stop = new();
    private volatile QueueInfo? _queue;
    private Task? _refresh;

    private IImageQueueGrain Queue => grains.GetGrain<IImageQueueGrain>("default");

    public async Task<string> SubmitAsync(ImageJobRequest spec, CancellationToken cancelJob)
    {
        var id = Guid.NewGuid().ToString("N");
        var job = grains.GetGrain<IImageJobGrain>(id);
        var result = await job.Submit(spec);
        if (!result.Accepted)
        {
            throw new QueueFullException(result.QueueLength, result.RetryAfter);
        }

        if (cancelJob.CanBeCanceled)
        {
            cancelJob.Register(() => _ = job.Cancel());
        }

        return id;
    }

    public async Task<JobView?> GetAsync(string id, CancellationToken cancellationToken)
    {
        var status = await grains.GetGrain<IImageJobGrain>(id).GetStatus();
        return status.State == ImageJobState.Unknown ? null : View(status);
    }

    public async IAsyncEnumerable<JobUpdate> WatchAsync(string id, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var e in grains.GetGrain<IImageJobGrain>(id).Watch(0, cancellationToken).WithCancellation(cancellationToken))
        {
            yield return new JobUpdate(e.Kind.ToString().ToLowerInvariant(), e.Sequence, e.Position, e.Step, e.TotalSteps, e.BatchImages, e.Error, Images(e.Images))
            {
                InvalidRequest = e.InvalidRequest,
            };
        }
    }

    public async Task<JobView?> CancelAsync(string id, CancellationToken cancellationToken)
    {
        var job = grains.GetGrain<IImageJobGrain>(id);
        if ((await job.GetStatus()).State == ImageJobState.Unknown)
        {
            return null;
        }

        return View(await job.Cancel());
    }

    public bool TryAdmit(out TimeSpan retryAfter)
    {
        var queue = _queue;
        if (queue is null || queue.QueueLength < queue.MaxQueueLength)
        {
            retryAfter = TimeSpan.Zero;
            return true;
        }

        retryAfter = queue.RetryAfter;
        return false;
    }

    public async Task<object> HealthAsync(CancellationToken cancellationToken)
    {
        var queue = await Queue.GetInfo();
        return new { status = "ok", role = "gateway", workers = queue.Workers.Count, worker_ids = queue.Workers, queue_length = queue.QueueLength, max_queue = queue.MaxQueueLength };
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _refresh = Task.Run(RefreshAsync, CancellationToken.None);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stop.CancelAsync();
        if (_refresh is not null)
        {
            await _refresh.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    private async Task RefreshAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                _queue = await Queue.GetInfo();
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogDebug(e, "Reading the cluster queue failed");
            }

            await Task.Delay(RefreshInterval, _stop.Token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    private static IReadOnlyList<JobImage>? Images(IReadOnlyList<ImageJobImage>? images) =>
        images is null ? null : [.. images.Select(i => new JobImage(i.Index, i.Seed, i.Png))];

    private static JobView View(ImageJobStatus s) =>
        new(s.Id, s.State.ToString().ToLowerInvariant(), s.Position, s.Step, s.TotalSteps, s.Error, Images(s.Images), s.Created) { Worker = s.Worker };
}
