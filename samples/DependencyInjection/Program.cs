// Two SDXL pipelines side by side from appsettings.json ("Sdxl:Base", "Sdxl:Turbo"), registered as keyed services.
//   dotnet run --project samples/DependencyInjection                 (uses the model folders in appsettings.json)
//   dotnet run --project samples/DependencyInjection -- --demo       (writes two tiny random-weight models first)
// Any setting can be overridden on the command line, e.g. --Sdxl:Base:Device=cuda.
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
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

// Validate every section before anything loads, and report all problems at once.
var problems = new List<string>();
foreach (var name in new[] { "Base", "Turbo" })
{
    var options = builder.Configuration.GetSection($"Sdxl:{name}").Get<SdxlOptions>() ?? new SdxlOptions();
    problems.AddRange(options.Validate().Select(e => e.Replace("Sdxl:", $"Sdxl:{name}:", StringComparison.Ordinal)));
}

if (problems.Count > 0)
{
    Console.Error.WriteLine("The configuration is invalid:");
    problems.ForEach(p => Console.Error.WriteLine($"  - {p}"));
    Console.Error.WriteLine("Fix appsettings.json or pass --demo to try with tiny random-weight models.");
    return 2;
}

builder.Services.AddKeyedSdxl("base", o => builder.Configuration.GetSection("Sdxl:Base").Bind(o));
builder.Services.AddKeyedSdxl("turbo", o => builder.Configuration.GetSection("Sdxl:Turbo").Bind(o));
builder.Services.AddSingleton<ImageService>();

try
{
    using var host = builder.Build();
    var images = host.Services.GetRequiredService<ImageService>();
    foreach (var line in await images.CompareAsync("a lighthouse at dawn"))
    {
        Console.WriteLine(line);
    }

    return 0;
}
catch (SdxlOptionsException e)
{
    // Raised when a pipeline is first resolved, if its options changed after the check above.
    Console.Error.WriteLine(e.Message);
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
