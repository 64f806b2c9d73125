using System.Globalization;

namespace Sdxl.Net.Orleans;

/// <summary>What a cluster job generates: plain values that travel between the gateway, the job grain and a worker.</summary>
/// <remarks>Fields left null take <see cref="GenerationRequest"/>'s defaults (the library's, as the CLI's request).</remarks>
[GenerateSerializer, Immutable, Alias("Sdxl.ImageJobRequest")]
public sealed record ImageJobRequest
{
    /// <summary>The prompt.</summary>
    [Id(0)] public required string Prompt { get; init; }

    /// <summary>The negative prompt.</summary>
    [Id(1)] public string? NegativePrompt { get; init; }

    /// <summary>Images (the request's batch size, one generator for all as the CLI's <c>--batch</c> with <c>--seed</c>).</summary>
    [Id(2)] public int Images { get; init; } = 1;

    /// <summary>Width in pixels; null for the model's default.</summary>
    [Id(3)] public int? Width { get; init; }

    /// <summary>Height in pixels; null for the model's default.</summary>
    [Id(4)] public int? Height { get; init; }

    /// <summary>Denoising steps; null for the library's default.</summary>
    [Id(5)] public int? Steps { get; init; }

    /// <summary>Guidance scale; null for the library's default.</summary>
    [Id(6)] public float? GuidanceScale { get; init; }

    /// <summary>The seed; null picks one (reported with the images).</summary>
    [Id(7)] public long? Seed { get; init; }

    /// <summary>A scheduler name from the catalog; null for the model's.</summary>
    [Id(8)] public string? Scheduler { get; init; }

    /// <summary>Higher runs first.</summary>
    [Id(9)] public int Priority { get; init; }

    /// <summary>The library request.</summary>
    public GenerationRequest ToGenerationRequest()
    {
        var request = new GenerationRequest { Prompt = Prompt, NegativePrompt = NegativePrompt, BatchSize = Images, Width = Width, Height = Height, Seed = Seed, Scheduler = Scheduler };
        if (Steps is { } steps)
        {
            request = request with { Steps = steps };
        }

        if (GuidanceScale is { } guidance)
        {
            request = request with { GuidanceScale = guidance };
        }

        return request;
    }

    /// <summary>
    /// The queue a job waits in: requests with equal keys may share a UNet batch (the worker's pipeline makes the final
    /// check with <see cref="SdxlPipeline.GetBatchShape"/>). Computed without the model, so unset sizes stay "default".
    /// </summary>
    public string ShapeKey()
    {
        var defaults = new GenerationRequest { Prompt = "-" };
        var cfg = (GuidanceScale ?? defaults.GuidanceScale) > 1;
        return string.Create(CultureInfo.InvariantCulture, $"{Width?.ToString(CultureInfo.InvariantCulture) ?? "default"}x{Height?.ToString(CultureInfo.InvariantCulture) ?? "default"}/{Steps ?? defaults.Steps}/{Scheduler ?? "default"}/cfg-{(cfg ? "on" : "off")}");
    }
}

/// <summary>The state of a cluster job.</summary>
public enum ImageJobState
{
    /// <summary>Not submitted (an unknown id).</summary>
    Unknown,

    /// <summary>Waiting in the cluster queue.</summary>
    Queued,

    /// <summary>Taken by a worker (queued on it or generating).</summary>
    Running,

    /// <summary>Finished with images.</summary>
    Done,

    /// <summary>Failed; see the error.</summary>
    Failed,

    /// <summary>Cancelled.</summary>
    Cancelled,
}

/// <summary>What an <see cref="ImageJobEvent"/> reports.</summary>
public enum ImageJobEventKind
{
    /// <summary>Queued (again, after a worker was lost) with a position.</summary>
    Queued,

    /// <summary>A worker started the job.</summary>
    Started,

    /// <summary>A denoising step finished.</summary>
    Step,

    /// <summary>Done, with the images.</summary>
    Done,

    /// <summary>Failed, with the reason.</summary>
    Failed,

    /// <summary>Cancelled.</summary>
    Cancelled,
}

/// <summary>One generated image, PNG-encoded with the library's recipe chunk.</summary>
[GenerateSerializer, Immutable, Alias("Sdxl.ImageJobImage")]
public sealed record ImageJobImage([property: Id(0)] int Index, [property: Id(1)] long? Seed, [property: Id(2)] byte[] Png);

/// <summary>One event of a job, numbered from 0.</summary>
[GenerateSerializer, Immutable, Alias("Sdxl.ImageJobEvent")]
public sealed record ImageJobEvent([property: Id(0)] ImageJobEventKind Kind, [property: Id(1)] int Sequence)
{
    /// <summary>When it happened.</summary>
    [Id(2)] public DateTimeOffset At { get; init; }

    /// <summary>Jobs ahead in the queue (<see cref="ImageJobEventKind.Queued"/>).</summary>
    [Id(3)] public int? Position { get; init; }

    /// <summary>Finished steps.</summary>
    [Id(4)] public int Step { get; init; }

    /// <summary>Steps of the run.</summary>
    [Id(5)] public int TotalSteps { get; init; }

    /// <summary>Images in the UNet batch (<see cref="ImageJobEventKind.Started"/>).</summary>
    [Id(6)] public int BatchImages { get; init; }

    /// <summary>Why it failed, or why it was queued again.</summary>
    [Id(7)] public string? Error { get; init; }

    /// <summary>The images (<see cref="ImageJobEventKind.Done"/>).</summary>
    [Id(8)] public IReadOnlyList<ImageJobImage>? Images { get; init; }

    /// <summary>The worker (<see cref="ImageJobEventKind.Started"/>).</summary>
    [Id(9)] public string? Worker { get; init; }

    /// <summary>The job failed because its request is invalid for the model (a client error, not retriable).</summary>
    [Id(10)] public bool InvalidRequest { get; init; }

    /// <summary>Whether the event ends the job.</summary>
    public bool IsTerminal => Kind is ImageJobEventKind.Done or ImageJobEventKind.Failed or ImageJobEventKind.Cancelled;
}

/// <summary>A job's status.</summary>
[GenerateSerializer, Immutable, Alias("Sdxl.ImageJobStatus")]
public sealed record ImageJobStatus
{
    /// <summary>The job id.</summary>
    [Id(0)] public required string Id { get; init; }

    /// <summary>The state.</summary>
    [Id(1)] public ImageJobState State { get; init; }

    /// <summary>Jobs ahead in the queue when queued.</summary>
    [Id(2)] public int? Position { get; init; }

    /// <summary>Finished steps.</summary>
    [Id(3)] public int Step { get; init; }

    /// <summary>Steps of the run.</summary>
    [Id(4)] public int TotalSteps { get; init; }

    /// <summary>Why it failed.</summary>
    [Id(5)] public string? Error { get; init; }

    /// <summary>The images when done.</summary>
    [Id(6)] public IReadOnlyList<ImageJobImage>? Images { get; init; }

    /// <summary>When it was submitted.</summary>
    [Id(7)] public DateTimeOffset Created { get; init; }

    /// <summary>The worker that ran (or runs) it.</summary>
    [Id(8)] public string? Worker { get; init; }

    /// <summary>How many times it was queued again after its worker was lost.</summary>
    [Id(9)] public int Requeues { get; init; }

    /// <summary>The job failed because its request is invalid for the model.</summary>
    [Id(10)] public bool InvalidRequest { get; init; }
}

/// <summary>A job in the cluster queue.</summary>
[GenerateSerializer, Immutable, Alias("Sdxl.QueuedImageJob")]
public sealed record QueuedImageJob([property: Id(0)] string JobId, [property: Id(1)] ImageJobRequest Request, [property: Id(2)] long Sequence);

/// <summary>The answer to an enqueue.</summary>
[GenerateSerializer, Immutable, Alias("Sdxl.EnqueueResult")]
public sealed record EnqueueResult([property: Id(0)] bool Accepted, [property: Id(1)] int Position, [property: Id(2)] int QueueLength, [property: Id(3)] TimeSpan RetryAfter);

/// <summary>The cluster queue's state (health, admission).</summary>
[GenerateSerializer, Immutable, Alias("Sdxl.QueueInfo")]
public sealed record QueueInfo([property: Id(0)] int QueueLength, [property: Id(1)] int MaxQueueLength, [property: Id(2)] IReadOnlyList<string> Workers, [property: Id(3)] TimeSpan RetryAfter);
