using System.Diagnostics;

namespace Sdxl.Net.Serving;

/// <summary>
/// The bounded priority queue the workers pull from (higher priority first, then submission order). A worker takes
/// the head job and, when it is batchable, the compatible jobs queued behind it, waiting up to the head job's
/// batching deadline for more. Workers are dedicated threads, so they block on the queue's monitor.
/// </summary>
internal sealed class JobQueue
{
    private readonly object _lock = new();
    private readonly SortedSet<GenerationJob> _jobs = new(JobOrder.Instance);
    private readonly int _capacity;
    private bool _closed;

    public JobQueue(int capacity) => _capacity = capacity;

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _jobs.Count;
            }
        }
    }

    /// <summary>Adds the job; false when the queue is full or closed.</summary>
    public bool TryEnqueue(GenerationJob job)
    {
        lock (_lock)
        {
            if (_closed || _jobs.Count >= _capacity)
            {
                return false;
            }

            _jobs.Add(job);
            Monitor.PulseAll(_lock);
            ReportPositionsLocked();
            return true;
        }
    }

    /// <summary>Removes a queued job (cancellation); false when a worker already took it.</summary>
    public bool TryRemove(GenerationJob job)
    {
        lock (_lock)
        {
            if (!_jobs.Remove(job))
            {
                return false;
            }

            ReportPositionsLocked();
            return true;
        }
    }

    /// <summary>Wakes every waiting worker and makes <see cref="TakeBatch"/> return null once the queue is empty.</summary>
    public List<GenerationJob> Close()
    {
        lock (_lock)
        {
            _closed = true;
            var left = _jobs.ToList();
            _jobs.Clear();
            Monitor.PulseAll(_lock);
            return left;
        }
    }

    /// <summary>
    /// Blocks until a job is queued, then returns it with the compatible jobs (same <see cref="BatchShape"/>, in queue
    /// order) that fit in <paramref name="maxImages"/>, waiting until the head job's submission time plus
    /// <paramref name="maxDelay"/> for the batch to fill. Returns null when the queue is closed.
    /// </summary>
    public List<GenerationJob>? TakeBatch(int maxImages, TimeSpan maxDelay)
    {
        lock (_lock)
        {
            while (_jobs.Count == 0)
            {
                if (_closed)
                {
                    return null;
                }

                Monitor.Wait(_lock);
            }

            var head = _jobs.Min!;
            _jobs.Remove(head);
            var batch = new List<GenerationJob> { head };
            if (head.Shape is not null && maxImages > 1)
            {
                int images = head.Images;
                long deadline = head.SubmittedTimestamp + (long)(maxDelay.TotalSeconds * Stopwatch.Frequency);
                while (true)
                {
                    images = AddCompatibleLocked(head.Shape, batch, images, maxImages);
                    long now = Stopwatch.GetTimestamp();
                    if (images >= maxImages || now >= deadline || _closed)
                    {
                        break;
                    }

                    Monitor.Wait(_lock, TimeSpan.FromSeconds((double)(deadline - now) / Stopwatch.Frequency));
                }
            }

            ReportPositionsLocked();
            return batch;
        }
    }

    private int AddCompatibleLocked(BatchShape shape, List<GenerationJob> batch, int images, int maxImages)
    {
        List<GenerationJob>? taken = null;
        foreach (var job in _jobs)
        {
            if (images >= maxImages)
            {
                break;
            }

            if (shape.Equals(job.Shape) && images + job.Images <= maxImages)
            {
                (taken ??= []).Add(job);
                images += job.Images;
            }
        }

        if (taken is not null)
        {
            foreach (var job in taken)
            {
                _jobs.Remove(job);
                batch.Add(job);
            }
        }

        return images;
    }

    private void ReportPositionsLocked()
    {
        int position = 0;
        foreach (var job in _jobs)
        {
            job.ReportQueued(position++);
        }
    }

    /// <summary>Higher priority first, then earlier submission.</summary>
    private sealed class JobOrder : IComparer<GenerationJob>
    {
        public static readonly JobOrder Instance = new();

        public int Compare(GenerationJob? x, GenerationJob? y)
        {
            if (ReferenceEquals(x, y))
            {
                return 0;
            }

            int byPriority = y!.Priority.CompareTo(x!.Priority);
            return byPriority != 0 ? byPriority : x.Sequence.CompareTo(y.Sequence);
        }
    }
}
