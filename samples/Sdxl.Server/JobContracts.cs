using System.Globalization;
using Sdxl.Net.Orleans;

namespace Sdxl.Server;

/// <summary>
/// The body of <c>POST /v1/images/generations</c> and <c>POST /v1/jobs</c>: OpenAI's image request (<c>prompt</c>,
/// <c>n</c>, <c>size</c>, <c>response_format</c>; <c>model</c>, <c>quality</c>, <c>style</c>, <c>user</c> are accepted and
/// ignored) plus Sdxl.Net's fields. Absent fields take the library's defaults, as the CLI's request does.
/// </summary>
internal sealed class ImageGenerationBody
{
    public string? Prompt { get; set; }

    public int? N { get; set; }

    public string? Size { get; set; }

    public string? ResponseFormat { get; set; }

    public string? NegativePrompt { get; set; }

    public int? Steps { get; set; }

    public float? GuidanceScale { get; set; }

    public long? Seed { get; set; }

    public string? Scheduler { get; set; }

    public int? Priority { get; set; }

    /// <summary>Checks the fields HTTP owns (the library checks the rest) and builds the job's spec.</summary>
    /// <exception cref="ArgumentException">A field is invalid; the message names it.</exception>
    public ImageJobRequest ToSpec()
    {
        if (string.IsNullOrWhiteSpace(Prompt))
        {
            throw new ArgumentException("prompt is required and must not be empty.", "prompt");
        }

        if (N is < 1 or > 10)
        {
            throw new ArgumentException($"n must be from 1 to 10; got {N}.", "n");
        }

        if (ResponseFormat is not null && ResponseFormat != "b64_json")
        {
            throw new ArgumentException($"response_format must be \"b64_json\" (images are returned inline); got \"{ResponseFormat}\".", "response_format");
        }

        int? width = null, height = null;
        if (Size is not null && Size != "auto")
        {
            var parts = Size.Split('x');
            if (parts.Length != 2
                || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int w)
                || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int h))
            {
                throw new ArgumentException($"size must be \"WIDTHxHEIGHT\" (e.g. \"1024x1024\"); got \"{Size}\".", "size");
            }

            (width, height) = (w, h);
        }

        return new ImageJobRequest
        {
            Prompt = Prompt,
            NegativePrompt = NegativePrompt,
            Images = N ?? 1,
            Width = width,
            Height = height,
            Steps = Steps,
            GuidanceScale = GuidanceScale,
            Seed = Seed,
            Scheduler = Scheduler,
            Priority = Priority ?? 0,
        };
    }
}

/// <summary>One generated image, PNG-encoded (with the library's recipe chunk).</summary>
internal sealed record JobImage(int Index, long? Seed, byte[] Png);

/// <summary>A job's current status.</summary>
internal sealed record JobView(string Id, string Status, int? Position, int Step, int TotalSteps, string? Error, IReadOnlyList<JobImage>? Images, DateTimeOffset Created)
{
    /// <summary>The cluster worker that runs (or ran) the job; null in one process.</summary>
    public string? Worker { get; init; }
}

/// <summary>One event of a job (the server-sent events stream).</summary>
internal sealed record JobUpdate(string Kind, int Sequence, int? Position, int Step, int TotalSteps, int BatchImages, string? Error, IReadOnlyList<JobImage>? Images)
{
    /// <summary>The job failed because the request does not suit the model (found by the worker that loaded it).</summary>
    public bool InvalidRequest { get; init; }

    public bool IsTerminal => Kind is "done" or "failed" or "cancelled";
}

/// <summary>Where jobs run: workers in this process, or the cluster's.</summary>
internal interface IJobService
{
    /// <summary>Accepts a job. Cancelling <paramref name="cancelJob"/> cancels it (a client's disconnect).</summary>
    /// <exception cref="ArgumentException">The request is invalid.</exception>
    /// <exception cref="Sdxl.Net.Serving.QueueFullException">No room.</exception>
    Task<string> SubmitAsync(ImageJobRequest spec, CancellationToken cancelJob);

    /// <summary>The job's status, or <see langword="null"/> when no such job is known.</summary>
    Task<JobView?> GetAsync(string id, CancellationToken cancellationToken);

    /// <summary>The job's events from the first, ending with its terminal event.</summary>
    IAsyncEnumerable<JobUpdate> WatchAsync(string id, CancellationToken cancellationToken);

    /// <summary>Cancels the job; its status afterwards, or <see langword="null"/> when unknown.</summary>
    Task<JobView?> CancelAsync(string id, CancellationToken cancellationToken);

    /// <summary>Whether a new job would be admitted now; otherwise when to retry.</summary>
    bool TryAdmit(out TimeSpan retryAfter);

    /// <summary>Health details for <c>/health</c>.</summary>
    Task<object> HealthAsync(CancellationToken cancellationToken);
}
