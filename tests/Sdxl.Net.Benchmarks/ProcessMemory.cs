using System.Diagnostics;

namespace Sdxl.Net.Benchmarks;

/// <summary>Resident and peak memory of this process (Linux <c>/proc/self/status</c>, else <see cref="Process"/>).</summary>
internal static class ProcessMemory
{
    /// <summary>Current resident set size in bytes (VmRSS).</summary>
    public static long Resident() => ReadStatus("VmRSS:") ?? Refreshed().WorkingSet64;

    /// <summary>Peak resident set size in bytes (VmHWM): managed heap, native ONNX Runtime arenas and mapped weights.</summary>
    public static long PeakResident() => ReadStatus("VmHWM:") ?? Refreshed().PeakWorkingSet64;

    public static string Megabytes(long bytes) => (bytes / (1024.0 * 1024.0)).ToString("F1", System.Globalization.CultureInfo.InvariantCulture) + " MiB";

    private static Process Refreshed()
    {
        var p = Process.GetCurrentProcess();
        p.Refresh();
        return p;
    }

    private static long? ReadStatus(string key)
    {
        const string path = "/proc/self/status";
        if (!File.Exists(path))
        {
            return null;
        }

        foreach (var line in File.ReadLines(path))
        {
            if (line.StartsWith(key, StringComparison.Ordinal))
            {
                var parts = line[key.Length..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return long.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture) * 1024;
            }
        }

        return null;
    }
}
