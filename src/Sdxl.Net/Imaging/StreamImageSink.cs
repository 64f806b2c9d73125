namespace Sdxl.Net.Imaging;

/// <summary>
/// Writes each image as a PNG (with its recipe, see <see cref="ImageRecipe"/>) to a stream the caller opens per image:
/// an HTTP response, a blob upload, a <see cref="MemoryStream"/>.
/// </summary>
/// <remarks>
/// Streams are written in batch order. A stream is disposed after its image unless the sink was created with
/// <c>leaveOpen: true</c>. A stream cannot be un-written, so a failure part-way through a batch leaves the earlier
/// streams complete; use <see cref="ImageFileSink"/> when a batch must be all-or-nothing.
/// </remarks>
public sealed class StreamImageSink : IImageSink
{
    private readonly Func<GenerationResult, GeneratedImage, CancellationToken, ValueTask<Stream>> _openStream;
    private readonly bool _leaveOpen;

    /// <summary>Creates a sink that asks <paramref name="openStream"/> for the stream of each image.</summary>
    /// <param name="openStream">Returns a writable stream for one image of a result.</param>
    /// <param name="leaveOpen">Whether the streams stay open after writing (the caller disposes them).</param>
    public StreamImageSink(Func<GenerationResult, GeneratedImage, CancellationToken, ValueTask<Stream>> openStream, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(openStream);
        _openStream = openStream;
        _leaveOpen = leaveOpen;
    }

    /// <inheritdoc />
    public async ValueTask WriteAsync(GenerationResult result, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(result);
        foreach (var image in result.Images)
        {
            var stream = await _openStream(result, image, cancellationToken).ConfigureAwait(false)
                ?? throw new InvalidOperationException($"The stream factory returned null for image {image.Index}.");
            if (!stream.CanWrite)
            {
                throw new InvalidOperationException($"The stream for image {image.Index} is not writable.");
            }

            try
            {
                await ImageEncoding.EncodeAsync(stream, result, image, ImageFileFormat.Png, quality: 100, cancellationToken).ConfigureAwait(false);
                await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                if (!_leaveOpen)
                {
                    await stream.DisposeAsync().ConfigureAwait(false);
                }
            }
        }
    }
}
