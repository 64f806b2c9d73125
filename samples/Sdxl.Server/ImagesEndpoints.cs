using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.RateLimiting;
using Sdxl.Net.Serving;

namespace Sdxl.Server;

/// <summary>The HTTP API: OpenAI's <c>/v1/images/generations</c>, the job API, <c>/health</c>.</summary>
internal static class ImagesEndpoints
{
    public const string AdmissionPolicy = "queue-admission";

    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>
    /// ASP.NET Core's rate limiting admits generation requests while the queue has room and otherwise answers 429 with
    /// <c>Retry-After</c> (the queue's own estimate) before the body is read.
    /// </summary>
    public static IServiceCollection AddQueueAdmission(this IServiceCollection services)
    {
        services.AddSingleton<QueueAdmissionLimiter>();
        return services.AddRateLimiter(options =>
        {
            options.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            options.AddPolicy(AdmissionPolicy, http => RateLimitPartition.Get("queue", _ => http.RequestServices.GetRequiredService<QueueAdmissionLimiter>()));
            options.OnRejected = async (context, cancellationToken) =>
            {
                var retryAfter = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : TimeSpan.FromSeconds(1);
                await QueueFull(context.HttpContext, retryAfter).ExecuteAsync(context.HttpContext);
            };
        });
    }

    public static void MapImagesApi(this WebApplication app)
    {
        app.MapGet("/health", async (IJobService jobs, CancellationToken ct) => Results.Json(await jobs.HealthAsync(ct), Json));

        app.MapPost("/v1/images/generations", GenerateAsync).RequireRateLimiting(AdmissionPolicy);
        app.MapPost("/v1/jobs", SubmitAsync).RequireRateLimiting(AdmissionPolicy);
        app.MapGet("/v1/jobs/{id}", async (string id, IJobService jobs, CancellationToken ct) =>
            await jobs.GetAsync(id, ct) is { } view ? Results.Json(ToJson(view), Json) : NotFound(id));
        app.MapDelete("/v1/jobs/{id}", async (string id, IJobService jobs, CancellationToken ct) =>
            await jobs.CancelAsync(id, ct) is { } view ? Results.Json(ToJson(view), Json) : NotFound(id));
        app.MapGet("/v1/jobs/{id}/events", EventsAsync);
    }

    // OpenAI's synchronous call: the response holds the images; a client that disconnects cancels its job.
    private static async Task<IResult> GenerateAsync(HttpContext http, IJobService jobs, ILoggerFactory loggers)
    {
        var aborted = http.RequestAborted;
        var (spec, problem) = await ReadSpecAsync(http);
        if (problem is not null)
        {
            return problem;
        }

        string id;
        try
        {
            id = await jobs.SubmitAsync(spec!, aborted);
        }
        catch (Exception e) when (Refused(http, e) is { } refused)
        {
            return refused;
        }

        try
        {
            JobUpdate? end = null;
            await foreach (var update in jobs.WatchAsync(id, aborted))
            {
                end = update;
            }

            return end switch
            {
                { Kind: "done", Images: { } images } => Results.Json(new
                {
                    created = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
                    data = images.Select(i => new { b64_json = Convert.ToBase64String(i.Png), revised_prompt = spec!.Prompt, seed = i.Seed }),
                }),
                { Kind: "failed", InvalidRequest: true } => BadRequest(end.Error ?? "The request is invalid for the model."),
                { Kind: "cancelled" } => Results.Problem("The job was cancelled.", statusCode: StatusCodes.Status409Conflict, title: "Cancelled"),
                _ => Results.Problem(end?.Error ?? "The job ended without a result.", statusCode: StatusCodes.Status500InternalServerError, title: "Generation failed"),
            };
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested)
        {
            loggers.CreateLogger("Sdxl.Server").LogInformation("Job {Id}: the client disconnected; the job was cancelled.", id);
            return Results.Empty;
        }
    }

    private static async Task<IResult> SubmitAsync(HttpContext http, IJobService jobs)
    {
        var (spec, problem) = await ReadSpecAsync(http);
        if (problem is not null)
        {
            return problem;
        }

        try
        {
            var id = await jobs.SubmitAsync(spec!, CancellationToken.None);
            return Results.Json(new { id, status = "queued" }, Json, statusCode: StatusCodes.Status202Accepted);
        }
        catch (Exception e) when (Refused(http, e) is { } refused)
        {
            return refused;
        }
    }

    // Server-sent events: every event of the job from the first, then the stream ends. With
    // ?cancel_on_disconnect=true a watcher that goes away cancels the job.
    private static async Task<IResult> EventsAsync(string id, HttpContext http, IJobService jobs, bool? cancel_on_disconnect)
    {
        if (await jobs.GetAsync(id, http.RequestAborted) is null)
        {
            return NotFound(id);
        }

        if (cancel_on_disconnect == true)
        {
            http.RequestAborted.Register(() => _ = jobs.CancelAsync(id, CancellationToken.None));
        }

        return TypedResults.ServerSentEvents(Events(jobs, id, http.RequestAborted));
    }

    private static async IAsyncEnumerable<SseItem<string>> Events(IJobService jobs, string id, [EnumeratorCancellation] CancellationToken ct)
    {
        await foreach (var u in jobs.WatchAsync(id, ct))
        {
            var data = JsonSerializer.Serialize(new
            {
                id,
                sequence = u.Sequence,
                position = u.Position,
                step = u.Step,
                total_steps = u.TotalSteps,
                batch_images = u.BatchImages,
                error = u.Error,
                data = u.Images?.Select(i => new { b64_json = Convert.ToBase64String(i.Png), seed = i.Seed }),
            }, Json);
            yield return new SseItem<string>(data, u.Kind) { EventId = u.Sequence.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        }
    }

    private static object ToJson(JobView v) => new
    {
        id = v.Id,
        status = v.Status,
        position = v.Position,
        step = v.Step,
        total_steps = v.TotalSteps,
        error = v.Error,
        created = v.Created.ToUnixTimeSeconds(),
        worker = v.Worker,
        data = v.Images?.Select(i => new { b64_json = Convert.ToBase64String(i.Png), seed = i.Seed }),
    };

    private static async Task<(Sdxl.Net.Orleans.ImageJobRequest? Spec, IResult? Problem)> ReadSpecAsync(HttpContext http)
    {
        try
        {
            var body = await JsonSerializer.DeserializeAsync<ImageGenerationBody>(http.Request.Body, Json, http.RequestAborted)
                ?? throw new ArgumentException("The body must be a JSON object.");
            return (body.ToSpec(), null);
        }
        catch (JsonException e)
        {
            return (null, BadRequest($"The body is not valid JSON for an image request: {e.Message}"));
        }
        catch (ArgumentException e)
        {
            return (null, BadRequest(e.Message));
        }
    }

    private static IResult? Refused(HttpContext http, Exception e) => e switch
    {
        ArgumentException a => BadRequest(a.Message),
        QueueFullException full => QueueFull(http, full.RetryAfter),
        _ => null,
    };

    private static IResult BadRequest(string detail) =>
        Results.Problem(detail, statusCode: StatusCodes.Status400BadRequest, title: "Invalid request");

    private static IResult NotFound(string id) =>
        Results.Problem($"No job '{id}' is known (ended jobs are kept for {InProcessJobService.Retention.TotalMinutes} minutes).", statusCode: StatusCodes.Status404NotFound, title: "Unknown job");

    private static IResult QueueFull(HttpContext http, TimeSpan retryAfter)
    {
        int seconds = (int)Math.Max(1, Math.Ceiling(retryAfter.TotalSeconds));
        http.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return Results.Problem($"The generation queue is full; retry in {seconds} s.", statusCode: StatusCodes.Status429TooManyRequests, title: "Queue full");
    }
}

/// <summary>
/// The limiter behind <see cref="ImagesEndpoints.AdmissionPolicy"/>: a permit while the job queue has room, otherwise a
/// refusal carrying the queue's retry estimate (<see cref="MetadataName.RetryAfter"/>).
/// </summary>
internal sealed class QueueAdmissionLimiter(IJobService jobs) : RateLimiter
{
    public override TimeSpan? IdleDuration => null;

    public override RateLimiterStatistics? GetStatistics() => null;

    protected override RateLimitLease AttemptAcquireCore(int permitCount) =>
        jobs.TryAdmit(out var retryAfter) ? Lease.Admitted : new Lease(false, retryAfter);

    protected override ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken) =>
        ValueTask.FromResult(AttemptAcquireCore(permitCount));

    private sealed class Lease(bool acquired, TimeSpan retryAfter) : RateLimitLease
    {
        public static readonly Lease Admitted = new(true, TimeSpan.Zero);

        public override bool IsAcquired => acquired;

        public override IEnumerable<string> MetadataNames => acquired ? [] : [MetadataName.RetryAfter.Name];

        public override bool TryGetMetadata(string metadataName, out object? metadata)
        {
            metadata = !acquired && metadataName == MetadataName.RetryAfter.Name ? retryAfter : null;
            return metadata is not null;
        }
    }
}
