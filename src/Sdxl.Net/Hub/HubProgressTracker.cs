using System.Diagnostics;

namespace Sdxl.Net.Hub;

/// <summary>Adds up the bytes of parallel downloads and reports them at most every 100 ms, plus once per finished file.</summary>
internal sealed class HubProgressTracker(IProgress<HubDownloadProgress>? progress, int fileCount, int filesCompleted, long totalBytes)
{
    private static readonly long ReportInterval = Stopwatch.Frequency / 10;
    private readonly object _gate = new();
    private readonly Stopwatch _clock = new();
    private long _bytes;
    private long _lastReport = long.MinValue;
    private int _filesCompleted = filesCompleted;
    private string? _file;

    public void AddBytes(string file, long count)
    {
        lock (_gate)
        {
            if (!_clock.IsRunning)
            {
                _clock.Start();
            }

            _bytes += count;
            _file = file;
            if (_clock.ElapsedTicks - _lastReport >= ReportInterval)
            {
                ReportLocked();
            }
        }
    }

    public void FileCompleted(string file)
    {
        lock (_gate)
        {
            _filesCompleted++;
            _file = file;
            ReportLocked();
        }
    }

    private void ReportLocked()
    {
        if (progress is null)
        {
            return;
        }

        _lastReport = _clock.ElapsedTicks;
        double seconds = _clock.Elapsed.TotalSeconds;
        double rate = seconds > 0 ? _bytes / seconds : 0;
        TimeSpan? remaining = rate > 0 && totalBytes > 0 ? TimeSpan.FromSeconds(Math.Max(0, totalBytes - _bytes) / rate) : null;
        progress.Report(new HubDownloadProgress(_file, _filesCompleted, fileCount, _bytes, totalBytes, rate, remaining));
    }
}
