using Sdxl.Net.Imaging;

namespace Sdxl.Net.Serving;

/// <summary>A generated image as PNG bytes (with the library's recipe chunk), ready for a wire or a JSON body.</summary>
/// <param name="Index">The image's index in its request.</param>
/// <param name="Seed">Its seed, when known.</param>
/// <param name="Png">The PNG file.</param>
public sealed record EncodedImage(int Index, long? Seed, byte[] Png)
{
    /// <summary>Encodes every image of <paramref name="result"/> as <see cref="StreamImageSink"/> writes it.</summary>
    public static async Task<IReadOnlyList<EncodedImage>> EncodePngAsync(GenerationResult result, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(result);
        var streams = new List<(GeneratedImage Image, MemoryStream Stream)>();
        var sink = new StreamImageSink((_, image, _) =>
        {
            var stream = new MemoryStream();
            streams.Add((image, stream));
            return ValueTask.FromResult<Stream>(stream);
        });
        await sink.WriteAsync(result, cancellationToken).ConfigureAwait(false);
        return [.. streams.Select(s => new EncodedImage(s.Image.Index, s.Image.Seed, s.Stream.ToArray()))];
    }
}
