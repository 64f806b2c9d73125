// Sdxl.Server: an OpenAI-compatible image endpoint over Sdxl.Net.Serving.
//   dotnet run --project samples/Sdxl.Server -- --model models/sdxl-base-onnx --device cuda:0 --urls http://127.0.0.1:8080
// See docs/serving.md (roles, flags, endpoints, failure behaviour).
using System.Diagnostics.Metrics;
using OpenTelemetry.Metrics;
using Sdxl.Net.Serving;
using Sdxl.Server;

ServerArguments arguments;
try
{
    arguments = ServerArguments.Parse(args);
}
catch (UsageException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}

if (arguments.Help)
{
    Console.WriteLine(ServerArguments.Usage);
    return 0;
}

try
{
    switch (arguments.Role)
    {
        case ServerRole.All:
            await RunAllAsync(arguments);
            return 0;
        default:
            Console.Error.WriteLine($"error: --role {arguments.Role.ToString().ToLowerInvariant()} needs the Orleans cluster, which this build does not include; use --role all");
            return 2;
    }
}
catch (Exception e) when (e is not OutOfMemoryException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}

static async Task RunAllAsync(ServerArguments arguments)
{
    var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [] });
    builder.WebHost.UseUrls(arguments.Urls);
    builder.Services.AddProblemDetails();
    builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics.AddMeter(GenerationServer.MeterName).AddPrometheusExporter());
    builder.Services.AddSingleton(services => GenerationServer.Create(arguments.Model!, arguments.Devices, Options(arguments),
        meterFactory: services.GetRequiredService<IMeterFactory>(), loggerFactory: services.GetRequiredService<ILoggerFactory>()));
    builder.Services.AddSingleton<IJobService>(services => new InProcessJobService(services.GetRequiredService<GenerationServer>()));
    builder.Services.AddQueueAdmission();

    var app = builder.Build();

    // Load the model on every device now: a bad --model or --device fails at start-up, not on the first request.
    app.Services.GetRequiredService<GenerationServer>();
    app.UseExceptionHandler();
    app.UseStatusCodePages();
    app.UseRateLimiter();
    app.MapImagesApi();
    app.MapPrometheusScrapingEndpoint();
    await app.RunAsync();
}

static ServingOptions Options(ServerArguments a) => new()
{
    MaxBatchSize = a.MaxBatch,
    MaxBatchDelay = TimeSpan.FromMilliseconds(a.MaxBatchDelayMs),
    MaxQueueLength = a.MaxQueue,
};
