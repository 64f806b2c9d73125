using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.OnnxRuntime;
using Sdxl.Net.Models;
using Sdxl.Net.Runtime;

namespace Sdxl.Net.Benchmarks;

/// <summary>
/// <c>gpu-check [--device cuda[:N]|tensorrt[:N]|cpu] [--size tiny|small] [--steps N] [--fp16] [--skip-graph]
/// [--timing-size none|miniature|small|full] [--timing-model DIR] [--timing-steps N] [--timing-side PX] [--trt-cache DIR]</c>.
/// Parity (on <c>--size</c>, tiny by default): the provider loads, the I/O-bound UNet (host buffers, and device buffers
/// with a CUDA graph) matches the CPU, whole generations match the CPU within fp16/TF32 tolerance. Timing (on an
/// SDXL-structured folder: full size on a GPU): model load time, seconds per image, UNet time per step and VAE decode
/// time, with CUDA graphs off and on, or TensorRT with shape profiles and an engine cache. <c>--device cpu</c> is the
/// dry run: the same code path on the CPU provider with the miniature folder, so the check is known to work before a
/// GPU is at hand. Exit code 0 when every check passes.
/// </summary>
internal static class GpuCheckCommand
{
    public static async Task<int> RunAsync(CommandOptions args)
    {
        var device = ExecutionProviderOptions.Parse(args.Get("device", "cuda"));
        bool dryRun = device.Kind == ExecutionProviderKind.Cpu;
        var size = args.Get("size", "tiny");
        int steps = args.GetInt32("steps", dryRun ? 4 : 20);
        bool float16 = args.Has("fp16");
        bool graph = !args.Has("skip-graph");
        var timingSize = args.Get("timing-size", dryRun ? "miniature" : "full");
        int timingSteps = args.GetInt32("timing-steps", dryRun ? 2 : 30);

        // TF32 convolutions / matmuls (on by default in the CUDA provider on Ampere and later) keep ~10 mantissa bits,
        // fp16 I/O ~11: after 20 steps image differences of a few 1e-3 are expected; these gates are 5-10x that.
        double imageTolerance = float16 ? 5e-2 : 2e-2;
        double unetTolerance = float16 ? 2e-2 : 5e-3;
        var failures = new List<string>();
        void Check(bool ok, string what)
        {
            Console.WriteLine($"{(ok ? "PASS" : "FAIL")}  {what}");
            if (!ok)
            {
                failures.Add(what);
            }
        }

        var available = OrtEnv.Instance().GetAvailableProviders();
        Console.WriteLine($"gpu-check{(dryRun ? " (dry run on the CPU provider)" : string.Empty)}: {device.Kind} device {device.DeviceId}, synthetic {size}{(float16 ? " fp16" : "")}, {steps} steps, ONNX Runtime providers: {string.Join(", ", available)}");
        var providerName = device.Kind switch
        {
            ExecutionProviderKind.TensorRT => "TensorrtExecutionProvider",
            ExecutionProviderKind.Cuda => "CUDAExecutionProvider",
            _ => "CPUExecutionProvider",
        };
        Check(available.Contains(providerName), $"{providerName} is built into this ONNX Runtime");

        var (dir, side) = SyntheticModels.Write(size, float16);
        try
        {
            // 1. The provider initialises (no fallback: a missing CUDA/cuDNN library fails here with the list of what is needed).
            try
            {
                using var probe = SdxlModelFolder.Open(dir, device);
                Check(probe.UNet.IsLoaded, $"{device.Kind} sessions created for every model");
            }
            catch (SdxlModelException e)
            {
                Check(false, $"{device.Kind} provider loads: {e.Message}");
                return Summary(failures);
            }

            // 2. UNet level: bound runs on the device (host buffers; device buffers with a CUDA graph) vs the CPU.
            var cpuUnet = UNetSteps(dir, ExecutionProviderOptions.Cpu, out _);
            var gpuUnet = UNetSteps(dir, device, out var gpuStep);
            Check(MaxAbs(cpuUnet, gpuUnet) <= unetTolerance, $"UNet, I/O binding with host buffers: max |{device.Kind} - CPU| = {MaxAbs(cpuUnet, gpuUnet):E2} (tolerance {unetTolerance:E0}), {OverheadCommand.Ms(gpuStep)}/run");
            if (graph && device.Kind == ExecutionProviderKind.Cuda)
            {
                try
                {
                    var graphUnet = UNetSteps(dir, device with { EnableCudaGraph = true }, out var graphStep);
                    Check(MaxAbs(gpuUnet, graphUnet) <= 1e-4, $"UNet, CUDA graph with device buffers: max |graph - no graph| = {MaxAbs(gpuUnet, graphUnet):E2}, {OverheadCommand.Ms(graphStep)}/run");
                }
                catch (Exception e) when (e is SdxlModelException or OnnxRuntimeException)
                {
                    Check(false, $"UNet with a CUDA graph runs: {e.Message}");
                }
            }

            // 3. Whole generations: device vs CPU images.
            var request = new GenerationRequest { Prompt = "a lighthouse at dawn", Seed = 7, Steps = steps, Width = side, Height = side };
            using (var cpu = SdxlPipeline.CreateBuilder().WithModel(dir).Build())
            {
                var cpuImage = (await cpu.GenerateAsync(request)).Images[0].Pixels.ToArray();
                foreach (var useGraph in Variants(device, graph))
                {
                    var label = useGraph ? "pipeline, CUDA graph" : "pipeline";
                    try
                    {
                        using var gpu = SdxlPipeline.CreateBuilder().WithModel(dir).UseExecutionProvider(device with { EnableCudaGraph = useGraph }).Build();
                        var result = await gpu.GenerateAsync(request);
                        double error = MaxAbs(cpuImage, result.Images[0].Pixels.ToArray());
                        Check(error <= imageTolerance, string.Create(CultureInfo.InvariantCulture,
                            $"{label}: max |{device.Kind} - CPU| on the [0,1] image = {error:E2} (tolerance {imageTolerance:E0})"));
                    }
                    catch (Exception e) when (e is SdxlModelException or OnnxRuntimeException)
                    {
                        Check(false, $"{label} runs: {e.Message}");
                    }
                }
            }
        }
        finally
        {
            SyntheticModels.TryDelete(dir);
        }

        // 4. Timing on an SDXL-structured folder.
        if (timingSize != "none")
        {
            await TimeAsync(args, device, timingSize, timingSteps, graph, dryRun, Check).ConfigureAwait(false);
        }

        return Summary(failures);
    }

    private static bool[] Variants(ExecutionProviderOptions device, bool graph) =>
        graph && device.Kind == ExecutionProviderKind.Cuda ? [false, true] : [false];

    private static async Task TimeAsync(CommandOptions args, ExecutionProviderOptions device, string size, int steps, bool graph, bool dryRun, Action<bool, string> check)
    {
        // A GPU runs the real model in fp16 (as exports for GPUs are); the dry run keeps fp32, which the CPU runs natively.
        bool float16 = !dryRun && !args.Has("timing-fp32");
        string? given = args.Has("timing-model") ? args.Get("timing-model", "") : null;
        var write = Stopwatch.StartNew();
        var (dir, side) = given is not null ? (given, 1024) : SyntheticModels.Write(size, float16);
        side = args.GetInt32("timing-side", side);
        if (given is null)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"timing: wrote the {size} {(float16 ? "fp16" : "fp32")} folder in {write.Elapsed.TotalSeconds:0.0} s"));
        }

        try
        {
            var request = new GenerationRequest { Prompt = "a lighthouse at dawn, film photograph", NegativePrompt = "blurry", Seed = 7, Steps = steps, Width = side, Height = side };
            foreach (var useGraph in Variants(device, graph))
            {
                var options = device with { EnableCudaGraph = useGraph };
                if (device.Kind == ExecutionProviderKind.TensorRT)
                {
                    options = options with
                    {
                        TensorRTEngineCachePath = args.Get("trt-cache", Path.Combine(Path.GetTempPath(), "sdxl-trt-cache")),
                        TensorRTProfile = TensorRTShapeProfile.SdxlBase with { MinImageSize = Math.Min(512, side), OptImageSize = side, MaxImageSize = side },
                    };
                }

                var label = string.Create(CultureInfo.InvariantCulture, $"timing {size} {side}x{side}, {steps} steps, {device.Kind}{(useGraph ? " + CUDA graph" : string.Empty)}");
                try
                {
                    var load = Stopwatch.StartNew();
                    using var pipeline = SdxlPipeline.CreateBuilder().WithModel(dir).UseExecutionProvider(options).Build();
                    var loaded = load.Elapsed;
                    await pipeline.GenerateAsync(request with { Steps = Math.Min(steps, 2) }); // warm-up: algorithm search, graph capture, engine build
                    OnnxRunTimer.Reset();
                    OnnxRunTimer.Enable();
                    long start = Stopwatch.GetTimestamp();
                    var result = await pipeline.GenerateAsync(request);
                    var wall = Stopwatch.GetElapsedTime(start);
                    OnnxRunTimer.Disable();
                    var timings = OnnxRunTimer.Snapshot();
                    string PerRun(string component) => timings.TryGetValue(component, out var t) && t.Runs > 0 ? OverheadCommand.Ms(t.Elapsed / t.Runs) : "-";
                    bool finite = result.Images[0].Pixels.ToArray().All(float.IsFinite);
                    check(finite, string.Create(CultureInfo.InvariantCulture,
                        $"{label}: load {loaded.TotalSeconds:0.0} s, {wall.TotalSeconds:0.00} s/image, UNet {PerRun("unet")}/step, VAE decode {PerRun("vae_decoder")}, text encoders {PerRun("text_encoder_2")}, overhead ratio {wall / OnnxRunTimer.Total:F3}"));
                }
                catch (Exception e) when (e is SdxlModelException or OnnxRuntimeException or SdxlNumericException)
                {
                    check(false, $"{label} runs: {e.Message}");
                }
            }
        }
        finally
        {
            if (given is null)
            {
                SyntheticModels.TryDelete(dir);
            }
        }
    }

    /// <summary>Five bound UNet runs with fixed inputs (CFG batch of 2, the tiny model's 8 × 8 latents); returns every output.</summary>
    private static float[] UNetSteps(string dir, ExecutionProviderOptions options, out TimeSpan perRun)
    {
        using var folder = SdxlModelFolder.Open(dir, options);
        var unet = folder.UNet;
        int side = folder.DefaultImageSize / folder.VaeScaleFactor;
        var shape = new UNetShape(2, 4, 4, side, side, 77, unet.CrossAttentionDim, unet.TextEmbedsDim, unet.TimeIdsWidth);
        var random = new Random(1);
        float[] Noise(int n) => Enumerable.Range(0, n).Select(_ => (float)((random.NextDouble() * 2) - 1)).ToArray();
        var sample = Noise(2 * 4 * side * side);
        using var runOptions = new RunOptions();
        using var binding = unet.CreateBinding(shape);
        binding.SetConditioning(Noise(2 * 77 * shape.HiddenSize), Noise(2 * shape.PooledSize), Noise(2 * shape.TimeIdsWidth));
        var outputs = new List<float>();
        long start = 0;
        var timesteps = new[] { 999f, 800f, 600f, 400f, 200f, 1f };
        for (int i = 0; i < timesteps.Length; i++)
        {
            if (i == 1)
            {
                start = Stopwatch.GetTimestamp(); // the first run warms up (and captures the graph)
            }

            sample.CopyTo(binding.Sample);
            binding.Run(timesteps[i], runOptions);
            outputs.AddRange(binding.Output.ToArray());
        }

        perRun = Stopwatch.GetElapsedTime(start) / (timesteps.Length - 1);
        return [.. outputs];
    }

    private static double MaxAbs(float[] a, float[] b)
    {
        if (a.Length != b.Length)
        {
            return double.PositiveInfinity;
        }

        double max = 0;
        for (int i = 0; i < a.Length; i++)
        {
            max = Math.Max(max, Math.Abs(a[i] - b[i]));
        }

        return double.IsNaN(max) ? double.PositiveInfinity : max;
    }

    private static int Summary(List<string> failures)
    {
        Console.WriteLine(failures.Count == 0 ? "gpu-check: all checks passed" : $"gpu-check: {failures.Count} check(s) failed");
        return failures.Count == 0 ? 0 : 1;
    }
}
