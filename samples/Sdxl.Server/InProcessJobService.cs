using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Sdxl.Net;
using Sdxl.Net.Orleans;
using Sdxl.Net.Serving;

namespace Sdxl.Server;

/// <summary>Jobs on this process's <see cref="GenerationServer"/> (<c>--role all</c>); ended jobs are kept for <see cref="Retention"/>.</summary>
internal sealed class InProcessJobService(GenerationServer server) : IJobService
{
    public static readonly TimeSpan Retention = TimeSpan.FromMinutes(15);
    private readonly ConcurrentDictionary<string, TrackedJob> _jobs = new(StringComparer.Ordinal);

    public Task<string> SubmitAsync(ImageJobRequest spec, CancellationToken cancelJob)
    {
        var job = server.Submit(spec.ToGenerationRequest(), spec.Priority, cancellationToken: cancelJob);
        var tracked = new TrackedJob(job);
        _jobs[job.Id] = tracked;
        _ = job.Completion.ContinueWith(
            async _ =>
            {
                await Task.Delay(Retention).ConfigureAwait(false);
                _jobs.TryRemove(job.Id, out var _);
            },
            CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return Task.FromResult(job.Id);
    }

    public async Task<JobView?> GetAsync(string id, CancellationToken cancellationToken) =>
        _jobs.TryGetValue(id, out var tracked) ? await tracked.ViewAsync(cancellationToken) : null;

    public async IAsyncEnumerable<JobUpdate> WatchAsync(string id, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (!_jobs.TryGetValue(id, out var tracked))
        {
            yield break;
        }

        await foreach (var e in tracked.Job.WatchAsync(cancellationToken))
        {
            var images = e.Kind == JobEventKind.Done ? await tracked.ImagesAsync(cancellationToken) : null;
            yield return new JobUpdate(Name(e.Kind), e.Sequence, e.Position, e.Step, e.TotalSteps, e.BatchImages, e.Error, images);
        }
    }

    public async Task<JobView?> CancelAsync(string id, CancellationToken cancellationToken)
    {
        if (!_jobs.TryGetValue(id, out var tracked))
        {
            return null;
        }

        tracked.Job.Cancel();
        if (tracked.Job.State == JobState.Running)
        {
            // A running job stops before its next step: wait briefly so the answer usually says "cancelled".
            await Task.WhenAny(tracked.Job.Completion, Task.Delay(TimeSpan.FromSeconds(5), cancellationToken));
        }

        return await tracked.ViewAsync(cancellationToken);
    }

    public bool TryAdmit(out TimeSpan retryAfter)
    {
        if (server.QueueLength < server.Options.MaxQueueLength)
        {
            retryAfter = TimeSpan.Zero;
            return true;
        }

        retryAfter = server.EstimateRetryAfter();
        return false;
    }

    public Task<object> HealthAsync(CancellationToken cancellationToken) =>
        Task.FromResult<object>(new { status = "ok", role = "all", workers = server.WorkerCount, queue_length = server.QueueLength, max_queue = server.Options.MaxQueueLength });

    internal static string Name(JobEventKind kind) => kind switch
    {
        JobEventKind.Queued => "queued",
        JobEventKind.Started => "started",
        JobEventKind.Step => "step",
        JobEventKind.Done => "done",
        JobEventKind.Failed => "failed",
        _ => "cancelled",
    };

    internal static string Name(JobState state) => state switch
    {
        JobState.Queued => "queued",
        JobState.Running => "running",
        JobState.Done => "done",
        JobState.Failed => "failed",
        _ => "cancelled",
    };

    private sealed class TrackedJob(GenerationJob job)
    {
        private Task<IReadOnlyList<JobImage>>? _images;

        public GenerationJob Job { get; } = job;

        public Task<IReadOnlyList<JobImage>> ImagesAsync(CancellationToken cancellationToken) =>
            LazyInitializer.EnsureInitialized(ref _images, () => Task.Run(async () => (IReadOnlyList<JobImage>)[.. (await EncodedImage.EncodePngAsync(await Job.Completion)).Select(i => new JobImage(i.Index, i.Seed, i.Png))], CancellationToken.None))
                .WaitAsync(cancellationToken);

        public async Task<JobView> ViewAsync(CancellationToken cancellationToken)
        {
            var events = Job.Events;
            var state = Job.State;
            int? position = null;
            int step = 0, total = 0;
            string? error = null;
            foreach (var e in events)
            {
                switch (e.Kind)
                {
                    case JobEventKind.Queued:
                        position = e.Position;
                        break;
                    case JobEventKind.Step:
                        (step, total) = (e.Step, e.TotalSteps);
                        break;
                    case JobEventKind.Failed:
                        error = e.Error;
                        break;
                }
            }

            var images = state == JobState.Done ? await ImagesAsync(cancellationToken) : null;
            return new JobView(Job.Id, Name(state), state == JobState.Queued ? position : null, step, total, error, images, Job.SubmittedAt);
        }
    }
}
