using System.Diagnostics;
using System.Globalization;
using Sdxl.Net.Distilled;
using Sdxl.Net.Previews;
using Sdxl.Net.Synthetic;

namespace Sdxl.Net.Benchmarks;

/// <summary>
/// <c>few-step [--size tiny|small] [--runs N] [--steps N]</c>: on a synthetic model on the CPU, (1) the per-step cost of
/// each preview kind (none, progress only, latent RGB, TAESD; a preview every step) and the time to the first preview,
/// (2) the wall time of every few-step preset next to a 30-step CFG baseline. Random weights: the images are noise, the
/// timings are the real cost of the networks' shapes.
/// </summary>
internal static class FewStepCommand
{
    public static async Task<int> RunAsync(CommandOptions args)
    {
        var size = args.Get("size", "small");
        int runs = args.GetInt32("runs", 3);
        int steps = args.GetInt32("steps", 8);
        var (dir, side) = SyntheticModels.Write(size);
        var lcmDir = dir + "-lcm";
        var taesdDir = dir + "-taesd";
        try
        {
            var baseOptions = size == "small" ? SyntheticModelOptions.Small : new SyntheticModelOptions();
            SyntheticSdxlModel.Write(lcmDir, baseOptions with { TimeCondProjDim = 256 });
            SyntheticSdxlModel.WriteTaesdDecoder(taesdDir);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"model: synthetic {size}, {side}x{side}, CPU provider, {Environment.ProcessorCount} logical cores, {runs} measured run(s) after 1 warm-up, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC"));

            using (var pipeline = SdxlPipeline.CreateBuilder().WithModel(dir).Build())
            using (var decoders = new PreviewDecoderCache(Runtime.ExecutionProviderOptions.Cpu))
            {
                var request = new GenerationRequest { Prompt = "a lighthouse at dawn", Seed = 42, Steps = steps, Width = side, Height = side, GuidanceScale = 5 };
                Console.WriteLine($"previews ({steps} steps, CFG 5, a preview after every step):");
                Console.WriteLine("kind             ms/step (min)   preview alone (ms)   first preview after (min)");
                double? none = null;
                foreach (var (name, preview, listen) in new (string, PreviewOptions?, bool)[]
                {
                    ("none", null, false),
                    ("progress only", null, true),
                    ("latent RGB", new PreviewOptions(), true),
                    ("TAESD", new PreviewOptions { Kind = PreviewKind.Taesd, TaesdDirectory = taesdDir }, true),
                })
                {
                    var (perStep, first) = await MeasureAsync(pipeline, request with { Preview = preview }, listen, runs);
                    none ??= perStep;
                    var alone = preview is null ? "-" : (await PreviewAloneAsync(pipeline, request, preview, decoders)).ToString("F2", CultureInfo.InvariantCulture);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{name,-16} {perStep,13:F2}   {alone,18}   {(first is { } f ? $"{f:F1} ms" : "-")}"));
                }
            }

            Console.WriteLine("presets (wall time of one generation, including prompt encoding and VAE decode):");
            Console.WriteLine("preset           steps  guidance  scheduler          UNet evals   ms");
            using (var plain = SdxlPipeline.CreateBuilder().WithModel(dir).Build())
            using (var lcm = SdxlPipeline.CreateBuilder().WithModel(lcmDir).Build())
            {
                var request = new GenerationRequest { Prompt = "a lighthouse at dawn", Seed = 42, Width = side, Height = side };
                var baseline = new FewStepPreset("baseline", 30, 5f, "euler", "SDXL default sampler, CFG");
                foreach (var preset in FewStepPresets.All.Prepend(baseline))
                {
                    var pipeline = preset.Name == "lcm" ? lcm : plain;
                    var r = preset.ApplyTo(request);
                    await pipeline.GenerateAsync(r);
                    var watch = Stopwatch.StartNew();
                    for (int i = 0; i < runs; i++)
                    {
                        await pipeline.GenerateAsync(r);
                    }

                    // CFG doubles the UNet batch; LCM's guidance embedding and guidance ≤ 1 run one row.
                    int rows = preset.GuidanceScale > 1 && preset.Name != "lcm" ? 2 : 1;
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{preset.Name,-16} {preset.Steps,5}  {preset.GuidanceScale,8:0.#}  {preset.Scheduler,-18} {preset.Steps * rows,10}   {watch.Elapsed.TotalMilliseconds / runs:F0}"));
                }
            }

            return 0;
        }
        finally
        {
            SyntheticModels.TryDelete(dir);
            SyntheticModels.TryDelete(lcmDir);
            SyntheticModels.TryDelete(taesdDir);
        }
    }

    /// <summary>Milliseconds per denoising step (between the first and last step reports) and to the first preview, the minimum over the runs.</summary>
    private static async Task<(double PerStep, double? FirstPreview)> MeasureAsync(SdxlPipeline pipeline, GenerationRequest request, bool listen, int runs)
    {
        await pipeline.GenerateAsync(request, listen ? new StepTimes() : null);
        double perStep = double.MaxValue, first = double.MaxValue;
        bool anyPreview = false;
        for (int i = 0; i < runs; i++)
        {
            var times = new StepTimes();
            if (listen)
            {
                await pipeline.GenerateAsync(request, times);
                perStep = Math.Min(perStep, (times.LastStep - times.FirstStep).TotalMilliseconds / (request.Steps - 1));
                if (times.FirstPreview is { } p)
                {
                    anyPreview = true;
                    first = Math.Min(first, p.TotalMilliseconds);
                }
            }
            else
            {
                // Without a listener the loop is timed from outside: denoising dominates, the rest is measured below.
                var watch = Stopwatch.StartNew();
                await pipeline.GenerateAsync(request);
                var total = watch.Elapsed;
                var fixedCost = await FixedCostAsync(pipeline, request);
                perStep = Math.Min(perStep, (total - fixedCost).TotalMilliseconds / (request.Steps - 1));
            }
        }

        return (perStep, anyPreview ? first : null);
    }

    /// <summary>
    /// The cost of one preview by itself (minimum over 20 renders of the latents after the first step), free of the
    /// UNet's timing noise: what a preview adds to a step.
    /// </summary>
    private static async Task<double> PreviewAloneAsync(SdxlPipeline pipeline, GenerationRequest request, PreviewOptions preview, PreviewDecoderCache decoders)
    {
        float[]? latents = null;
        int h = 0, w = 0;
        await pipeline.GenerateAsync(request with
        {
            Steps = 1,
            StepEnd = state =>
            {
                latents = state.Latents.ToArray();
                (h, w) = (state.LatentHeight, state.LatentWidth);
            },
        });
        var renderer = PreviewRenderer.Create(preview, decoders);
        using var runOptions = new Microsoft.ML.OnnxRuntime.RunOptions();
        double best = double.MaxValue;
        for (int i = 0; i < 20; i++)
        {
            long start = Stopwatch.GetTimestamp();
            renderer.Render(new Denoising.DenoisingStepEnd(0, 1, 999f, latents, 1, h, w), runOptions);
            best = Math.Min(best, Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }

        return best;
    }

    /// <summary>The wall time of the same request with one step: prompts, one UNet step and the decode.</summary>
    private static async Task<TimeSpan> FixedCostAsync(SdxlPipeline pipeline, GenerationRequest request)
    {
        var watch = Stopwatch.StartNew();
        await pipeline.GenerateAsync(request with { Steps = 1 });
        return watch.Elapsed;
    }

    private sealed class StepTimes : IProgress<GenerationProgress>
    {
        private readonly Stopwatch _watch = Stopwatch.StartNew();

        public TimeSpan FirstStep { get; private set; }

        public TimeSpan LastStep { get; private set; }

        public TimeSpan? FirstPreview { get; private set; }

        public void Report(GenerationProgress value)
        {
            if (value.Phase != GenerationPhase.Denoising || value.Step == 0)
            {
                return;
            }

            var now = _watch.Elapsed;
            if (value.Step == 1)
            {
                FirstStep = now;
            }

            LastStep = now;
            if (value.Previews is not null && FirstPreview is null)
            {
                FirstPreview = now;
            }
        }
    }
}
