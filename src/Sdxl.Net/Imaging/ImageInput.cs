using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats;
using SixLabors.ImageSharp.Formats.Bmp;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Formats.Webp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace Sdxl.Net.Imaging;

/// <summary>How an input image is brought to the generated size.</summary>
public enum ImageResizeMode
{
    /// <summary>Scale to exactly the target size, changing the aspect ratio if needed.</summary>
    Stretch,

    /// <summary>Scale to cover the target and crop the centre (keeps the aspect ratio).</summary>
    CenterCrop,

    /// <summary>Scale to fit inside the target and pad with black (keeps the aspect ratio).</summary>
    Pad,
}

/// <summary>Limits applied before an untrusted image is decoded.</summary>
public sealed record ImageLoadLimits
{
    /// <summary>The largest file accepted, in bytes (default 64 MiB).</summary>
    public long MaxBytes { get; init; } = 64L << 20;

    /// <summary>The largest width × height accepted (default 64 megapixels).</summary>
    public long MaxPixels { get; init; } = 64L << 20;

    /// <summary>The defaults.</summary>
    public static ImageLoadLimits Default { get; } = new();
}

/// <summary>Loads untrusted input images safely and converts images to and from the VAE's tensor layout.</summary>
public static class ImageInput
{
    private static readonly Configuration DecoderConfiguration = CreateConfiguration();

    /// <summary>
    /// Loads a PNG, JPEG, WebP or BMP file after checking its size and its declared dimensions against
    /// <paramref name="limits"/>, so a hostile file (huge dimensions, decompression bombs) is rejected before decoding.
    /// PNG pixel data must hold every row its header declares, and an EXIF orientation is applied as diffusers'
    /// <c>load_image</c> does (PIL's <c>exif_transpose</c>).
    /// </summary>
    /// <exception cref="InvalidDataException">The file is too large, not a supported image, or corrupt.</exception>
    public static Image<Rgb24> Load(string path, ImageLoadLimits? limits = null)
    {
        limits ??= ImageLoadLimits.Default;
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            throw new FileNotFoundException($"Image not found: '{path}'.", path);
        }

        if (info.Length > limits.MaxBytes)
        {
            throw new InvalidDataException($"'{path}' is {info.Length} bytes; images up to {limits.MaxBytes} bytes are accepted.");
        }

        using var stream = File.OpenRead(path);
        return Load(stream, limits, path);
    }

    /// <summary>Loads an image from a stream with the same checks as <see cref="Load(string, ImageLoadLimits?)"/>.</summary>
    /// <exception cref="InvalidDataException">The data is too large, not a supported image, or corrupt.</exception>
    public static Image<Rgb24> Load(Stream stream, ImageLoadLimits? limits = null, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        limits ??= ImageLoadLimits.Default;
        name ??= "image";
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = stream.Read(chunk, 0, chunk.Length)) > 0)
        {
            if (buffer.Length + read > limits.MaxBytes)
            {
                throw new InvalidDataException($"{name} is larger than {limits.MaxBytes} bytes.");
            }

            buffer.Write(chunk, 0, read);
        }

        // Structural checks the decoders are lenient about: a PNG cut short or a JPEG without its end marker would
        // otherwise decode into a partly grey image without any error.
        var bytes = new ReadOnlySpan<byte>(buffer.GetBuffer(), 0, (int)buffer.Length);
        if (bytes.IsEmpty)
        {
            throw new InvalidDataException($"{name} is empty.");
        }

        byte[]? png = null;
        if (PngChunks.HasSignature(bytes))
        {
            PngChunks.CheckStructure(bytes, name, limits.MaxPixels);
        }
        else if (bytes.Length >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF)
        {
            CheckJpegEnd(bytes, name);
        }

        buffer.Position = 0;
        var info = Decode(() => Image.Identify(DecoderConfiguration, buffer), name)
            ?? throw new InvalidDataException($"{name} is not a PNG, JPEG, WebP or BMP image.");
        if (info.Width <= 0 || info.Height <= 0 || (long)info.Width * info.Height > limits.MaxPixels)
        {
            throw new InvalidDataException($"{name} is {info.Width}x{info.Height}; images up to {limits.MaxPixels} pixels are accepted.");
        }

        // The decoders pad PNG pixel data that ends early with black rows; the row count is checked here (after the
        // pixel limit, which bounds the inflation), and split image data is merged into one chunk.
        if (PngChunks.HasSignature(bytes))
        {
            png = PngChunks.CheckPixelData(bytes, name);
        }

        int orientation = ExifOrientation.Read(bytes);
        using var source = png is null ? buffer : new MemoryStream(png, writable: false);
        source.Position = 0;
        var image = Decode(() => Image.Load<Rgb24>(DecoderConfiguration, source), name);
        ExifOrientation.Apply(image, orientation);
        return image;
    }

    private static T Decode<T>(Func<T> decode, string name)
    {
        try
        {
            return decode();
        }
        catch (UnknownImageFormatException)
        {
            throw new InvalidDataException($"{name} is not a PNG, JPEG, WebP or BMP image.");
        }
        catch (Exception e) when (e is not (OutOfMemoryException or OperationCanceledException or InsufficientExecutionStackException))
        {
            // The decoders signal corrupt inputs with many exception types — zlib's InvalidDataException, and on some
            // mutated JPEGs even IndexOutOfRange- and NullReferenceException (found by the benchmarks' fuzz command);
            // on untrusted bytes all of them mean the same thing here.
            throw new InvalidDataException($"{name} cannot be decoded: {e.Message}", e);
        }
    }

    /// <summary>Resizes (per <paramref name="mode"/>) and converts to planar RGB in [-1, 1] ([3, height, width]).</summary>
    internal static float[] ToTensor(Image<Rgb24> image, int width, int height, ImageResizeMode mode)
    {
        using var resized = Resize(image, width, height, mode);
        var data = new float[3 * width * height];
        int plane = width * height;
        resized.ProcessPixelRows(accessor =>
        {
            for (int y = 0; y < accessor.Height; y++)
            {
                var row = accessor.GetRowSpan(y);
                for (int x = 0; x < row.Length; x++)
                {
                    int o = (y * width) + x;
                    data[o] = (row[x].R / 255f * 2f) - 1f;
                    data[plane + o] = (row[x].G / 255f * 2f) - 1f;
                    data[(2 * plane) + o] = (row[x].B / 255f * 2f) - 1f;
                }
            }
        });
        return data;
    }

    /// <summary>A mask image as [height, width] values of 0 (keep) or 1 (repaint): grayscale, thresholded at 0.5 like diffusers.</summary>
    internal static float[] ToMask(Image<Rgb24> mask, int width, int height, ImageResizeMode mode)
    {
        using var resized = Resize(mask, width, height, mode);
        var data = new float[width * height];
        resized.ProcessPixelRows(accessor =>
        {
            for (int y = 0; y < accessor.Height; y++)
            {
                var row = accessor.GetRowSpan(y);
                for (int x = 0; x < row.Length; x++)
                {
                    // ITU-R 601-2 luma rounded to 8 bits exactly as PIL's convert("L"), then diffusers' binarize (>= 0.5).
                    int l = ((row[x].R * 19595) + (row[x].G * 38470) + (row[x].B * 7471) + 0x8000) >> 16;
                    data[(y * width) + x] = l / 255f >= 0.5f ? 1f : 0f;
                }
            }
        });
        return data;
    }

    private static Image<Rgb24> Resize(Image<Rgb24> image, int width, int height, ImageResizeMode mode)
    {
        if (image.Width == width && image.Height == height)
        {
            return image.Clone();
        }

        var options = new ResizeOptions
        {
            Size = new Size(width, height),
            Mode = mode switch
            {
                ImageResizeMode.CenterCrop => ResizeMode.Crop,
                ImageResizeMode.Pad => ResizeMode.Pad,
                _ => ResizeMode.Stretch,
            },
            Sampler = KnownResamplers.Lanczos3,
            PadColor = Color.Black,
        };
        return image.Clone(ctx => ctx.Resize(options));
    }

    private static void CheckJpegEnd(ReadOnlySpan<byte> data, string name)
    {
        // Entropy-coded data stuffs every 0xFF with 0x00, so FF DA (start of scan) and FF D9 (end of image) occur only
        // as markers; the last scan must be followed by an end marker. (An embedded EXIF thumbnail ends earlier.)
        int scan = data.LastIndexOf([(byte)0xFF, (byte)0xDA]);
        if (scan < 0 || data[scan..].IndexOf([(byte)0xFF, (byte)0xD9]) < 0)
        {
            throw new InvalidDataException($"{name} is a truncated JPEG: {(scan < 0 ? "it has no image data (no start-of-scan marker)" : "it ends before the end-of-image marker")}.");
        }
    }

    private static Configuration CreateConfiguration()
    {
        // Only the formats image-to-image needs, and metadata ignored: text, EXIF and ICC chunks are never used for
        // inputs and compressed text chunks are a decompression-bomb vector.
        var configuration = new Configuration(
            new PngConfigurationModule(),
            new JpegConfigurationModule(),
            new WebpConfigurationModule(),
            new BmpConfigurationModule());
        configuration.ImageFormatsManager.SetDecoder(PngFormat.Instance, new PngDecoder { IgnoreMetadata = true });
        configuration.ImageFormatsManager.SetDecoder(JpegFormat.Instance, new JpegDecoder { IgnoreMetadata = true });
        configuration.ImageFormatsManager.SetDecoder(WebpFormat.Instance, new WebpDecoder { IgnoreMetadata = true });
        return configuration;
    }
}
