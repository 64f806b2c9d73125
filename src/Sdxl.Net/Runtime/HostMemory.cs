using System.Globalization;

namespace Sdxl.Net.Runtime;

/// <summary>How much memory this process can still take from the machine (or its container).</summary>
internal static class HostMemory
{
    private static readonly AsyncLocal<Func<long?>?> s_override = new();

    /// <summary>Replaces the measurement for the current logical flow (tests); <see langword="null"/> measures.</summary>
    internal static Func<long?>? Override
    {
        get => s_override.Value;
        set => s_override.Value = value;
    }

    /// <summary>
    /// Bytes available to this process: Linux's MemAvailable (free memory plus reclaimable caches), capped by the
    /// cgroup's memory.max − memory.current when the process runs under a limit; elsewhere the GC's view of the
    /// machine less this process's working set. <see langword="null"/> when it cannot be told.
    /// </summary>
    public static long? AvailableBytes()
    {
        if (Override is { } measure)
        {
            return measure();
        }

        long? available = ReadMemInfo("MemAvailable:");
        var limit = ReadCgroupBytes("/sys/fs/cgroup/memory.max");
        var used = ReadCgroupBytes("/sys/fs/cgroup/memory.current");
        if (limit is { } max && used is { } current)
        {
            long cgroupFree = Math.Max(0, max - current);
            available = available is { } a ? Math.Min(a, cgroupFree) : cgroupFree;
        }

        if (available is null && !OperatingSystem.IsLinux())
        {
            var info = GC.GetGCMemoryInfo();
            available = Math.Max(0, info.TotalAvailableMemoryBytes - Environment.WorkingSet);
        }

        return available;
    }

    /// <summary>Formats bytes as GB with one decimal.</summary>
    public static string Gigabytes(long bytes) => (bytes / 1e9).ToString("0.0", CultureInfo.InvariantCulture) + " GB";

    private static long? ReadMemInfo(string key)
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
            {
                if (line.StartsWith(key, StringComparison.Ordinal))
                {
                    var parts = line[key.Length..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    return long.Parse(parts[0], CultureInfo.InvariantCulture) * 1024;
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return null;
    }

    private static long? ReadCgroupBytes(string path)
    {
        try
        {
            var text = File.Exists(path) ? File.ReadAllText(path).Trim() : null;
            return text is not null && long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : null;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}
