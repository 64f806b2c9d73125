namespace Sdxl.Net.Hub;

/// <summary>How far a download is: reported while bytes arrive (at most about ten times a second) and after each file.</summary>
/// <param name="File">The file that last made progress (repository path), or null before the first one.</param>
/// <param name="FilesCompleted">Files that are in the snapshot folder now.</param>
/// <param name="FileCount">Files the ONNX layout needs.</param>
/// <param name="BytesDownloaded">Bytes received in this call (resumed bytes already on disk are counted as received).</param>
/// <param name="TotalBytes">Bytes of the files that were not in the cache when the download started; 0 when unknown.</param>
/// <param name="BytesPerSecond">Transfer rate since the first byte of this call.</param>
/// <param name="EstimatedRemaining">Time left at that rate, or null when it cannot be estimated.</param>
public readonly record struct HubDownloadProgress(
    string? File,
    int FilesCompleted,
    int FileCount,
    long BytesDownloaded,
    long TotalBytes,
    double BytesPerSecond,
    TimeSpan? EstimatedRemaining);
