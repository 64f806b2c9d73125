using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Placement;
using Orleans.Runtime;
using Sdxl.Net.Serving;

namespace Sdxl.Net.Orleans;

/// <summary>
/// One device of a GPU silo. It pulls work only while its local server has nothing waiting (so a GPU holds at most one
/// running batch and one forming), submits the pulled jobs to the device's <see cref="GenerationServer"/> (whose worker
/// thread runs ONNX Runtime, off the grain scheduler) and reports their events to the job grains.
/// </summary>
[GpuSiloPlacementFilter, PreferLocalPlacement, KeepAlive]
internal sealed class GpuWorkerGrain(LocalGpuWorkers local, ILocalSiloDetails silo, IOptions<SdxlClusterOptions> options, ILogger<GpuWorkerGrain> logger)
    : Grain, IGpuWorkerGrain
{
    private readonly ConcurrentDictionary<string, GenerationJob> _running = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, bool> _cancelledByJob = new(StringComparer.Ordinal);
    private CancellationTokenSource? _stop;
    private Task? _loop;

    private string WorkerId => this.GetPrimaryKeyString();

    public Task Start()
    {
        if (_loop is not null)
        {
            return Task.CompletedTask;
        }

        var key = WorkerId;
        int slash = key.LastIndexOf('/');
        var siloPart = slash > 0 ? key[..slash] : string.Empty;
        if (siloPart != silo.SiloAddress.ToParsableString())
        {
            throw new InvalidOperationException($"GPU worker '{key}' was placed on silo {silo.SiloAddress}, not on its own silo; it must be started by its silo.");
        }

        var server = local.Get(key[(slash + 1)..]);
        logger.LogInformation("GPU worker {Worker} starts", key);
        _stop = new CancellationTokenSource();
        var stop = _stop.Token;

        // Task.Run leaves the grain scheduler: the loop's waits and grain calls never block this activation. What it
        // needs from the activation is read here, on the grain's turn.
        var queue = GrainFactory.GetGrain<IImageQueueGrain>("default");
        var grains = GrainFactory;
        _loop = Task.Run(() => PullAsync(server, queue, grains, key, stop), CancellationToken.None);
        _loop.ContinueWith(t => logger.LogError(t.Exception, "GPU worker {Worker} stopped pulling", key), TaskContinuationOptions.OnlyOnFaulted);
        return Task.CompletedTask;
    }

    public Task CancelJob(string jobId)
    {
        if (_running.TryGetValue(jobId, out var job))
        {
            _cancelledByJob[jobId] = true;
            job.Cancel();
        }

        return Task.CompletedTask;
    }

    public Task<string> GetSilo() => Task.FromResult(silo.SiloAddress.ToParsableString());

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (_stop is not null)
        {
            await _stop.CancelAsync();
            foreach (var job in _running.Values)
            {
                job.Cancel();
            }
        }
    }

    private async Task PullAsync(GenerationServer server, IImageQueueGrain queue, IGrainFactory grains, string workerId, CancellationToken stop)
    {
        var siloAddress = silo.SiloAddress.ToParsableString();
        var poll = options.Value.PollInterval;
        logger.LogInformation("GPU worker {Worker} pulls from the cluster queue", workerId);
        while (!stop.IsCancellationRequested)
        {
            try
            {
                if (server.QueueLength > 0)
                {
                    await Task.Delay(poll, stop);
                    continue;
                }

                var jobs = await queue.Take(workerId, server.Options.MaxBatchSize, server.TimePerImage.TotalSeconds);
                if (jobs.Count == 0)
                {
                    await Task.Delay(poll, stop);
                    continue;
                }

                foreach (var queued in jobs)
                {
                    var grain = grains.GetGrain<IImageJobGrain>(queued.JobId);
                    if (!await grain.Assign(workerId, siloAddress))
                    {
                        continue;
                    }

                    GenerationJob job;
                    try
                    {
                        job = server.Submit(queued.Request.ToGenerationRequest(), queued.Request.Priority, queued.JobId);
                    }
                    catch (Exception e) when (e is ArgumentException or QueueFullException)
                    {
                        await grain.Report(workerId, new ImageJobEvent(ImageJobEventKind.Failed, 0) { Error = e.Message, InvalidRequest = e is ArgumentException });
                        continue;
                    }

                    _running[queued.JobId] = job;
                    _ = ForwardAsync(job, grain, workerId);
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                logger.LogWarning(e, "GPU worker {Worker}: pulling work failed; retrying", workerId);
                await Task.Delay(TimeSpan.FromSeconds(1), CancellationToken.None);
            }
        }
    }

    // The local job's events, as the job grain's (the local queue's own positions are not reported).
    private async Task ForwardAsync(GenerationJob job, IImageJobGrain grain, string workerId)
    {
        try
        {
            await foreach (var e in job.WatchAsync())
            {
                ImageJobEvent? update = e.Kind switch
                {
                    JobEventKind.Started => new ImageJobEvent(ImageJobEventKind.Started, 0) { BatchImages = e.BatchImages },
                    JobEventKind.Step => new ImageJobEvent(ImageJobEventKind.Step, 0) { Step = e.Step, TotalSteps = e.TotalSteps },
                    JobEventKind.Done => new ImageJobEvent(ImageJobEventKind.Done, 0)
                    {
                        Images = [.. (await EncodedImage.EncodePngAsync(e.Result!)).Select(i => new ImageJobImage(i.Index, i.Seed, i.Png))],
                    },
                    JobEventKind.Failed => new ImageJobEvent(ImageJobEventKind.Failed, 0) { Error = e.Error },
                    // Only a cancellation the job asked for ends it; one from this silo's shutdown leaves the job to
                    // its grain, which queues it again once the silo is gone.
                    JobEventKind.Cancelled when _cancelledByJob.ContainsKey(job.Id) => new ImageJobEvent(ImageJobEventKind.Cancelled, 0),
                    _ => null,
                };
                if (update is not null)
                {
                    await grain.Report(workerId, update);
                }
            }
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "GPU worker {Worker}: reporting job {Job} failed", workerId, job.Id);
        }
        finally
        {
            _running.TryRemove(job.Id, out _);
            _cancelledByJob.TryRemove(job.Id, out _);
        }
    }
}

/// <summary>This silo's devices: one <see cref="GenerationServer"/> (one pipeline, one worker thread) per device.</summary>
internal sealed class LocalGpuWorkers(IOptions<SdxlClusterOptions> options, ILoggerFactory loggerFactory) : IDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<GenerationServer>> _servers = new(StringComparer.Ordinal);

    public GenerationServer Get(string device)
    {
        var o = options.Value;
        if (!o.Devices.Contains(device))
        {
            throw new ArgumentException($"This silo has no device '{device}'; it has {string.Join(", ", o.Devices)}.", nameof(device));
        }

        return _servers.GetOrAdd(device, d => new Lazy<GenerationServer>(() =>
        {
            // The local queue holds what one pull brings (up to a batch): the cluster queue does the waiting.
            var serving = new ServingOptions { MaxBatchSize = o.Serving.MaxBatchSize, MaxBatchDelay = o.Serving.MaxBatchDelay, MaxQueueLength = Math.Max(o.Serving.MaxBatchSize, 1) * 4 };
            return GenerationServer.Create(o.ModelDirectory ?? throw new InvalidOperationException("SdxlClusterOptions.ModelDirectory is required on a silo with devices."),
                [d], serving, o.ConfigurePipeline, loggerFactory: loggerFactory);
        })).Value;
    }

    public void Dispose()
    {
        foreach (var server in _servers.Values)
        {
            if (server.IsValueCreated)
            {
                server.Value.Dispose();
            }
        }
    }
}

/// <summary>Loads the devices' models and starts their worker grains when the silo becomes active.</summary>
internal sealed class GpuWorkerStarter(LocalGpuWorkers local, IGrainFactory grains, ILocalSiloDetails silo, IOptions<SdxlClusterOptions> options)
    : ILifecycleParticipant<ISiloLifecycle>
{
    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(GpuWorkerStarter), ServiceLifecycleStage.Active, StartAsync, _ => Task.CompletedTask);

    private async Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var device in options.Value.Devices)
        {
            local.Get(device);
            await grains.GetGrain<IGpuWorkerGrain>($"{silo.SiloAddress.ToParsableString()}/{device}").Start();
        }
    }
}
