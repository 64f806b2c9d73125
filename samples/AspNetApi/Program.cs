// POST /generate {"prompt": "...", "seed": 42, "steps": 30, "width": 1024, "height": 1024} → image/png
//   dotnet run --project samples/AspNetApi -- --Sdxl:ModelPath=models/sdxl-base-onnx --Sdxl:Device=cuda
// A bounded queue answers 503 when full; a client that disconnects cancels its generation.
using AspNetApi;
using Sdxl.Net;
using Sdxl.Net.Imaging;

var builder = WebApplication.CreateBuilder(args);
// Options from the "Sdxl" section, validated at start; relative paths from the content root; BuildOnStart loads the
// model before the first request (a bad folder stops the start instead of failing the first request).
builder.Services.AddSdxl(builder.Configuration.GetSection("Sdxl"));
builder.Services.AddSingleton(new GenerationQueue(builder.Configuration.GetSection("GenerationQueue").Get<GenerationQueueOptions>() ?? new()));

var app = builder.Build();


app.MapGet("/health", () => Results.Ok("ready"));

app.MapPost("/generate", async (GenerateBody body, SdxlPipeline pipeline, GenerationQueue queue, ILogger<GenerateBody> logger, HttpContext http) =>
{
    if (string.IsNullOrWhiteSpace(body.Prompt))
    {
        return Results.Problem("prompt is required.", statusCode: StatusCodes.Status400BadRequest);
    }

    var request = new GenerationRequest
    {
        Prompt = body.Prompt,
        NegativePrompt = body.NegativePrompt,
        Seed = body.Seed,
        Steps = body.Steps ?? 30,
        Width = body.Width,
        Height = body.Height,
    };

    var aborted = http.RequestAborted;
    try
    {
        var (admitted, png) = await queue.TryRunAsync(async ct =>
        {
            var result = await pipeline.GenerateAsync(request, ct);
            using var buffer = new MemoryStream();
            await new StreamImageSink((_, _, _) => ValueTask.FromResult<Stream>(buffer), leaveOpen: true).WriteAsync(result, ct);
            return buffer.ToArray();
        }, aborted);
        if (!admitted)
        {
            http.Response.Headers.RetryAfter = "5";
            return Results.Problem("The generation queue is full; retry later.", statusCode: StatusCodes.Status503ServiceUnavailable);
        }

        return Results.File(png!, "image/png");
    }
    catch (ArgumentException e)
    {
        return Results.Problem(e.Message, statusCode: StatusCodes.Status400BadRequest);
    }
    catch (OperationCanceledException) when (aborted.IsCancellationRequested)
    {
        logger.LogInformation("The client disconnected; its generation was cancelled.");
        return Results.Empty;
    }
});

app.Run();

/// <summary>The body of <c>POST /generate</c>.</summary>
internal sealed record GenerateBody(string Prompt, long? Seed, int? Steps, int? Width, int? Height, string? NegativePrompt);
