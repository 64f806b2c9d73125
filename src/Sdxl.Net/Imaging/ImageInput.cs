using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats;
using SixLabors.ImageSharp.Formats.Bmp;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Formats.Webp;
using SixLabors.ImageSharp.PixelFormats;
using Sdxl.Net.Runtime;

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
        var info = FileAccessCheck.ResolveOrSelf(path);   // through links: a link's own length is that of its target's path
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
        var rgb = Fit(RgbBytes(image), image.Width, image.Height, 3, width, height, mode);
        var data = new float[3 * width * height];
        int plane = width * height;
        for (int o = 0; o < plane; o++)
        {
            // diffusers: np.array(image) / 255.0 in float32, then 2x - 1.
            data[o] = (rgb[3 * o] / 255f * 2f) - 1f;
            data[plane + o] = (rgb[(3 * o) + 1] / 255f * 2f) - 1f;
            data[(2 * plane) + o] = (rgb[(3 * o) + 2] / 255f * 2f) - 1f;
        }

        return data;
    }

    /// <summary>
    /// A mask image as [height, width] values of 0 (keep) or 1 (repaint), as diffusers' mask processor: converted to
    /// grayscale first, then resized, then thresholded at 0.5.
    /// </summary>
    internal static float[] ToMask(Image<Rgb24> mask, int width, int height, ImageResizeMode mode)
    {
        var rgb = RgbBytes(mask);
        var luma = new byte[mask.Width * mask.Height];
        for (int i = 0; i < luma.Length; i++)
        {
            // ITU-R 601-2 luma rounded to 8 bits exactly as PIL's convert("L").
            luma[i] = (byte)(((rgb[3 * i] * 19595) + (rgb[(3 * i) + 1] * 38470) + (rgb[(3 * i) + 2] * 7471) + 0x8000) >> 16);
        }

        var resized = Fit(luma, mask.Width, mask.Height, 1, width, height, mode);
        var data = new float[width * height];
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = resized[i] / 255f >= 0.5f ? 1f : 0f;
        }

        return data;
    }

    /// <summary>The pixels as interleaved RGB bytes, row-major.</summary>
    internal static byte[] RgbBytes(Image<Rgb24> image)
    {
        var bytes = new byte[image.Width * image.Height * 3];
        image.ProcessPixelRows(accessor =>
        {
            for (int y = 0; y < accessor.Height; y++)
            {
                System.Runtime.InteropServices.MemoryMarshal.AsBytes(accessor.GetRowSpan(y)).CopyTo(bytes.AsSpan(y * accessor.Width * 3));
            }
        });
        return bytes;
    }

    /// <summary>
    /// Brings interleaved 8-bit pixels to <paramref name="width"/> × <paramref name="height"/> with Pillow's Lanczos
    /// resize, as diffusers' VaeImageProcessor.resize: stretched ("default"), scaled to cover and centre-cropped
    /// ("crop", the same geometry as diffusers' _resize_and_crop), or scaled to fit and centred on black.
    /// </summary>
    internal static byte[] Fit(byte[] pixels, int sourceWidth, int sourceHeight, int channels, int width, int height, ImageResizeMode mode)
    {
        if (mode == ImageResizeMode.Stretch)
        {
            return PilResampler.Resize(pixels, sourceWidth, sourceHeight, channels, width, height);
        }

        // diffusers compares the float ratios and sizes the other side with integer floor division.
        double ratio = (double)width / height;
        double sourceRatio = (double)sourceWidth / sourceHeight;
        bool fitWidth = mode == ImageResizeMode.CenterCrop ? ratio > sourceRatio : ratio < sourceRatio;
        int scaledWidth = fitWidth ? width : (int)((long)sourceWidth * height / sourceHeight);
        int scaledHeight = fitWidth ? (int)((long)sourceHeight * width / sourceWidth) : height;
        scaledWidth = Math.Max(scaledWidth, 1);
        scaledHeight = Math.Max(scaledHeight, 1);
        var scaled = PilResampler.Resize(pixels, sourceWidth, sourceHeight, channels, scaledWidth, scaledHeight);

        // Image.paste at (width // 2 - w // 2, height // 2 - h // 2): a negative offset crops.
        int left = (width / 2) - (scaledWidth / 2);
        int top = (height / 2) - (scaledHeight / 2);
        var result = new byte[width * height * channels];
        for (int y = Math.Max(0, top); y < Math.Min(height, top + scaledHeight); y++)
        {
            int x0 = Math.Max(0, left), x1 = Math.Min(width, left + scaledWidth);
            scaled.AsSpan((((y - top) * scaledWidth) + (x0 - left)) * channels, (x1 - x0) * channels)
                .CopyTo(result.AsSpan(((y * width) + x0) * channels));
        }

        return result;
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
