using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Concurrency;
using Orleans.Runtime;

namespace Sdxl.Net.Orleans;

/// <summary>
/// One request: its state and ordered events, on a control silo. A job whose worker's silo dies is queued again
/// (it restarts from its first step: the same seed gives the same image) up to <see cref="SdxlClusterOptions.MaxRequeues"/>
/// times, then fails with a retriable error. A queued job that the queue no longer holds (the queue's silo died) is
/// queued again too: the job grain, not the queue, is the record of what was accepted.
/// </summary>
[ControlSiloPlacementFilter, Reentrant]
internal sealed class ImageJobGrain(IClusterMembershipService membership, IOptions<SdxlClusterOptions> options, ILogger<ImageJobGrain> logger) : Grain, IImageJobGrain
{
    private readonly List<ImageJobEvent> _events = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ImageJobRequest? _request;
    private ImageJobState _state = ImageJobState.Unknown;
    private DateTimeOffset _created;
    private string? _worker;
    private SiloAddress? _workerSilo;
    private int _step, _totalSteps, _requeues, _missingFromQueue;
    private string? _error;
    private bool _invalidRequest;
    private IReadOnlyList<ImageJobImage>? _images;
    private IGrainTimer? _watchdog;

    private string Id => this.GetPrimaryKeyString();

    private IImageQueueGrain Queue => GrainFactory.GetGrain<IImageQueueGrain>("default");

    public async Task<EnqueueResult> Submit(ImageJobRequest request)
    {
        if (_state != ImageJobState.Unknown)
        {
            return new EnqueueResult(true, 0, 0, TimeSpan.Zero);
        }

        // Queued before the call: a worker may take the job (and assign it here) before the queue's answer arrives.
        _request = request;
        _created = DateTimeOffset.UtcNow;
        _state = ImageJobState.Queued;
        Add(new ImageJobEvent(ImageJobEventKind.Queued, 0));
        var result = await Queue.Enqueue(new QueuedImageJob(Id, request, _created.UtcTicks), force: false);
        if (!result.Accepted)
        {
            _request = null;
            _state = ImageJobState.Unknown;
            _events.Clear();
            DeactivateOnIdle();
        }
        else
        {
            if (_events.Count > 0 && _events[0] is { Kind: ImageJobEventKind.Queued, Position: null } first)
            {
                _events[0] = first with { Position = result.Position };
            }

            StartWatchdog();
        }

        return result;
    }

    public async Task<ImageJobStatus> GetStatus() => Status(_state == ImageJobState.Queued ? await TryPositionAsync() : null);

    // The queue's answer, or null while it cannot be reached (its silo died and it is being placed again): a status
    // request then still answers, without a position, instead of failing.
    private async Task<int?> TryPositionAsync()
    {
        try
        {
            return await Queue.PositionOf(Id);
        }
        catch (Exception e) when (e is OrleansException or TimeoutException)
        {
            logger.LogDebug(e, "Job {Job}: the queue did not answer", Id);
            return null;
        }
    }

    public async IAsyncEnumerable<ImageJobEvent> Watch(int fromSequence, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        int next = Math.Max(0, fromSequence);
        while (true)
        {
            while (next < _events.Count)
            {
                var e = _events[next++];
                yield return e;
                if (e.IsTerminal)
                {
                    yield break;
                }
            }

            if (_state == ImageJobState.Unknown)
            {
                yield break;
            }

            await _changed.Task.WaitAsync(cancellationToken);
        }
    }

    public async Task<ImageJobStatus> RunToEnd(CancellationToken cancelJob)
    {
        var self = this.AsReference<IImageJobGrain>();
        using var registration = cancelJob.Register(() => _ = self.Cancel());
        while (!IsEnded && _state != ImageJobState.Unknown)
        {
            await _changed.Task;
        }

        return Status(null);
    }

    public async Task<ImageJobStatus> Cancel()
    {
        switch (_state)
        {
            case ImageJobState.Queued:
                if (await Queue.Remove(Id))
                {
                    End(ImageJobState.Cancelled, new ImageJobEvent(ImageJobEventKind.Cancelled, 0));
                }

                break;
            case ImageJobState.Running when _worker is not null:
                if (!WorkerAlive())
                {
                    End(ImageJobState.Cancelled, new ImageJobEvent(ImageJobEventKind.Cancelled, 0));
                    break;
                }

                await GrainFactory.GetGrain<IGpuWorkerGrain>(_worker).CancelJob(Id);

                // The worker stops before its next step and reports it; wait briefly so the answer says so.
                var deadline = Task.Delay(TimeSpan.FromSeconds(5));
                while (!IsEnded && await Task.WhenAny(_changed.Task, deadline) != deadline)
                {
                }

                break;
        }

        return Status(null);
    }

    public Task<bool> Assign(string worker, string silo)
    {
        if (_state != ImageJobState.Queued)
        {
            return Task.FromResult(false);
        }

        _state = ImageJobState.Running;
        _worker = worker;
        _workerSilo = SiloAddress.FromParsableString(silo);
        _missingFromQueue = 0;
        StartWatchdog();
        return Task.FromResult(true);
    }

    public Task Report(string worker, ImageJobEvent update)
    {
        if (_state != ImageJobState.Running || worker != _worker)
        {
            // A report from a worker the job was taken away from (lost, then back), or after the end.
            return Task.CompletedTask;
        }

        switch (update.Kind)
        {
            case ImageJobEventKind.Step:
                (_step, _totalSteps) = (update.Step, update.TotalSteps);
                Add(update);
                break;
            case ImageJobEventKind.Started:
                Add(update with { Worker = worker });
                break;
            case ImageJobEventKind.Done:
                _images = update.Images;
                End(ImageJobState.Done, update);
                break;
            case ImageJobEventKind.Failed:
                _error = update.Error;
                _invalidRequest = update.InvalidRequest;
                End(ImageJobState.Failed, update);
                break;
            case ImageJobEventKind.Cancelled:
                End(ImageJobState.Cancelled, update);
                break;
        }

        return Task.CompletedTask;
    }

    private bool IsEnded => _state is ImageJobState.Done or ImageJobState.Failed or ImageJobState.Cancelled;

    private bool WorkerAlive() =>
        _workerSilo is not null && membership.CurrentSnapshot.GetSiloStatus(_workerSilo) is not (SiloStatus.Dead or SiloStatus.None);

    private void StartWatchdog() =>
        _watchdog ??= this.RegisterGrainTimer(CheckAsync, options.Value.WorkerCheckInterval, options.Value.WorkerCheckInterval);

    private Task CheckAsync() => _state switch
    {
        ImageJobState.Queued => CheckQueueAsync(),
        ImageJobState.Running => CheckWorkerAsync(),
        _ => Task.CompletedTask,
    };

    // A queued job the queue does not know is queued again. Two checks in a row must miss it: between a worker's Take
    // (which removes the job from the queue) and its Assign here, the job is legitimately in neither place. Should
    // both happen, Assign decides: the first worker to assign runs the job, the other drops it.
    private async Task CheckQueueAsync()
    {
        EnqueueResult result;
        try
        {
            if (await Queue.PositionOf(Id) is not null)
            {
                _missingFromQueue = 0;
                return;
            }

            if (++_missingFromQueue < 2 || _state != ImageJobState.Queued)
            {
                return;
            }

            result = await Queue.Enqueue(new QueuedImageJob(Id, _request!, _created.UtcTicks), force: true);
        }
        catch (Exception e) when (e is OrleansException or TimeoutException)
        {
            logger.LogDebug(e, "Job {Job}: the queue did not answer", Id);
            return;
        }

        _missingFromQueue = 0;
        if (_state == ImageJobState.Queued)
        {
            logger.LogWarning("Job {Job}: the queue had lost it; queued again", Id);
            Add(new ImageJobEvent(ImageJobEventKind.Queued, 0) { Position = result.Position, Error = "the queue had lost the job; queued again" });
        }
    }

    private async Task CheckWorkerAsync()
    {
        if (WorkerAlive())
        {
            return;
        }

        var lost = _worker;
        _worker = null;
        _workerSilo = null;
        (_step, _totalSteps) = (0, 0);
        if (++_requeues > options.Value.MaxRequeues)
        {
            _error = $"The job lost its worker {_requeues} times (last: {lost}); retry it.";
            End(ImageJobState.Failed, new ImageJobEvent(ImageJobEventKind.Failed, 0) { Error = _error });
            return;
        }

        logger.LogWarning("Job {Job}: worker {Worker} was lost; queued again", Id, lost);
        _state = ImageJobState.Queued;
        _missingFromQueue = 0;
        EnqueueResult result;
        try
        {
            result = await Queue.Enqueue(new QueuedImageJob(Id, _request!, _created.UtcTicks), force: true);
        }
        catch (Exception e) when (e is OrleansException or TimeoutException)
        {
            // The queue is being placed again (its silo died too): the queued-state check enqueues the job once it answers.
            logger.LogWarning(e, "Job {Job}: worker {Worker} was lost and the queue did not answer; it is queued again once the queue does", Id, lost);
            Add(new ImageJobEvent(ImageJobEventKind.Queued, 0) { Error = $"worker {lost} was lost; queued again" });
            return;
        }

        Add(new ImageJobEvent(ImageJobEventKind.Queued, 0) { Position = result.Position, Error = $"worker {lost} was lost; queued again" });
    }

    private void End(ImageJobState state, ImageJobEvent update)
    {
        _state = state;
        _watchdog?.Dispose();
        _watchdog = null;
        Add(update);
    }

    private void Add(ImageJobEvent update)
    {
        _events.Add(update with { Sequence = _events.Count, At = DateTimeOffset.UtcNow });
        var changed = _changed;
        _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        changed.TrySetResult();
    }

    private ImageJobStatus Status(int? position) => new()
    {
        Id = Id,
        State = _state,
        Position = position,
        Step = _step,
        TotalSteps = _totalSteps,
        Error = _error,
        Images = _images,
        Created = _created,
        Worker = _worker,
        Requeues = _requeues,
        InvalidRequest = _invalidRequest,
    };
}
