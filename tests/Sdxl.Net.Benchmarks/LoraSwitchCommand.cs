using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;
using Sdxl.Net.Lora;
using Sdxl.Net.Runtime;
using Sdxl.Net.Synthetic;

namespace Sdxl.Net.Benchmarks;

/// <summary>
/// <c>lora-switch</c>: what switching between two LoRA adapters costs on the small synthetic UNet, per mechanism:
/// (a) re-creating the session with the merged initializers added to its options, (b) updating user-owned initializer
/// buffers in place under one session with pre-packing disabled, (c) ONNX Runtime's LoRA adapter API. Each switch is
/// checked against a freshly created session for the same adapter.
/// </summary>
internal static class LoraSwitchCommand
{
    public static Task<int> RunAsync(CommandOptions options)
    {
        int rounds = options.GetInt32("rounds", 4);
        int rank = options.GetInt32("rank", 16);
        var dir = Path.Combine(Path.GetTempPath(), $"sdxl-bench-lora-{Guid.NewGuid():N}");
        try
        {
            SyntheticSdxlModel.Write(dir, SyntheticModelOptions.Small with { DiffusersModuleNames = true });
            var targets = new LoraTargets(dir);
            var index = targets.Index(LoraComponent.Unet)!;
            var linear = index.Modules.Values.Where(t => t.Layout != WeightLayout.Convolution).ToList();
            var fileA = Path.Combine(dir, "a.safetensors");
            var fileB = Path.Combine(dir, "b.safetensors");
            WriteLora(fileA, linear, rank, seed: 1);
            WriteLora(fileB, linear, rank, seed: 2);
            var files = new LoraFileCache();
            var model = targets.ModelFile(LoraComponent.Unet);
            long weightBytes = linear.Sum(t => t.Weight.ElementCount * 4);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"small synthetic UNet ({new FileInfo(model).Length / 1e6:F1} MB), {linear.Count} linear modules adapted (rank {rank}, {weightBytes / 1e6:F1} MB of weights), {Environment.ProcessorCount} cores, {rounds} switches"));

            // Reference outputs: a fresh session per adapter (mechanism a's result).
            var plain = Time(() => new InferenceSession(model, Options(null)), out var plainSession);
            double runMs = TimeMs(() => Run(plainSession));
            plainSession.Dispose();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"plain session creation {plain:F0} ms; one UNet run (batch 2, 32x32 latents) {runMs:F0} ms"));

            // (a) Re-create the session with AddInitializer overrides.
            var mergeMs = new List<double>();
            var createMs = new List<double>();
            var expected = new Dictionary<string, float[]>();
            InferenceSession? current = null;
            LoraOverlay? currentOverlay = null;
            long rssBefore = ProcessMemory.Resident();
            long rssTwoSessions = 0;
            for (int i = 0; i < rounds; i++)
            {
                var file = i % 2 == 0 ? fileA : fileB;
                LoraOverlay overlay = null!;
                mergeMs.Add(TimeMs(() => overlay = LoraOverlay.Build(targets, [new LoraReference(file)], files, NullLogger.Instance)));
                InferenceSession session = null!;
                createMs.Add(TimeMs(() => session = new InferenceSession(model, Options(overlay.For("unet")))));
                expected.TryAdd(file, Run(session));
                rssTwoSessions = Math.Max(rssTwoSessions, ProcessMemory.Resident());
                current?.Dispose();
                currentOverlay?.Dispose();
                (current, currentOverlay) = (session, overlay);
            }

            long rssOne = ProcessMemory.Resident();
            current?.Dispose();
            currentOverlay?.Dispose();

            // (b) One session over user-owned buffers, prepacking off; a switch rewrites the buffers.
            var buffers = linear.ToDictionary(t => t.Weight.Name, t => new UserOwnedTensor(Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, t.Weight.Dimensions));
            using var first = LoraOverlay.Build(targets, [new LoraReference(fileA)], files, NullLogger.Instance);
            Copy(first, buffers);
            var inPlace = new SessionCustomization(buffers.Select(p => new KeyValuePair<string, OrtValue>(p.Key, p.Value.Value)).ToList(), disablePrepacking: true);
            InferenceSession shared = null!;
            double sharedCreate = TimeMs(() => shared = new InferenceSession(model, Options(inPlace)));
            double sharedRun = TimeMs(() => Run(shared));
            var updateMs = new List<double>();
            double inPlaceError = 0, recreateError = 0;
            for (int i = 0; i < rounds; i++)
            {
                var file = i % 2 == 0 ? fileB : fileA;
                updateMs.Add(TimeMs(() =>
                {
                    using var overlay = LoraOverlay.Build(targets, [new LoraReference(file)], files, NullLogger.Instance);
                    Copy(overlay, buffers);
                }));
                inPlaceError = Math.Max(inPlaceError, MaxAbs(Run(shared), expected[file]));
            }

            // Re-created sessions agree with each other run to run (the reference's own noise).
            using (var again = LoraOverlay.Build(targets, [new LoraReference(fileA)], files, NullLogger.Instance))
            using (var session = new InferenceSession(model, Options(again.For("unet"))))
            {
                recreateError = MaxAbs(Run(session), expected[fileA]);
            }

            shared.Dispose();
            foreach (var b in buffers.Values)
            {
                b.Dispose();
            }

            var report = new StringBuilder();
            report.AppendLine("| mechanism | switch time | of which merge | extra memory | correct |");
            report.AppendLine("| --- | --- | --- | --- | --- |");
            report.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| (a) re-create session with AddInitializer overrides | {Median(mergeMs) + Median(createMs):F0} ms | {Median(mergeMs):F0} ms | merged initializers ({weightBytes / 1e6:F1} MB) + a second session while the old one drains (RSS peak +{(rssTwoSessions - rssBefore) / 1e6:F0} MB, steady +{(rssOne - rssBefore) / 1e6:F0} MB) | yes (max abs diff vs a fresh session {recreateError:E1}) |"));
            report.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| (b) in-place update of user-owned buffers, prepacking disabled | {Median(updateMs):F0} ms | {Median(updateMs):F0} ms | the buffers ({weightBytes / 1e6:F1} MB); runs {sharedRun:F0} ms vs {runMs:F0} ms with prepacking | {(inPlaceError <= 1e-4 ? "yes" : "NO")} on CPU for MatMul/Gemm weights (max abs diff {inPlaceError:E1}); session created in {sharedCreate:F0} ms |"));
            report.AppendLine("| (c) ONNX Runtime LoRA adapter API (OrtLoraAdapter, RunOptions.AddActiveLoraAdapter) | not measurable | - | - | not applicable: needs a model exported with LoRA A/B as graph inputs and adapters in ORT's flatbuffers format |");
            Console.Write(report);
            return Task.FromResult(0);
        }
        finally
        {
            SyntheticModels.TryDelete(dir);
        }
    }

    private static SessionOptions Options(SessionCustomization? customization)
    {
        var so = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR };
        customization?.ApplyTo(so);
        return so;
    }

    private static void Copy(LoraOverlay overlay, Dictionary<string, UserOwnedTensor> buffers)
    {
        foreach (var (name, value) in overlay.For("unet")!.InitializerOverrides)
        {
            value.GetTensorDataAsSpan<float>().CopyTo(buffers[name].AsSpan<float>());
        }
    }

    private static void WriteLora(string path, List<LoraTarget> modules, int rank, int seed)
    {
        var random = new Random(seed);
        var header = new Dictionary<string, object>();
        using var data = new MemoryStream();
        void Add(string name, long[] shape, int count)
        {
            long begin = data.Position;
            var bytes = new byte[count * 4];
            for (int i = 0; i < count; i++)
            {
                BitConverter.TryWriteBytes(bytes.AsSpan(i * 4), (float)((random.NextDouble() * 2) - 1) * 0.05f);
            }

            data.Write(bytes);
            header[name] = new Dictionary<string, object> { ["dtype"] = "F32", ["shape"] = shape, ["data_offsets"] = new[] { begin, data.Position } };
        }

        foreach (var m in modules)
        {
            var (outputs, inputs) = m.MatrixShape;
            var key = "lora_unet_" + m.ModulePath.Replace('.', '_');
            Add(key + ".lora_down.weight", [rank, inputs], (int)(rank * inputs));
            Add(key + ".lora_up.weight", [outputs, rank], (int)(outputs * rank));
        }

        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        using var file = File.Create(path);
        file.Write(BitConverter.GetBytes((ulong)json.Length));
        file.Write(json);
        data.WriteTo(file);
    }

    private static float[] Run(InferenceSession session)
    {
        var random = new Random(5);
        float[] Values(int n) => Enumerable.Range(0, n).Select(_ => (float)random.NextDouble()).ToArray();
        var spec = SyntheticModelOptions.Small;
        using var sample = OrtValue.CreateTensorValueFromMemory(Values(2 * 4 * 32 * 32), [2, 4, 32, 32]);
        using var timestep = OrtValue.CreateTensorValueFromMemory(new[] { 500f }, []);
        using var hidden = OrtValue.CreateTensorValueFromMemory(Values(2 * 77 * (spec.TextHidden1 + spec.TextHidden2)), [2, 77, spec.TextHidden1 + spec.TextHidden2]);
        using var embeds = OrtValue.CreateTensorValueFromMemory(Values(2 * spec.ProjectionDim), [2, spec.ProjectionDim]);
        using var timeIds = OrtValue.CreateTensorValueFromMemory(Values(12), [2, 6]);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, ["sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids"], [sample, timestep, hidden, embeds, timeIds], session.OutputNames);
        return outputs[0].GetTensorDataAsSpan<float>().ToArray();
    }

    private static double MaxAbs(float[] a, float[] b)
    {
        double max = 0;
        for (int i = 0; i < a.Length; i++)
        {
            max = Math.Max(max, Math.Abs(a[i] - b[i]));
        }

        return max;
    }

    private static double Time<T>(Func<T> create, out T value)
    {
        var watch = Stopwatch.StartNew();
        value = create();
        return watch.Elapsed.TotalMilliseconds;
    }

    private static double TimeMs(Action action)
    {
        var watch = Stopwatch.StartNew();
        action();
        return watch.Elapsed.TotalMilliseconds;
    }

    private static double TimeMs<T>(Func<T> action)
    {
        var watch = Stopwatch.StartNew();
        action();
        return watch.Elapsed.TotalMilliseconds;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted[sorted.Count / 2];
    }
}
