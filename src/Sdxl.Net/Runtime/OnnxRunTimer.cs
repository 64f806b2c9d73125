using System.Collections.Concurrent;
using System.Diagnostics;

namespace Sdxl.Net.Runtime;

/// <summary>
/// Accumulates the time spent inside ONNX Runtime (<c>InferenceSession.Run</c> and <c>RunWithBinding</c>), per
/// component, so benchmarks can tell host overhead from model time. Off by default; when off, each run pays one
/// volatile read.
/// </summary>
/// <remarks>Process-wide: meaningful only while one generation at a time runs.</remarks>
internal static class OnnxRunTimer
{
    private static readonly ConcurrentDictionary<string, Accumulator> ByComponent = new(StringComparer.Ordinal);
    private static volatile bool s_enabled;

    public static bool IsEnabled => s_enabled;

    public static void Enable() => s_enabled = true;

    public static void Disable() => s_enabled = false;

    public static void Reset() => ByComponent.Clear();

    /// <summary>The time inside ONNX Runtime, summed over components.</summary>
    public static TimeSpan Total
    {
        get
        {
            long ticks = 0;
            foreach (var (_, a) in ByComponent)
            {
                ticks += Interlocked.Read(ref a.Ticks);
            }

            return Stopwatch.GetElapsedTime(0, ticks);
        }
    }

    /// <summary>Per component (<c>unet</c>, <c>text_encoder</c>, …): the time inside ONNX Runtime and the number of runs.</summary>
    public static IReadOnlyDictionary<string, (TimeSpan Elapsed, long Runs)> Snapshot()
    {
        var result = new Dictionary<string, (TimeSpan, long)>(StringComparer.Ordinal);
        foreach (var (name, a) in ByComponent)
        {
            result[name] = (Stopwatch.GetElapsedTime(0, Interlocked.Read(ref a.Ticks)), Interlocked.Read(ref a.Runs));
        }

        return result;
    }

    /// <summary>The <see cref="Stopwatch"/> timestamp at which <paramref name="component"/> first started a run since the last reset, or null.</summary>
    public static long? FirstStart(string component) =>
        ByComponent.TryGetValue(component, out var a) && Interlocked.Read(ref a.FirstStart) is var t and not 0 ? t : null;

    /// <summary>A timestamp to pass to <see cref="Stop"/>, or 0 when timing is off.</summary>
    public static long Start() => s_enabled ? Stopwatch.GetTimestamp() : 0;

    public static void Stop(string component, long start)
    {
        if (start == 0)
        {
            return;
        }

        long elapsed = Stopwatch.GetTimestamp() - start;
        var a = ByComponent.GetOrAdd(component, static _ => new Accumulator());
        Interlocked.CompareExchange(ref a.FirstStart, start, 0);
        Interlocked.Add(ref a.Ticks, elapsed);
        Interlocked.Increment(ref a.Runs);
    }

    private sealed class Accumulator
    {
        public long Ticks;
        public long Runs;
        public long FirstStart;
    }
}
