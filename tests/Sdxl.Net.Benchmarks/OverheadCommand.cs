using System.Diagnostics;
using System.Globalization;
using Sdxl.Net.Runtime;

namespace Sdxl.Net.Benchmarks;

/// <summary>
/// <c>overhead [--size tiny|small] [--runs N] [--steps N] [--threads N] [--warmup N]</c>: txt2img on a synthetic model on the
/// CPU, timing each phase and the time spent inside ONNX Runtime. The last line is
/// <c>overhead ratio: X</c> = pipeline wall time / ONNX Runtime run time, over all measured runs.
/// </summary>
internal static class OverheadCommand
{
    public static async Task<int> RunAsync(CommandOptions args)
    {
        var size = args.Get("size", "tiny");
        int runs = args.GetInt32("runs", 5);
        int steps = args.GetInt32("steps", 20);
        int threads = args.Has("threads") ? args.GetInt32("threads", 1) : 0;

        // Warm-up generations before measuring: .NET's tiered JIT keeps a method's quick first-tier code until it has
        // run 30 times, so a handful of runs would measure unoptimised host code rather than a serving process's.
        int warmup = args.GetInt32("warmup", size == "small" ? 1 : 40);
        var (dir, side) = SyntheticModels.Write(size);
        try
        {
            using var pipeline = SdxlPipeline.CreateBuilder().WithModel(dir).UseCpu(threads).Build();
            var request = new GenerationRequest { Prompt = "a lighthouse at dawn, oil painting", Seed = 42, Steps = steps, Width = side, Height = side };
            var recorder = new PhaseRecorder();

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"model: synthetic {size}, {side}x{side}, {steps} steps, CFG 5, CPU provider ({(threads == 0 ? "default" : threads.ToString(CultureInfo.InvariantCulture))} threads), {Environment.ProcessorCount} logical cores, {runs} measured runs after {warmup} warm-up(s)"));
            for (int w = 0; w < warmup; w++)
            {
                await pipeline.GenerateAsync(request, recorder);
            }

            // The synthetic model was built in managed memory: collect it so the heap figures below are the pipeline's.
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            recorder.ResetPeak();
            long allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
            OnnxRunTimer.Enable();
            TimeSpan wall = TimeSpan.Zero, onnx = TimeSpan.Zero;
            var ratios = new List<double>();
            TimeSpan promptWall = TimeSpan.Zero, denoiseWall = TimeSpan.Zero, decodeWall = TimeSpan.Zero;
            TimeSpan promptOnnx = TimeSpan.Zero, unetOnnx = TimeSpan.Zero, decodeOnnx = TimeSpan.Zero;
            long peakManaged = 0;
            for (int i = 0; i < runs; i++)
            {
                OnnxRunTimer.Reset();
                recorder.Clear();
                long start = Stopwatch.GetTimestamp();
                await pipeline.GenerateAsync(request, recorder);
                var elapsed = Stopwatch.GetElapsedTime(start);
                var byComponent = OnnxRunTimer.Snapshot();
                var (p, d, v) = recorder.Phases(start, OnnxRunTimer.FirstStart("unet") ?? start);
                TimeSpan Of(string c) => byComponent.TryGetValue(c, out var e) ? e.Elapsed : TimeSpan.Zero;
                var runOnnx = OnnxRunTimer.Total;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"run {i + 1}: wall {Ms(elapsed)}, onnx {Ms(runOnnx)} (ratio {elapsed / runOnnx:F3}); prompt {Ms(p)}, denoise {Ms(d)} ({Ms(d / steps)}/step), decode {Ms(v)}"));
                ratios.Add(elapsed / runOnnx);
                wall += elapsed;
                onnx += runOnnx;
                promptWall += p;
                denoiseWall += d;
                decodeWall += v;
                promptOnnx += Of("text_encoder") + Of("text_encoder_2");
                unetOnnx += Of("unet");
                decodeOnnx += Of("vae_decoder");
                peakManaged = Math.Max(peakManaged, recorder.PeakManagedBytes);
            }

            OnnxRunTimer.Disable();
            long allocatedPerRun = (GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore) / runs;
            Console.WriteLine("phase            wall/run     onnx/run     host/run");
            Row("prompt encoding", promptWall, promptOnnx, runs);
            Row("denoising", denoiseWall, unetOnnx, runs);
            Row("decode", decodeWall, decodeOnnx, runs);
            Row("total", wall, onnx, runs);
            Console.WriteLine($"managed allocations per generation: {ProcessMemory.Megabytes(allocatedPerRun)}");
            Console.WriteLine($"peak managed heap (sampled at each progress report): {ProcessMemory.Megabytes(peakManaged)}");
            Console.WriteLine($"peak resident set (VmHWM, managed + native): {ProcessMemory.Megabytes(ProcessMemory.PeakResident())}");
            ratios.Sort();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"per-run ratio: min {ratios[0]:F4}, median {ratios[ratios.Count / 2]:F4}, max {ratios[^1]:F4}"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"overhead ratio: {wall / onnx:F4}"));
            return 0;
        }
        finally
        {
            SyntheticModels.TryDelete(dir);
        }
    }

    private static void Row(string name, TimeSpan wall, TimeSpan onnx, int runs) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{name,-16} {Ms(wall / runs),12} {Ms(onnx / runs),12} {Ms((wall - onnx) / runs),12}"));

    internal static string Ms(TimeSpan t) => t.TotalMilliseconds.ToString("F2", CultureInfo.InvariantCulture) + " ms";
}
