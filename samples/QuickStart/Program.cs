// The README quick start:  dotnet run --project samples/QuickStart -- [sdxl-onnx-folder] [output.png]
// Without a folder, a tiny random-weight SDXL model is written to a temporary folder first (DemoModel.cs): the
// pipeline runs end to end, but the picture is noise. Without an output path, the PNG goes to the temp folder.
using Sdxl.Net;
using Sdxl.Net.Imaging;

string modelDirectory = args.ElementAtOrDefault(0) is { Length: > 0 } folder ? folder : DemoModel.WriteToTempFolder();
string output = args.ElementAtOrDefault(1) ?? Path.Combine(Path.GetTempPath(), "sdxl-quickstart.png");

using var pipeline = SdxlPipeline.CreateBuilder()
    .WithModel(modelDirectory)
    .UseCpu()                                   // or .UseCuda() with the Sdxl.Net.Runtime.Cuda package
    .AddSink(new PngFileSink(output))
    .Build();

GenerationResult result = await pipeline.GenerateAsync(new GenerationRequest
{
    Prompt = "a lighthouse at dawn, film photograph",
    NegativePrompt = "blurry, low quality",
    Steps = 30,
    Seed = 42,                                  // same seed, same image (and the same as diffusers)
});

Console.WriteLine($"Wrote {output} ({result.Images[0].Width}x{result.Images[0].Height}, seed {result.Seed}, {result.Scheduler}) in {result.Elapsed.TotalSeconds:0.0} s");
