using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Sdxl.Net.Serving;

/// <summary>
/// A request accepted by a <see cref="GenerationServer"/>: its state, its ordered events (kept, so a late watcher sees
/// them all) and its completion. Every accepted job ends Done, Failed or Cancelled.
/// </summary>
public sealed class GenerationJob
{
    private readonly object _lock = new();
    private readonly List<JobEvent> _events = [];
    private readonly TaskCompletionSource<GenerationResult> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _cancellation = new();
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _lastPosition = -1;

    internal GenerationJob(string id, GenerationRequest request, int priority, BatchShape? shape, long sequence)
    {
        Id = id;
        Request = request;
        Priority = priority;
        Shape = shape;
        Sequence = sequence;
        SubmittedAt = DateTimeOffset.UtcNow;
        SubmittedTimestamp = Stopwatch.GetTimestamp();
    }

    /// <summary>The job's id.</summary>
    public string Id { get; }

    /// <summary>The request.</summary>
    public GenerationRequest Request { get; }

    /// <summary>The priority: higher runs first; equal priorities run in submission order.</summary>
    public int Priority { get; }

    /// <summary>When the job was accepted.</summary>
    public DateTimeOffset SubmittedAt { get; }

    /// <summary>The current state.</summary>
    public JobState State { get; private set; } = JobState.Queued;

    /// <summary>
    /// Completes with the result, or faults: <see cref="OperationCanceledException"/> when cancelled, the generation's
    /// exception when it failed.
    /// </summary>
    public Task<GenerationResult> Completion => _completion.Task;

    /// <summary>The events so far, in order.</summary>
    public IReadOnlyList<JobEvent> Events
    {
        get
        {
            lock (_lock)
            {
                return [.. _events];
            }
        }
    }

    internal BatchShape? Shape { get; }

    internal long Sequence { get; }

    internal long SubmittedTimestamp { get; }

    internal int Images => Request.BatchSize;

    internal CancellationToken CancellationToken => _cancellation.Token;

    /// <summary>
    /// Cancels the job: a queued job leaves the queue at once; a running one stops before its next denoising step
    /// (the other jobs of its batch continue). Does nothing once the job has ended.
    /// </summary>
    public void Cancel()
    {
        try
        {
            _cancellation.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>
    /// The job's events from the first, then each new one as it happens, ending after the terminal event (Done,
    /// Failed or Cancelled).
    /// </summary>
    public async IAsyncEnumerable<JobEvent> WatchAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        int next = 0;
        while (true)
        {
            JobEvent? item = null;
            Task changed;
            lock (_lock)
            {
                if (next < _events.Count)
                {
                    item = _events[next++];
                }

                changed = _changed.Task;
            }

            if (item is not null)
            {
                yield return item;
                if (item.IsTerminal)
                {
                    yield break;
                }

                continue;
            }

            await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    internal void ReportQueued(int position)
    {
        lock (_lock)
        {
            if (State != JobState.Queued || position == _lastPosition)
            {
                return;
            }

            _lastPosition = position;
            AddLocked(new JobEvent(JobEventKind.Queued, _events.Count) { Position = position });
        }
    }

    internal bool TryStart(int batchImages)
    {
        lock (_lock)
        {
            if (State != JobState.Queued)
            {
                return false;
            }

            State = JobState.Running;
            AddLocked(new JobEvent(JobEventKind.Started, _events.Count) { BatchImages = batchImages });
            return true;
        }
    }

    internal void ReportStep(int step, int total)
    {
        lock (_lock)
        {
            if (State == JobState.Running)
            {
                AddLocked(new JobEvent(JobEventKind.Step, _events.Count) { Step = step, TotalSteps = total });
            }
        }
    }

    internal bool Complete(GenerationResult result) =>
        End(JobState.Done, seq => new JobEvent(JobEventKind.Done, seq) { Result = result }, () => _completion.TrySetResult(result));

    internal bool Fail(Exception error) =>
        End(JobState.Failed, seq => new JobEvent(JobEventKind.Failed, seq) { Error = error.Message }, () => _completion.TrySetException(error));

    internal bool MarkCancelled() =>
        End(JobState.Cancelled, seq => new JobEvent(JobEventKind.Cancelled, seq), () => _completion.TrySetCanceled(_cancellation.Token.IsCancellationRequested ? _cancellation.Token : default));

    private bool End(JobState state, Func<int, JobEvent> create, Action complete)
    {
        lock (_lock)
        {
            if (State is JobState.Done or JobState.Failed or JobState.Cancelled)
            {
                return false;
            }

            State = state;
            AddLocked(create(_events.Count));
        }

        complete();
        return true;
    }

    private void AddLocked(JobEvent e)
    {
        _events.Add(e with { At = DateTimeOffset.UtcNow });
        var changed = _changed;
        _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        changed.TrySetResult();
    }
}
