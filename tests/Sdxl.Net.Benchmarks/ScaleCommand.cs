using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Sdxl.Net.Runtime;

namespace Sdxl.Net.Benchmarks;

/// <summary>
/// <c>scale --model DIR [--sides 512,1024] [--steps 2] [--modes keep,per-phase] [--tiled off,on] [--prepack on,off] [--timeout-s 3600]</c>:
/// memory and time of whole generations on a (full-size) model folder, each configuration in a fresh child process so
/// its peak resident memory (VmHWM) is its own: time to first image, peak RSS overall and during denoising, UNet time per
/// step, overhead ratio. Prints a markdown table and, for reference, the weights of each component.
/// <c>scale --model DIR --load [--components unet,...] [--variants default,no-prepack,...] [--latent 32] [--batch 1]</c>:
/// session creation time and resident memory per component
/// under ONNX Runtime's start-up options (default, prepacking off, an optimized graph saved and reloaded, one intra-op thread), and the time
/// of a first and a second small run after each.
/// </summary>
internal static class ScaleCommand
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = false };

    public static async Task<int> RunAsync(CommandOptions args)
    {
        var model = args.Get("model", "");
        if (!Directory.Exists(model))
        {
            Console.Error.WriteLine("scale: --model DIR is required (write one with `sdxl synth --size full --out DIR`)");
            return 2;
        }

        Console.WriteLine($"# scale: {model}, {Environment.ProcessorCount} cores, {GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (1 << 30)} GiB, {DateTime.UtcNow:yyyy-MM-dd}");
        foreach (var component in new[] { "text_encoder", "text_encoder_2", "unet", "vae_decoder", "vae_encoder" })
        {
            var data = Path.Combine(model, component, "model.onnx_data");
            var onnx = Path.Combine(model, component, "model.onnx");
            if (File.Exists(onnx))
            {
                long bytes = new FileInfo(onnx).Length + (File.Exists(data) ? new FileInfo(data).Length : 0);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"weights {component,-15} {bytes / 1e9,8:0.000} GB"));
            }
        }

        return args.Has("load") ? Load(args, model) : await GenerationsAsync(args, model).ConfigureAwait(false);
    }

    /// <summary>The child side of one configuration: prints one JSON line.</summary>
    public static async Task<int> RunChildAsync(CommandOptions args)
    {
        var model = args.Get("model", "");
        int side = args.GetInt32("side", 512);
        int steps = args.GetInt32("steps", 2);
        var mode = args.Get("mode", "keep") == "per-phase" ? MemoryMode.LoadPerPhase : MemoryMode.KeepLoaded;
        bool tiled = args.Has("tiled");
        bool prepack = !args.Has("no-prepack");
        long start = Stopwatch.GetTimestamp();
        var builder = SdxlPipeline.CreateBuilder().WithModel(model)
            .UseExecutionProvider(ExecutionProviderOptions.Cpu with { MemoryMode = mode, PrepackWeights = prepack });
        if (tiled)
        {
            builder.WithTiledVae();
        }

        using var pipeline = builder.Build();
        var build = Stopwatch.GetElapsedTime(start);
        long afterBuild = ProcessMemory.Resident();
        var denoising = new DenoisingPeak();
        OnnxRunTimer.Enable();
        long generationStart = Stopwatch.GetTimestamp();
        await pipeline.GenerateAsync(new GenerationRequest { Prompt = "a lighthouse at dawn", NegativePrompt = "blurry", Steps = steps, Seed = 1, Width = side, Height = side }, denoising);
        var generation = Stopwatch.GetElapsedTime(generationStart);
        var timings = OnnxRunTimer.Snapshot();
        var unet = timings.TryGetValue("unet", out var u) ? u : default;
        var vae = timings.TryGetValue("vae_decoder", out var v) ? v : default;
        Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, double>
        {
            ["build_s"] = build.TotalSeconds,
            ["first_image_s"] = Stopwatch.GetElapsedTime(start).TotalSeconds,
            ["generation_s"] = generation.TotalSeconds,
            ["rss_after_build_gb"] = afterBuild / 1e9,
            ["peak_denoising_gb"] = denoising.Peak / 1e9,
            ["peak_gb"] = ProcessMemory.PeakResident() / 1e9,
            ["unet_s_per_step"] = unet.Runs > 0 ? unet.Elapsed.TotalSeconds / unet.Runs : 0,
            ["vae_decode_s"] = vae.Elapsed.TotalSeconds,
            ["overhead_ratio"] = generation / OnnxRunTimer.Total,
        }, Json));
        return 0;
    }

    private static async Task<int> GenerationsAsync(CommandOptions args, string model)
    {
        var sides = args.Get("sides", "512").Split(',');
        var modes = args.Get("modes", "keep,per-phase").Split(',');
        var tiledOptions = args.Get("tiled", "off").Split(',');
        var prepackOptions = args.Get("prepack", "on").Split(',');
        int steps = args.GetInt32("steps", 2);
        int timeout = args.GetInt32("timeout-s", 3600);
        Console.WriteLine();
        Console.WriteLine("| size | memory mode | tiled VAE | prepack | build s | first image s | UNet s/step | VAE decode s | RSS after build GB | peak RSS denoising GB | peak RSS GB | overhead ratio |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|");
        int failures = 0;
        foreach (var side in sides)
        {
            foreach (var mode in modes)
            {
                foreach (var (tiled, prepack) in Combinations(tiledOptions, prepackOptions))
                {
                    var childArgs = $"scale-run --model \"{model}\" --side {side} --steps {steps} --mode {mode}{(tiled == "on" ? " --tiled" : string.Empty)}{(prepack == "off" ? " --no-prepack" : string.Empty)}";
                    var (ok, line) = await RunChildAsync(childArgs, timeout).ConfigureAwait(false);
                    if (!ok)
                    {
                        failures++;
                        Console.WriteLine($"| {side}² | {mode} | {tiled} | {prepack} | failed: {line} |");
                        continue;
                    }

                    var r = JsonSerializer.Deserialize<Dictionary<string, double>>(line)!;
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"| {side}² | {mode} | {tiled} | {prepack} | {r["build_s"]:0.0} | {r["first_image_s"]:0.0} | {r["unet_s_per_step"]:0.00} | {r["vae_decode_s"]:0.00} | {r["rss_after_build_gb"]:0.00} | {r["peak_denoising_gb"]:0.00} | {r["peak_gb"]:0.00} | {r["overhead_ratio"]:0.000} |"));
                }
            }
        }

        return failures == 0 ? 0 : 1;
    }

    private static IEnumerable<(string Tiled, string Prepack)> Combinations(string[] tiled, string[] prepack)
    {
        foreach (var t in tiled)
        {
            foreach (var p in prepack)
            {
                yield return (t, p);
            }
        }
    }

    // The start-up options measured: ONNX Runtime's default; prepacking off; an optimized graph saved once (its cost)
    // and reloaded with optimizations off (the saving on every later start), also without prepacking; one intra-op
    // thread instead of ONNX Runtime's choice (does session creation use the pool?).
    private static readonly string[] LoadVariants =
        ["default", "no-prepack", "optimized-save", "optimized-reload", "optimized-reload-no-prepack", "threads-1"];

    private static int Load(CommandOptions args, string model)
    {
        var components = args.Get("components", "text_encoder,text_encoder_2,unet,vae_decoder").Split(',');
        var variants = args.Has("variants") ? args.Get("variants", "").Split(',') : LoadVariants;
        foreach (var variant in variants)
        {
            if (Array.IndexOf(LoadVariants, variant) < 0)
            {
                Console.Error.WriteLine($"scale: unknown --variants entry '{variant}'; known: {string.Join(", ", LoadVariants)}");
                return 2;
            }
        }

        var runShape = $"--latent {args.GetInt32("latent", 32)} --batch {args.GetInt32("batch", 1)}";
        Console.WriteLine();
        Console.WriteLine("| component | session option | create s | RSS after create GB | first run s | second run s | RSS after runs GB |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        foreach (var component in components)
        {
            foreach (var variant in variants)
            {
                var (ok, line) = RunChildAsync($"scale-load --model \"{model}\" --component {component} --variant {variant} {runShape}", args.GetInt32("timeout-s", 3600)).GetAwaiter().GetResult();
                Console.WriteLine(ok ? line : $"| {component} | {variant} | failed: {line} |");
            }
        }

        return 0;
    }

    /// <summary>
    /// The child side of <c>--load</c>: creates one component's session with one option set, then runs it twice on a
    /// small input (UNet and VAE: a 32×32 latent, batch 1, unless --latent/--batch say otherwise; text encoders: 77
    /// tokens) — the first run pays for any lazily packed weights, the second is the steady speed the option leaves.
    /// </summary>
    public static int RunLoadChild(CommandOptions args)
    {
        var model = args.Get("model", "");
        var component = args.Get("component", "unet");
        var variant = args.Get("variant", "default");
        var path = Path.Combine(model, component, "model.onnx");
        var optimized = Path.Combine(Path.GetTempPath(), $"sdxl-scale-{component}-optimized", "model.onnx");
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR };
        if (variant.Contains("no-prepack", StringComparison.Ordinal))
        {
            options.AddSessionConfigEntry("session.disable_prepacking", "1");
        }

        if (variant.StartsWith("threads-1", StringComparison.Ordinal))
        {
            options.IntraOpNumThreads = 1;
        }

        if (variant == "optimized-save")
        {
            Directory.CreateDirectory(Path.GetDirectoryName(optimized)!);
            options.OptimizedModelFilePath = optimized;
            options.AddSessionConfigEntry("session.optimized_model_external_initializers_file_name", "model.onnx_data");
            options.AddSessionConfigEntry("session.optimized_model_external_initializers_min_size_in_bytes", "1024");
        }
        else if (variant.StartsWith("optimized-reload", StringComparison.Ordinal))
        {
            path = optimized;
            options.GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL;
        }

        long before = ProcessMemory.Resident();
        long start = Stopwatch.GetTimestamp();
        double firstRun, secondRun;
        using (var session = new InferenceSession(path, options))
        {
            var created = Stopwatch.GetElapsedTime(start);
            long delta = ProcessMemory.Resident() - before;
            var inputs = SmallInputs(session, args.GetInt32("latent", 32), args.GetInt32("batch", 1));
            try
            {
                firstRun = TimeRun(session, inputs);
                secondRun = TimeRun(session, inputs);
            }
            finally
            {
                foreach (var input in inputs)
                {
                    input.Value.Dispose();
                }
            }

            // Weights ONNX Runtime maps from the file (prepacking off) are resident only once a run touches them.
            long afterRuns = ProcessMemory.Resident() - before;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {component} | {variant} | {created.TotalSeconds:0.0} | {delta / 1e9:0.00} | {firstRun:0.00} | {secondRun:0.00} | {afterRuns / 1e9:0.00} |"));
        }

        if (variant == "optimized-reload-no-prepack")
        {
            try
            {
                Directory.Delete(Path.GetDirectoryName(optimized)!, recursive: true);
            }
            catch (IOException)
            {
            }
        }

        return 0;
    }

    private static double TimeRun(InferenceSession session, IReadOnlyDictionary<string, OrtValue> inputs)
    {
        long start = Stopwatch.GetTimestamp();
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, inputs.Keys.ToArray(), inputs.Values.ToArray(), session.OutputNames);
        return Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    // Inputs of the declared types: dynamic axes become the batch (1), 77 tokens, or the latent side (32); ids are zeros (a valid
    // token), floats a small ramp (the values do not change the work).
    private static Dictionary<string, OrtValue> SmallInputs(InferenceSession session, int latent, int batch)
    {
        var inputs = new Dictionary<string, OrtValue>(StringComparer.Ordinal);
        foreach (var (name, meta) in session.InputMetadata)
        {
            var dims = meta.Dimensions.Select((d, axis) => (long)(d > 0 ? d : axis == 0 ? batch : meta.Dimensions.Length == 4 ? latent : 77)).ToArray();
            long count = dims.Aggregate(1L, (a, b) => a * b);
            inputs[name] = meta.ElementDataType switch
            {
                Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Int64 => OrtValue.CreateTensorValueFromMemory(new long[count], dims),
                Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Int32 => OrtValue.CreateTensorValueFromMemory(new int[count], dims),
                Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float16 => OrtValue.CreateTensorValueFromMemory(
                    Enumerable.Range(0, (int)count).Select(i => (Float16)(float)(i % 17 * 0.01)).ToArray(), dims),
                _ => OrtValue.CreateTensorValueFromMemory(Enumerable.Range(0, (int)count).Select(i => i % 17 * 0.01f).ToArray(), dims),
            };
        }

        return inputs;
    }

    private static async Task<(bool Ok, string Line)> RunChildAsync(string arguments, int timeoutSeconds)
    {
        var self = Environment.ProcessPath!;
        var entry = typeof(ScaleCommand).Assembly.Location;
        var info = new ProcessStartInfo(self, self.EndsWith("dotnet", StringComparison.Ordinal) ? $"\"{entry}\" {arguments}" : arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(timeoutSeconds));
        try
        {
            await process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            return (false, $"timed out after {timeoutSeconds} s");
        }

        var lines = (await stdout.ConfigureAwait(false)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (process.ExitCode != 0 || lines.Length == 0)
        {
            var error = (await stderr.ConfigureAwait(false)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            return (false, $"exit {process.ExitCode}: {(error.Length > 0 ? error[0] : "no output")}");
        }

        return (true, lines[^1].Trim());
    }

    /// <summary>Samples resident memory at every denoising step.</summary>
    private sealed class DenoisingPeak : IProgress<GenerationProgress>
    {
        public long Peak { get; private set; }

        public void Report(GenerationProgress value)
        {
            if (value.Phase is GenerationPhase.Denoising)
            {
                Peak = Math.Max(Peak, ProcessMemory.Resident());
            }
        }
    }
}
