namespace Sdxl.Net.Imaging;

/// <summary>
/// Writes each image as a JPEG. A single image goes to the given path; a batch gets an index suffix
/// (<c>out.jpg</c> → <c>out_0.jpg</c>, <c>out_1.jpg</c>, …). Files are written atomically, all or none.
/// JPEG files carry no recipe; use <see cref="PngFileSink"/> to keep it.
/// </summary>
public sealed class JpegFileSink : LossyFileSink
{
    /// <summary>Creates a sink that writes to <paramref name="path"/>.</summary>
    /// <param name="path">The target file.</param>
    /// <param name="quality">The JPEG quality, 1 to 100 (default 90).</param>
    public JpegFileSink(string path, int quality = 90)
        : base(path, quality, ImageFileFormat.Jpeg)
    {
    }
}

/// <summary>
/// Writes each image as a lossy WebP. A single image goes to the given path; a batch gets an index suffix
/// (<c>out.webp</c> → <c>out_0.webp</c>, …). Files are written atomically, all or none. WebP files carry no recipe.
/// </summary>
public sealed class WebpFileSink : LossyFileSink
{
    /// <summary>Creates a sink that writes to <paramref name="path"/>.</summary>
    /// <param name="path">The target file.</param>
    /// <param name="quality">The WebP quality, 1 to 100 (default 90).</param>
    public WebpFileSink(string path, int quality = 90)
        : base(path, quality, ImageFileFormat.Webp)
    {
    }
}

/// <summary>A file sink for a lossy format with a quality setting: one file per image, batch files indexed, all or none.</summary>
public abstract class LossyFileSink : IImageSink
{
    private readonly ImageFileFormat _format;

    private protected LossyFileSink(string path, int quality, ImageFileFormat format)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ImageEncoding.CheckQuality(quality, nameof(quality));
        Path = path;
        Quality = quality;
        _format = format;
    }

    /// <summary>The target path (for a batch, the index is inserted before the extension).</summary>
    public string Path { get; }

    /// <summary>The encoder quality, 1 to 100.</summary>
    public int Quality { get; }

    /// <inheritdoc />
    public ValueTask WriteAsync(GenerationResult result, CancellationToken cancellationToken = default) =>
        EncodedFileWriter.WriteAsync(result, Path, _format, Quality, cancellationToken);
}

/// <summary>Writes a batch to <see cref="PngFileSink.PathFor"/> paths, all or nothing.</summary>
internal static class EncodedFileWriter
{
    public static async ValueTask WriteAsync(GenerationResult result, string path, ImageFileFormat format, int quality, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(result);
        var files = new List<(string, Func<Stream, CancellationToken, Task>)>(result.Images.Count);
        foreach (var image in result.Images)
        {
            var generated = image;
            files.Add((PngFileSink.PathFor(path, image.Index, result.Images.Count),
                (stream, ct) => ImageEncoding.EncodeAsync(stream, result, generated, format, quality, ct)));
        }

        await AtomicFile.WriteAllAsync(files, cancellationToken).ConfigureAwait(false);
    }
}
