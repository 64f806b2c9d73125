using System.Diagnostics;

namespace Sdxl.Net.Benchmarks;

/// <summary>
/// Records when the pipeline reports each phase, synchronously on the reporting thread (unlike
/// <see cref="Progress{T}"/>, which posts), and samples the managed heap while the generation runs.
/// </summary>
internal sealed class PhaseRecorder : IProgress<GenerationProgress>
{
    private readonly List<(GenerationPhase Phase, int Step, long Timestamp)> _events = [];

    public long PeakManagedBytes { get; private set; }

    public void Report(GenerationProgress value)
    {
        _events.Add((value.Phase, value.Step, Stopwatch.GetTimestamp()));
        PeakManagedBytes = Math.Max(PeakManagedBytes, GC.GetTotalMemory(false));
    }

    public void Clear() => _events.Clear();

    public void ResetPeak() => PeakManagedBytes = 0;

    /// <summary>
    /// Wall time of prompt encoding (from the call to the first UNet run: validation, scheduling onto the thread pool,
    /// tokenizing, encoding, conditioning, schedule and initial noise), denoising (to the decoding report) and decoding
    /// (to the completion report, after the result is handed back to the caller's context).
    /// </summary>
    /// <param name="start">When <c>GenerateAsync</c> was called.</param>
    /// <param name="firstUNetRun">When the first UNet run started (from the ONNX run timer).</param>
    public (TimeSpan Prompt, TimeSpan Denoise, TimeSpan Decode) Phases(long start, long firstUNetRun)
    {
        long decode = Find(GenerationPhase.Decoding) ?? throw new InvalidOperationException("No decoding report.");
        long end = Find(GenerationPhase.Completed) ?? throw new InvalidOperationException("No completion report.");
        return (Stopwatch.GetElapsedTime(start, firstUNetRun), Stopwatch.GetElapsedTime(firstUNetRun, decode), Stopwatch.GetElapsedTime(decode, end));
    }

    private long? Find(GenerationPhase phase)
    {
        foreach (var e in _events)
        {
            if (e.Phase == phase)
            {
                return e.Timestamp;
            }
        }

        return null;
    }
}
