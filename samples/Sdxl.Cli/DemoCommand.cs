using Sdxl.Net;
using Sdxl.Net.Imaging;
using Sdxl.Net.Synthetic;

namespace Sdxl.Cli;

/// <summary>
/// <c>sdxl demo</c>: writes a tiny random-weight SDXL-shaped model to a temporary folder and runs the whole pipeline
/// on it, so the library can be seen working end to end without a 7 GB download.
/// </summary>
internal static class DemoCommand
{
    public static async Task<int> RunAsync(CliArguments options, TextWriter stdout, TextWriter stderr, CancellationToken ct)
    {
        // By default into the temp folder, not wherever the tool happens to be run.
        var output = options.Optional("output") ?? Path.Combine(Path.GetTempPath(), "sdxl-demo.png");
        var steps = options.Int("steps", 1, 100) ?? 8;
        var seed = options.Long("seed", 0, long.MaxValue) ?? 42;
        options.RejectUnknown();
        if (!string.Equals(Path.GetExtension(output), ".png", StringComparison.OrdinalIgnoreCase))
        {
            throw new UsageException($"--output must end in .png; got '{output}'");
        }

        var directory = Path.Combine(Path.GetTempPath(), $"sdxl-demo-{Guid.NewGuid():N}");
        try
        {
            stdout.WriteLine($"Writing a tiny random-weight SDXL model to {directory} ...");
            SyntheticSdxlModel.Write(directory);
            using var pipeline = SdxlPipeline.CreateBuilder()
                .WithModel(directory)
                .UseCpu()
                .AddSink(new PngFileSink(output))
                .Build(ct);
            var request = new GenerationRequest
            {
                Prompt = "a photo of an astronaut riding a horse on mars",
                NegativePrompt = "blurry, low quality",
                Width = 64,
                Height = 64,
                Steps = steps,
                GuidanceScale = 5,
                Seed = seed,
            };
            var result = await ProgressDisplay.RunAsync(stderr, verbose: false, progress => pipeline.GenerateAsync(request, progress, ct)).ConfigureAwait(false);
            stdout.WriteLine($"Wrote {output} ({result.Images[0].Width}x{result.Images[0].Height}, {steps} steps, {result.Scheduler}, seed {seed}) in {result.Elapsed.TotalSeconds:0.00} s.");
            stdout.WriteLine("The picture is noise: the demo model has random weights. Point `sdxl generate --model DIR` at a real SDXL ONNX export (see docs/models.md) for real images.");
            return CliApp.Ok;
        }
        finally
        {
            try
            {
                Directory.Delete(directory, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
