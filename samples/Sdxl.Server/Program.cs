// Sdxl.Server: an OpenAI-compatible image endpoint over Sdxl.Net.Serving.
//   dotnet run --project samples/Sdxl.Server -- --model models/sdxl-base-onnx --device cuda:0 --urls http://127.0.0.1:8080
// See docs/serving.md (roles, flags, endpoints, failure behaviour).
using System.Diagnostics.Metrics;
using System.Net;
using Orleans.Configuration;
using OpenTelemetry.Metrics;
using Sdxl.Net.Orleans;
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
        case ServerRole.Gateway:
            await RunGatewayAsync(arguments);
            return 0;
        default:
            await RunWorkerAsync(arguments);
            return 0;
    }
}
catch (Exception e) when (e is not OutOfMemoryException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}

static async Task RunAllAsync(ServerArguments arguments)
{
    // One process: the HTTP API over an in-process GenerationServer (no silo, no cluster flags).
    var builder = CreateHttpBuilder(arguments);
    builder.Services.AddSingleton(services => GenerationServer.Create(arguments.Model!, arguments.Devices, Options(arguments),
        meterFactory: services.GetRequiredService<IMeterFactory>(), loggerFactory: services.GetRequiredService<ILoggerFactory>()));
    builder.Services.AddSingleton<IJobService>(services => new InProcessJobService(services.GetRequiredService<GenerationServer>()));
    var app = builder.Build();

    // Load the model on every device now: a bad --model or --device fails at start-up, not on the first request.
    app.Services.GetRequiredService<GenerationServer>();
    await RunHttpAsync(app);
}

static async Task RunGatewayAsync(ServerArguments arguments)
{
    // The HTTP API on a silo without GPUs: it hosts the job and queue grains; workers' silos run the jobs.
    var builder = CreateHttpBuilder(arguments);
    builder.UseOrleans(silo => ConfigureSilo(silo, arguments, devices: []));
    builder.Services.AddSingleton<OrleansJobService>();
    builder.Services.AddSingleton<IJobService>(services => services.GetRequiredService<OrleansJobService>());
    builder.Services.AddHostedService(services => services.GetRequiredService<OrleansJobService>());
    await RunHttpAsync(builder.Build());
}

static async Task RunWorkerAsync(ServerArguments arguments)
{
    // A silo that declares GPUs and runs one worker per --device; no HTTP.
    var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = [] });
    builder.UseOrleans(silo => ConfigureSilo(silo, arguments, arguments.Devices));
    await builder.Build().RunAsync();
}

static void ConfigureSilo(ISiloBuilder silo, ServerArguments arguments, IReadOnlyList<string> devices)
{
    silo.Configure<ClusterOptions>(o => (o.ClusterId, o.ServiceId) = ("sdxl", "sdxl"));
    if (arguments.Cluster == "localhost")
    {
        // Development: the gateway's silo is the primary, at the default silo port 11111.
        silo.UseLocalhostClustering(arguments.SiloPort, arguments.GatewayPort, new IPEndPoint(IPAddress.Loopback, 11111));
    }
    else
    {
        // Membership and the grain directory in Redis: a dead worker takes no directory entry (and so no job) with it.
        var redis = new Uri(arguments.Cluster);
        var endpoint = $"{redis.Host}:{redis.Port}";
        silo.UseRedisClustering(endpoint);
        silo.UseRedisGrainDirectoryAsDefault(o => o.ConfigurationOptions = StackExchange.Redis.ConfigurationOptions.Parse(endpoint));
        silo.Configure<EndpointOptions>(o =>
        {
            o.AdvertisedIPAddress = IPAddress.Loopback;
            o.SiloPort = arguments.SiloPort;
            o.GatewayPort = arguments.GatewayPort;
        });
    }

    // A dead worker is noticed within seconds (its jobs are queued again).
    silo.Configure<ClusterMembershipOptions>(o =>
    {
        o.ProbeTimeout = TimeSpan.FromSeconds(2);
        o.NumMissedProbesLimit = 2;
        o.NumVotesForDeathDeclaration = 1;
    });
    silo.AddSdxlCluster(o =>
    {
        o.MaxQueueLength = arguments.MaxQueue;
        o.ModelDirectory = arguments.Model;
        o.Devices = devices;
        o.Serving = Options(arguments);
    });
}

static WebApplicationBuilder CreateHttpBuilder(ServerArguments arguments)
{
    var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [] });
    builder.WebHost.UseUrls(arguments.Urls);
    // A cluster call that fails for a moment (a silo died, its grains are being placed again) is a 503 with Retry-After:
    // the client asks again; anything else unexpected stays a 500.
    builder.Services.AddProblemDetails(o => o.CustomizeProblemDetails = context =>
    {
        if (context.HttpContext.Response.StatusCode == StatusCodes.Status503ServiceUnavailable)
        {
            context.HttpContext.Response.Headers.RetryAfter = "1";
            context.ProblemDetails.Detail ??= "The cluster is re-homing work after a silo left; retry shortly.";
        }
    });
    builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics.AddMeter(GenerationServer.MeterName).AddPrometheusExporter());
    builder.Services.AddQueueAdmission();
    return builder;
}

static async Task RunHttpAsync(WebApplication app)
{
    app.UseExceptionHandler(new ExceptionHandlerOptions
    {
        StatusCodeSelector = e => e is Orleans.Runtime.OrleansException or TimeoutException
            ? StatusCodes.Status503ServiceUnavailable
            : StatusCodes.Status500InternalServerError,
    });
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
