using System.Runtime.CompilerServices;

namespace Sdxl.Net.Tests;

/// <summary>
/// Keeps the test run's temporary files out of the machine's temp folder: before any test runs, TMPDIR (which
/// <see cref="Path.GetTempPath"/> reads on every call, and child processes inherit) is pointed at a folder of this
/// run under the test output (bin/…/test-temp/&lt;pid&gt;). Folders of earlier runs whose process is gone are
/// removed, and this run's is removed when the process exits; test-host processes that end without running their
/// exit handlers therefore leave nothing in /tmp, only a folder under bin that the next run deletes.
/// </summary>
internal static class TestTempFolder
{
    [ModuleInitializer]
    internal static void Redirect()
    {
        if (OperatingSystem.IsWindows())
        {
            return;   // Path.GetTempPath reads TMP/TEMP there; the Windows temp folder is the user's own.
        }

        var root = Path.Combine(AppContext.BaseDirectory, "test-temp");
        RemoveFoldersOfEndedRuns(root);
        var mine = Path.Combine(root, Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Directory.CreateDirectory(mine);
        Environment.SetEnvironmentVariable("TMPDIR", mine + Path.DirectorySeparatorChar);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => TryDelete(mine);
    }

    private static void RemoveFoldersOfEndedRuns(string root)
    {
        if (!Directory.Exists(root))
        {
            return;
        }

        foreach (var folder in Directory.GetDirectories(root))
        {
            if (int.TryParse(Path.GetFileName(folder), out var pid) && !IsRunning(pid))
            {
                TryDelete(folder);
            }
        }
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private static void TryDelete(string folder)
    {
        try
        {
            Directory.Delete(folder, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
