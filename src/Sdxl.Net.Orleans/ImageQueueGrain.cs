using System.Diagnostics;
using Microsoft.Extensions.Options;

namespace Sdxl.Net.Orleans;

/// <summary>
/// The cluster queue: jobs in priority order (then submission order), bounded by
/// <see cref="SdxlClusterOptions.MaxQueueLength"/>. Workers take the head job together with the queued jobs of its
/// shape, so that one pull can become one UNet batch. In memory: it lives on a control silo (see docs/serving.md).
/// </summary>
[ControlSiloPlacementFilter]
internal sealed class ImageQueueGrain(IOptions<SdxlClusterOptions> options) : Grain, IImageQueueGrain
{
    private static readonly TimeSpan WorkerSeenWindow = TimeSpan.FromSeconds(10);
    private readonly SortedSet<Entry> _order = new(EntryOrder.Instance);
    private readonly Dictionary<string, Entry> _byJob = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (long Seen, double SecondsPerImage)> _workers = new(StringComparer.Ordinal);

    public Task<EnqueueResult> Enqueue(QueuedImageJob job, bool force)
    {
        if (_byJob.ContainsKey(job.JobId))
        {
            return Task.FromResult(new EnqueueResult(true, Position(job.JobId) ?? 0, _order.Count, TimeSpan.Zero));
        }

        if (!force && _order.Count >= options.Value.MaxQueueLength)
        {
            return Task.FromResult(new EnqueueResult(false, -1, _order.Count, RetryAfter()));
        }

        var entry = new Entry(job, job.Request.ShapeKey());
        _order.Add(entry);
        _byJob.Add(job.JobId, entry);
        return Task.FromResult(new EnqueueResult(true, Position(job.JobId) ?? 0, _order.Count, TimeSpan.Zero));
    }

    public Task<IReadOnlyList<QueuedImageJob>> Take(string worker, int maxImages, double secondsPerImage)
    {
        _workers[worker] = (Stopwatch.GetTimestamp(), secondsPerImage);
        if (_order.Count == 0)
        {
            return Task.FromResult<IReadOnlyList<QueuedImageJob>>([]);
        }

        var head = _order.Min!;
        var taken = new List<Entry> { head };
        int images = head.Job.Request.Images;
        foreach (var entry in _order)
        {
            if (images >= maxImages)
            {
                break;
            }

            if (!ReferenceEquals(entry, head) && entry.Shape == head.Shape && images + entry.Job.Request.Images <= maxImages)
            {
                taken.Add(entry);
                images += entry.Job.Request.Images;
            }
        }

        foreach (var entry in taken)
        {
            _order.Remove(entry);
            _byJob.Remove(entry.Job.JobId);
        }

        return Task.FromResult<IReadOnlyList<QueuedImageJob>>([.. taken.Select(e => e.Job)]);
    }

    public Task<bool> Remove(string jobId)
    {
        if (!_byJob.Remove(jobId, out var entry))
        {
            return Task.FromResult(false);
        }

        _order.Remove(entry);
        return Task.FromResult(true);
    }

    public Task<int?> PositionOf(string jobId) => Task.FromResult(Position(jobId));

    public Task<QueueInfo> GetInfo() => Task.FromResult(new QueueInfo(_order.Count, options.Value.MaxQueueLength, LiveWorkers().Select(w => w.Key).ToList(), RetryAfter()));

    private int? Position(string jobId)
    {
        if (!_byJob.TryGetValue(jobId, out var target))
        {
            return null;
        }

        int position = 0;
        foreach (var entry in _order)
        {
            if (ReferenceEquals(entry, target))
            {
                return position;
            }

            position++;
        }

        return null;
    }

    private IEnumerable<KeyValuePair<string, (long Seen, double SecondsPerImage)>> LiveWorkers() =>
        _workers.Where(w => Stopwatch.GetElapsedTime(w.Value.Seen) < WorkerSeenWindow);

    // The queued images over the live workers' combined speed; at least one second.
    private TimeSpan RetryAfter()
    {
        var live = LiveWorkers().ToList();
        double imagesPerSecond = live.Sum(w => 1 / Math.Max(w.Value.SecondsPerImage, 1e-3));
        int images = _order.Sum(e => e.Job.Request.Images);
        double seconds = imagesPerSecond > 0 ? images / imagesPerSecond : images;
        return TimeSpan.FromSeconds(Math.Max(1, Math.Ceiling(seconds)));
    }

    private sealed record Entry(QueuedImageJob Job, string Shape);

    private sealed class EntryOrder : IComparer<Entry>
    {
        public static readonly EntryOrder Instance = new();

        public int Compare(Entry? x, Entry? y)
        {
            if (ReferenceEquals(x, y))
            {
                return 0;
            }

            int byPriority = y!.Job.Request.Priority.CompareTo(x!.Job.Request.Priority);
            return byPriority != 0 ? byPriority : x.Job.Sequence.CompareTo(y.Job.Sequence);
        }
    }
}
