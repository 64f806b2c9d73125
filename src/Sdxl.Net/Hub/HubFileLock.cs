namespace Sdxl.Net.Hub;

/// <summary>
/// A lock file held open with <see cref="FileShare.None"/>: exclusive across processes (an advisory lock on Unix, a
/// share lock on Windows) and across threads of one process. The file itself stays, as huggingface_hub's do: deleting
/// a lock file another process is waiting on would let two holders in.
/// </summary>
internal static class HubFileLock
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(100);

    public static async Task<FileStream> AcquireAsync(string path, TimeSpan timeout, string what, CancellationToken ct)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var started = DateTime.UtcNow;
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, bufferSize: 1, FileOptions.None);
            }
            catch (IOException) when (DateTime.UtcNow - started < timeout)
            {
                await Task.Delay(PollInterval, ct).ConfigureAwait(false);
            }
            catch (IOException e)
            {
                throw new SdxlHubException(HubErrorKind.LockTimeout,
                    $"Waited {timeout.TotalSeconds:0} s for the lock on {what} ('{path}'): another process is downloading it. " +
                    "Wait for it to finish, or, if no other download is running, delete the lock file.", e);
            }
        }
    }
}
