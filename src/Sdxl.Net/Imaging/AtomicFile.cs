namespace Sdxl.Net.Imaging;

/// <summary>Writes a file through a temporary sibling and a rename, so readers never see a half-written file.</summary>
internal static class AtomicFile
{
    public static async Task WriteAsync(string path, Func<Stream, CancellationToken, Task> write, CancellationToken cancellationToken)
    {
        var full = Path.GetFullPath(path);
        var directory = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(directory))
        {
            throw new DirectoryNotFoundException($"Output directory does not exist: '{directory}'.");
        }

        var temp = Path.Combine(directory, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            await using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 81920, useAsync: true))
            {
                await write(stream, cancellationToken).ConfigureAwait(false);
                await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
            }

            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>Writes several files all-or-nothing: if one fails, the ones already written by this call are removed.</summary>
    public static async Task WriteAllAsync(IReadOnlyList<(string Path, Func<Stream, CancellationToken, Task> Write)> files, CancellationToken cancellationToken)
    {
        var written = new List<string>(files.Count);
        try
        {
            foreach (var (path, write) in files)
            {
                await WriteAsync(path, write, cancellationToken).ConfigureAwait(false);
                written.Add(path);
            }
        }
        catch
        {
            foreach (var path in written)
            {
                TryDelete(path);
            }

            throw;
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
