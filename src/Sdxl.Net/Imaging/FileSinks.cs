namespace Sdxl.Net.Imaging;

/// <summary>
/// Writes each image as an 8-bit PNG. A single image goes to the given path; a batch gets an index suffix
/// (<c>out.png</c> → <c>out_0.png</c>, <c>out_1.png</c>, …). Files are written atomically, all or none.
/// Each PNG carries the generation's recipe in text chunks (see <see cref="ImageRecipe"/>).
/// </summary>
public sealed class PngFileSink : IImageSink
{
    /// <summary>Creates a sink that writes to <paramref name="path"/>.</summary>
    public PngFileSink(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        Path = path;
    }

    /// <summary>The target path (for a batch, the index is inserted before the extension).</summary>
    public string Path { get; }

    /// <summary>The file a batch image goes to.</summary>
    public static string PathFor(string path, int index, int count)
    {
        if (count <= 1)
        {
            return path;
        }

        var dir = System.IO.Path.GetDirectoryName(path) ?? string.Empty;
        return System.IO.Path.Combine(dir, $"{System.IO.Path.GetFileNameWithoutExtension(path)}_{index}{System.IO.Path.GetExtension(path)}");
    }

    /// <inheritdoc />
    public ValueTask WriteAsync(GenerationResult result, CancellationToken cancellationToken = default) =>
        EncodedFileWriter.WriteAsync(result, Path, ImageFileFormat.Png, quality: 100, cancellationToken);
}

/// <summary>
/// Writes the whole batch as one NumPy float32 array [N, 3, H, W] with values in [0, 1], before 8-bit quantization —
/// the exact output to compare with diffusers.
/// </summary>
public sealed class NpyFileSink : IImageSink
{
    /// <summary>Creates a sink that writes to <paramref name="path"/>.</summary>
    public NpyFileSink(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        Path = path;
    }

    /// <summary>The target path.</summary>
    public string Path { get; }

    /// <inheritdoc />
    public async ValueTask WriteAsync(GenerationResult result, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(result);
        if (result.Images.Count == 0)
        {
            throw new ArgumentException("The result holds no images.", nameof(result));
        }

        var first = result.Images[0];
        int per = 3 * first.Width * first.Height;
        var data = new float[per * result.Images.Count];
        foreach (var image in result.Images)
        {
            image.Pixels.Span.CopyTo(data.AsSpan(image.Index * per, per));
        }

        await AtomicFile.WriteAsync(Path, (stream, _) =>
        {
            NpyFile.Write(stream, data, [result.Images.Count, 3, first.Height, first.Width]);
            return Task.CompletedTask;
        }, cancellationToken).ConfigureAwait(false);
    }
}
