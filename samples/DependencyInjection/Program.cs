// Two SDXL pipelines side by side from appsettings.json ("Sdxl:Base", "Sdxl:Turbo"), registered as keyed services.
//   dotnet run --project samples/DependencyInjection                 (uses the model folders in appsettings.json)
//   dotnet run --project samples/DependencyInjection -- --demo       (writes two tiny random-weight models first)
// Any setting can be overridden on the command line, e.g. --Sdxl:Base:Device=cuda.
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Sdxl.Net;
using Sdxl.Net.DependencyInjection;
using Sdxl.Net.Synthetic;

bool demo = args.Contains("--demo");
var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
{
    Args = args.Where(a => a != "--demo").ToArray(),
    ContentRootPath = AppContext.BaseDirectory,     // appsettings.json sits beside the program
});
string? demoRoot = null;
if (demo)
{
    demoRoot = Path.Combine(Path.GetTempPath(), $"sdxl-di-demo-{Guid.NewGuid():N}");
    SyntheticSdxlModel.Write(Path.Combine(demoRoot, "base"));
    SyntheticSdxlModel.Write(Path.Combine(demoRoot, "turbo"), new SyntheticModelOptions { Seed = 2 });
    builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
    {
        ["Sdxl:Base:ModelPath"] = Path.Combine(demoRoot, "base"),
        ["Sdxl:Turbo:ModelPath"] = Path.Combine(demoRoot, "turbo"),
    });
}

// Each section is a named options instance, validated when the host starts (every problem at once), with relative
// model paths taken from the content root. BuildOnStart in appsettings.json loads the models during start-up.
builder.Services.AddKeyedSdxl("base", builder.Configuration.GetSection("Sdxl:Base"));
builder.Services.AddKeyedSdxl("turbo", builder.Configuration.GetSection("Sdxl:Turbo"));
builder.Services.AddSingleton<ImageService>();

try
{
    using var host = builder.Build();
    await host.StartAsync();
    var images = host.Services.GetRequiredService<ImageService>();
    foreach (var line in await images.CompareAsync("a lighthouse at dawn"))
    {
        Console.WriteLine(line);
    }

    return 0;
}
catch (Exception e) when (e is OptionsValidationException || e is AggregateException { InnerExceptions: var all } && all.All(x => x is OptionsValidationException))
{
    // One invalid section gives an OptionsValidationException, several an AggregateException of them.
    Console.Error.WriteLine("The configuration is invalid:");
    var invalid = e is AggregateException many ? many.InnerExceptions.Cast<OptionsValidationException>() : [(OptionsValidationException)e];
    foreach (var failure in invalid.SelectMany(x => x.Failures))
    {
        Console.Error.WriteLine($"  - {failure}");
    }

    Console.Error.WriteLine("Fix appsettings.json or pass --demo to try with tiny random-weight models.");
    return 2;
}
finally
{
    if (demoRoot is not null)
    {
        Directory.Delete(demoRoot, recursive: true);
    }
}

/// <summary>An application service that takes both pipelines by key.</summary>
internal sealed class ImageService([FromKeyedServices("base")] SdxlPipeline basePipeline, [FromKeyedServices("turbo")] SdxlPipeline turboPipeline)
{
    public async Task<IReadOnlyList<string>> CompareAsync(string prompt)
    {
        // SDXL base: ~30 steps with guidance. A turbo model: 1-4 steps with guidance off.
        var quality = await basePipeline.GenerateAsync(new GenerationRequest { Prompt = prompt, Steps = 30, Seed = 1 });
        var fast = await turboPipeline.GenerateAsync(new GenerationRequest { Prompt = prompt, Steps = 4, GuidanceScale = 0, Seed = 1 });
        return
        [
            $"base : {quality.Model}, {quality.Scheduler}, {quality.Elapsed.TotalMilliseconds:0} ms",
            $"turbo: {fast.Model}, {fast.Scheduler}, {fast.Elapsed.TotalMilliseconds:0} ms",
        ];
    }
}
