using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Formats.Webp;

namespace Sdxl.Net.Imaging;

/// <summary>The file formats the file sinks write.</summary>
public enum ImageFileFormat
{
    /// <summary>Lossless 8-bit PNG carrying the generation recipe in text chunks (see <see cref="ImageRecipe"/>).</summary>
    Png,

    /// <summary>Baseline JPEG (lossy; no recipe).</summary>
    Jpeg,

    /// <summary>Lossy WebP (no recipe).</summary>
    Webp,
}

/// <summary>Encodes generated images to the file formats of the sinks.</summary>
internal static class ImageEncoding
{
    /// <summary>The format a file extension (with or without its dot, any case) stands for.</summary>
    /// <exception cref="ArgumentException">The extension is not .png, .jpg, .jpeg or .webp.</exception>
    public static ImageFileFormat FormatForExtension(string extension, string paramName)
    {
        return extension.TrimStart('.').ToLowerInvariant() switch
        {
            "png" => ImageFileFormat.Png,
            "jpg" or "jpeg" => ImageFileFormat.Jpeg,
            "webp" => ImageFileFormat.Webp,
            _ => throw new ArgumentException(
                $"Unsupported image file extension '{extension}'; expected .png, .jpg, .jpeg or .webp.", paramName),
        };
    }

    public static void CheckQuality(int quality, string paramName)
    {
        if (quality is < 1 or > 100)
        {
            throw new ArgumentOutOfRangeException(paramName, quality, "Quality must be between 1 and 100.");
        }
    }

    /// <summary>Encodes <paramref name="generated"/> to <paramref name="stream"/>; PNGs get the recipe attached.</summary>
    public static async Task EncodeAsync(Stream stream, GenerationResult result, GeneratedImage generated, ImageFileFormat format, int quality, CancellationToken cancellationToken)
    {
        using var image = generated.ToImage();
        IImageEncoder encoder;
        switch (format)
        {
            case ImageFileFormat.Png:
                ImageRecipe.Attach(image, result, generated);
                encoder = new PngEncoder { CompressionLevel = PngCompressionLevel.DefaultCompression };
                break;
            case ImageFileFormat.Jpeg:
                encoder = new JpegEncoder { Quality = quality };
                break;
            case ImageFileFormat.Webp:
                encoder = new WebpEncoder { FileFormat = WebpFileFormatType.Lossy, Quality = quality };
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(format), format, "Unknown image file format.");
        }

        await image.SaveAsync(stream, encoder, cancellationToken).ConfigureAwait(false);
    }
}
