using System.Globalization;
using System.Text.RegularExpressions;

namespace Sdxl.Net.Runtime;

/// <summary>
/// Operating-system errors named in words. ONNX Runtime reports a file it cannot open as "system error number 13";
/// the files are therefore opened here first, and any number left in a native message is translated.
/// </summary>
internal static partial class FileAccessCheck
{
    /// <summary>The POSIX error numbers a model load meets (Linux values), in words.</summary>
    private static readonly Dictionary<int, string> Words = new()
    {
        [1] = "operation not permitted",
        [2] = "no such file or directory",
        [5] = "input/output error",
        [12] = "out of memory",
        [13] = "permission denied",
        [20] = "a path component is not a directory",
        [21] = "is a directory",
        [23] = "too many open files in the system",
        [24] = "too many open files",
        [27] = "file too large",
        [28] = "no space left on device",
        [36] = "file name too long",
        [40] = "too many levels of symbolic links",
    };

    /// <summary>The words for a POSIX error number, e.g. 13 → "permission denied".</summary>
    public static string Describe(int errno) =>
        Words.TryGetValue(errno, out var words) ? words : "system error " + errno.ToString(CultureInfo.InvariantCulture);

    /// <summary>Replaces "system error number N" (ONNX Runtime's wording) by the error's name.</summary>
    public static string Translate(string message) =>
        SystemErrorNumber().Replace(message, m => Describe(int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)));

    /// <summary>
    /// Opens <paramref name="path"/> for reading and closes it, so that a missing, unreadable, looping or non-file
    /// path is reported by name and in words before a native loader meets it.
    /// </summary>
    /// <exception cref="SdxlModelException">The file cannot be read; the message says why.</exception>
    public static void EnsureReadable(string path, string component)
    {
        try
        {
            if (Directory.Exists(path))
            {
                throw new SdxlModelException($"{component}: '{path}' is a directory, not a model file.");
            }

            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SdxlModelException($"{component}: cannot read '{path}': {Reason(e)}.", e);
        }
    }

    /// <summary>
    /// Checks that a model file exists (a link counts, even a looping one: opening it names the fault) and can be
    /// read, before ONNX Runtime or the graph reader opens it.
    /// </summary>
    /// <exception cref="SdxlModelException">The file is missing or cannot be read; the message says why.</exception>
    public static void EnsureModelFile(string path, string component)
    {
        if (!File.Exists(path) && new FileInfo(path).LinkTarget is null)
        {
            throw new SdxlModelException($"{component}: model file not found: '{path}'.");
        }

        EnsureReadable(path, component);
    }

    /// <summary>Why an I/O call failed, in words ("permission denied", "too many levels of symbolic links", ...).</summary>
    public static string Reason(Exception e)
    {
        if (e is UnauthorizedAccessException)
        {
            return Words[13];
        }

        if (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return Words[2];
        }

        // On Unix .NET puts strerror's text in the message ("Too many levels of symbolic links : 'path'"); keep the
        // reason without the repeated path.
        var message = e.Message;
        int quote = message.IndexOf(" : '", StringComparison.Ordinal);
        var reason = (quote > 0 ? message[..quote] : message).Trim().TrimEnd('.');
        return reason.Length > 0 ? char.ToLowerInvariant(reason[0]) + reason[1..] : "unknown error";
    }

    /// <summary>
    /// The file a path finally names: through symbolic links, as in Hugging Face cache snapshots (every file there is
    /// a link to a blob). <see cref="FileInfo"/> describes a link itself — its <c>Length</c> is the length of the
    /// target's path — so sizes and times must be read from the target.
    /// </summary>
    /// <exception cref="IOException">The links loop, or a link cannot be read.</exception>
    public static FileInfo Resolve(string path)
    {
        var info = new FileInfo(path);
        return info.LinkTarget is not null && info.ResolveLinkTarget(returnFinalTarget: true) is FileInfo target ? target : info;
    }

    /// <summary>
    /// <see cref="Resolve"/>, or the link itself when its links loop or cannot be read (opening the path then reports
    /// that fault in its own words).
    /// </summary>
    public static FileInfo ResolveOrSelf(string path)
    {
        try
        {
            return Resolve(path);
        }
        catch (IOException)
        {
            return new FileInfo(path);
        }
    }

    [GeneratedRegex(@"system error number (\d+)")]
    private static partial Regex SystemErrorNumber();
}
