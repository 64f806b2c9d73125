// The README quick start.
//   dotnet run --project samples/QuickStart -- <sdxl-onnx-folder> [output.png]
// Without a folder, a tiny random-weight SDXL model is written to a temporary folder first (see DemoModel.cs):
// the pipeline runs end to end, but the picture is noise.
using Sdxl.Net;
using Sdxl.Net.Imaging;

string modelDirectory = args.Length > 0 ? args[0] : DemoModel.WriteToTempFolder();
string output = args.Length > 1 ? args[1] : "quickstart.png";

using var pipeline = SdxlPipeline.CreateBuilder()
    .WithModel(modelDirectory)
    .UseCpu()                                   // or .UseCuda(), .UseTensorRT()
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
