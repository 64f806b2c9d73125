namespace Sdxl.Net.Serving;

/// <summary>Where a job is.</summary>
public enum JobState
{
    /// <summary>Waiting in the queue.</summary>
    Queued,

    /// <summary>Being generated.</summary>
    Running,

    /// <summary>Finished with images.</summary>
    Done,

    /// <summary>Ended by an error (<see cref="JobEvent.Error"/>).</summary>
    Failed,

    /// <summary>Cancelled before it finished.</summary>
    Cancelled,
}

/// <summary>What a <see cref="JobEvent"/> reports.</summary>
public enum JobEventKind
{
    /// <summary>The job is queued; <see cref="JobEvent.Position"/> jobs run before it (reported again as it moves up).</summary>
    Queued,

    /// <summary>A worker started the job, in a batch of <see cref="JobEvent.BatchImages"/> images.</summary>
    Started,

    /// <summary>Denoising step <see cref="JobEvent.Step"/> of <see cref="JobEvent.TotalSteps"/> finished.</summary>
    Step,

    /// <summary>The job finished; <see cref="JobEvent.Result"/> holds the images.</summary>
    Done,

    /// <summary>The job failed; <see cref="JobEvent.Error"/> says why.</summary>
    Failed,

    /// <summary>The job was cancelled.</summary>
    Cancelled,
}

/// <summary>One event of a job, in order (<see cref="Sequence"/> counts from 0).</summary>
/// <param name="Kind">What happened.</param>
/// <param name="Sequence">The event's index in the job's history.</param>
public sealed record JobEvent(JobEventKind Kind, int Sequence)
{
    /// <summary>When it happened.</summary>
    public DateTimeOffset At { get; init; }

    /// <summary>Jobs ahead in the queue (<see cref="JobEventKind.Queued"/>).</summary>
    public int? Position { get; init; }

    /// <summary>Finished steps (<see cref="JobEventKind.Step"/>).</summary>
    public int Step { get; init; }

    /// <summary>Steps of the run (<see cref="JobEventKind.Step"/>).</summary>
    public int TotalSteps { get; init; }

    /// <summary>Images in the UNet batch the job runs in (<see cref="JobEventKind.Started"/>).</summary>
    public int BatchImages { get; init; }

    /// <summary>The images (<see cref="JobEventKind.Done"/>).</summary>
    public GenerationResult? Result { get; init; }

    /// <summary>Why the job failed (<see cref="JobEventKind.Failed"/>).</summary>
    public string? Error { get; init; }

    /// <summary>Whether the event ends the job.</summary>
    public bool IsTerminal => Kind is JobEventKind.Done or JobEventKind.Failed or JobEventKind.Cancelled;
}
