using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Sdxl.Net.Runtime;

namespace Sdxl.Net.Serving;

/// <summary>
/// Serves generation jobs in process: a bounded priority queue, one worker thread per pipeline (one pipeline per
/// device), and dynamic batching of compatible jobs into one UNet batch (<see cref="SdxlPipeline.GenerateBatchAsync"/>).
/// </summary>
/// <remarks>
/// <see cref="Submit"/> validates the request at once (bad input throws <see cref="ArgumentException"/>), refuses it
/// with <see cref="QueueFullException"/> when <see cref="ServingOptions.MaxQueueLength"/> jobs wait, and otherwise
/// returns the job, which ends Done, Failed or Cancelled. Thread-safe.
/// </remarks>
public sealed class GenerationServer : IDisposable
{
    private readonly IReadOnlyList<SdxlPipeline> _pipelines;
    private readonly bool _ownsPipelines;
    private readonly ServingOptions _options;
    private readonly JobQueue _queue;
    private readonly ServingMetrics _metrics;
    private readonly List<DeviceWorker> _workers = [];
    private readonly object _estimateLock = new();
    private double _secondsPerImage = 1;
    private bool _measured;
    private long _sequence;
    private int _disposed;

    /// <summary>Starts one worker per pipeline.</summary>
    /// <param name="pipelines">One pipeline per device, all of the same model (they are not disposed by the server).</param>
    /// <param name="options">Queue and batching settings; <see langword="null"/> for the defaults.</param>
    /// <param name="meterFactory">Creates the <c>Sdxl.Net.Serving</c> meter (from dependency injection); <see langword="null"/> creates it directly.</param>
    /// <param name="loggerFactory">Logs batch failures.</param>
    public GenerationServer(IReadOnlyList<SdxlPipeline> pipelines, ServingOptions? options = null, IMeterFactory? meterFactory = null, ILoggerFactory? loggerFactory = null)
        : this(pipelines, ownsPipelines: false, options, meterFactory, loggerFactory)
    {
    }

    private GenerationServer(IReadOnlyList<SdxlPipeline> pipelines, bool ownsPipelines, ServingOptions? options, IMeterFactory? meterFactory, ILoggerFactory? loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(pipelines);
        if (pipelines.Count == 0)
        {
            throw new ArgumentException("A server needs at least one pipeline (one per device).", nameof(pipelines));
        }

        _options = options ?? new ServingOptions();
        _options.Validate();
        _pipelines = [.. pipelines];
        _ownsPipelines = ownsPipelines;
        _queue = new JobQueue(_options.MaxQueueLength);
        _metrics = new ServingMetrics(meterFactory, () => _queue.Count);
        var logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Sdxl.Net.Serving");
        for (int i = 0; i < _pipelines.Count; i++)
        {
            var worker = new DeviceWorker($"#{i}", _pipelines[i], _queue, _options, _metrics, OnBatchFinished, logger);
            _workers.Add(worker);
            worker.Start();
        }
    }

    /// <summary>The meter name of the server's instruments.</summary>
    public const string MeterName = ServingMetrics.MeterName;

    /// <summary>The settings.</summary>
    public ServingOptions Options => _options;

    /// <summary>Jobs waiting in the queue.</summary>
    public int QueueLength => _queue.Count;

    /// <summary>Workers (devices).</summary>
    public int WorkerCount => _workers.Count;

    /// <summary>The pipeline of the first device (its model's defaults: size, scheduler).</summary>
    public SdxlPipeline Pipeline => _pipelines[0];

    /// <summary>Loads the model once per device (<c>cpu</c>, <c>cuda:0</c>, ...) and starts a server that disposes the pipelines with itself.</summary>
    /// <param name="modelDirectory">The SDXL model folder.</param>
    /// <param name="devices">Device strings in the CLI's form (<see cref="ExecutionProviderOptions.Parse"/>).</param>
    /// <param name="options">Queue and batching settings.</param>
    /// <param name="configure">Further pipeline settings applied to every device's builder.</param>
    /// <param name="meterFactory">Creates the meter.</param>
    /// <param name="loggerFactory">Logging for the pipelines and the server.</param>
    /// <exception cref="FormatException">A device string is not valid.</exception>
    public static GenerationServer Create(string modelDirectory, IReadOnlyList<string> devices, ServingOptions? options = null,
        Action<SdxlPipelineBuilder>? configure = null, IMeterFactory? meterFactory = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(devices);
        var pipelines = new List<SdxlPipeline>();
        try
        {
            foreach (var device in devices)
            {
                var builder = SdxlPipeline.CreateBuilder().WithModel(modelDirectory).UseExecutionProvider(ExecutionProviderOptions.Parse(device));
                if (loggerFactory is not null)
                {
                    builder.WithLogging(loggerFactory);
                }

                configure?.Invoke(builder);
                pipelines.Add(builder.Build());
            }

            return new GenerationServer(pipelines, ownsPipelines: true, options, meterFactory, loggerFactory);
        }
        catch
        {
            foreach (var p in pipelines)
            {
                p.Dispose();
            }

            throw;
        }
    }

    /// <summary>
    /// Queues a job. Cancelling <paramref name="cancellationToken"/> cancels the job (as <see cref="GenerationJob.Cancel"/>):
    /// pass a client's disconnect token so that a gone client frees its place.
    /// </summary>
    /// <param name="request">The request.</param>
    /// <param name="priority">Higher runs first (default 0).</param>
    /// <param name="id">The job's id; <see langword="null"/> creates one.</param>
    /// <param name="cancellationToken">Cancels the job.</param>
    /// <exception cref="ArgumentException">The request is invalid.</exception>
    /// <exception cref="QueueFullException">The queue is full; retry after <see cref="QueueFullException.RetryAfter"/>.</exception>
    public GenerationJob Submit(GenerationRequest request, int priority = 0, string? id = null, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        ArgumentNullException.ThrowIfNull(request);
        var shape = _pipelines[0].GetBatchShape(request);
        var job = new GenerationJob(id ?? Guid.NewGuid().ToString("N"), request, priority, shape, Interlocked.Increment(ref _sequence));
        if (!_queue.TryEnqueue(job))
        {
            _metrics.Rejected.Add(1);
            throw new QueueFullException(_queue.Count, EstimateRetryAfter());
        }

        job.CancellationToken.Register(() =>
        {
            // Queued: leave the queue now. Running: the worker sees the token before the next step.
            if (_queue.TryRemove(job))
            {
                job.MarkCancelled();
            }
        });
        if (cancellationToken.CanBeCanceled)
        {
            var registration = cancellationToken.Register(job.Cancel);
            job.Completion.ContinueWith(_ => registration.Dispose(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        return job;
    }

    /// <summary>The measured time per image of one worker (a moving average over finished batches; 1 s before the first).</summary>
    public TimeSpan TimePerImage
    {
        get
        {
            lock (_estimateLock)
            {
                return TimeSpan.FromSeconds(_secondsPerImage);
            }
        }
    }

    /// <summary>
    /// When the queue will likely have room: the queued images over the images all workers generate per second,
    /// measured from finished batches (one second per image until the first batch finished), at least one second.
    /// </summary>
    public TimeSpan EstimateRetryAfter()
    {
        double perImage;
        lock (_estimateLock)
        {
            perImage = _secondsPerImage;
        }

        double seconds = Math.Max(1, Math.Ceiling(_queue.Count * perImage / _workers.Count));
        return TimeSpan.FromSeconds(seconds);
    }

    /// <summary>Stops the workers: queued jobs end Cancelled, running batches are cancelled between steps.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        foreach (var job in _queue.Close())
        {
            job.MarkCancelled();
        }

        foreach (var worker in _workers)
        {
            worker.Stop(cancelRunning: true);
        }

        _metrics.Dispose();
        if (_ownsPipelines)
        {
            foreach (var p in _pipelines)
            {
                p.Dispose();
            }
        }
    }

    private void OnBatchFinished(TimeSpan elapsed, int images)
    {
        if (images == 0)
        {
            return;
        }

        // An exponential moving average of the time per image, for Retry-After.
        double sample = elapsed.TotalSeconds / images;
        lock (_estimateLock)
        {
            _secondsPerImage = _measured ? (0.8 * _secondsPerImage) + (0.2 * sample) : sample;
            _measured = true;
        }
    }
}
