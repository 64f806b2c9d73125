using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;

namespace Sdxl.Net.Imaging;

/// <summary>
/// Writes a file through a temporary sibling and a rename, so readers never see a half-written file. Temporary files
/// being written are registered, and removed if the process exits mid-write (SIGTERM, or a second Ctrl+C, which end
/// the process without unwinding the writing thread).
/// </summary>
internal static class AtomicFile
{
    /// <summary>The longest file name most file systems allow (NAME_MAX: 255 bytes on Linux and macOS, 255 UTF-16 units on NTFS).</summary>
    public const int MaxNameBytes = 255;

    private static readonly ConcurrentDictionary<string, byte> InFlight = new(StringComparer.Ordinal);
    private static int _exitHandlerRegistered;

    /// <summary>The temporary files being written now.</summary>
    internal static ICollection<string> InFlightFiles => InFlight.Keys;

    /// <summary>
    /// The temporary sibling's name: <c>.NAME.GUID.tmp</c>, with NAME shortened (and a hash of the whole name added)
    /// when the result would exceed <see cref="MaxNameBytes"/> — an output name of 218 to 255 bytes is valid, and its
    /// temporary name must be too.
    /// </summary>
    internal static string TemporaryName(string fileName)
    {
        var suffix = $".{Guid.NewGuid():N}.tmp";
        int room = MaxNameBytes - 1 - suffix.Length;
        if (Encoding.UTF8.GetByteCount(fileName) <= room)
        {
            return "." + fileName + suffix;
        }

        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(fileName)).AsSpan(0, 4));
        int budget = room - 1 - hash.Length;
        var prefix = new StringBuilder();
        int bytes = 0;
        foreach (var rune in fileName.EnumerateRunes())
        {
            if (bytes + rune.Utf8SequenceLength > budget)
            {
                break;
            }

            prefix.Append(rune.ToString());
            bytes += rune.Utf8SequenceLength;
        }

        return "." + prefix + "~" + hash + suffix;
    }

    /// <summary>Removes every temporary file still being written (the process is ending).</summary>
    internal static void DeleteInFlight()
    {
        foreach (var temp in InFlight.Keys)
        {
            TryDelete(temp);
            InFlight.TryRemove(temp, out _);
        }
    }

    public static async Task WriteAsync(string path, Func<Stream, CancellationToken, Task> write, CancellationToken cancellationToken)
    {
        var full = Path.GetFullPath(path);
        var directory = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(directory))
        {
            throw new DirectoryNotFoundException($"Output directory does not exist: '{directory}'.");
        }

        var temp = Path.Combine(directory, TemporaryName(Path.GetFileName(full)));
        if (Interlocked.Exchange(ref _exitHandlerRegistered, 1) == 0)
        {
            AppDomain.CurrentDomain.ProcessExit += (_, _) => DeleteInFlight();
        }

        InFlight.TryAdd(temp, 0);
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
        finally
        {
            InFlight.TryRemove(temp, out _);
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
