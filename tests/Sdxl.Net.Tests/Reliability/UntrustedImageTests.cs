using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Sdxl.Net.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Metadata.Profiles.Exif;
using SixLabors.ImageSharp.PixelFormats;

namespace Sdxl.Net.Tests.Reliability;

/// <summary>
/// Untrusted input images: pixel data that ends early is refused (never black rows), any valid chunking loads,
/// and EXIF orientation is applied as diffusers' load_image (PIL's exif_transpose) does.
/// </summary>
public sealed class UntrustedImageTests
{
    private const int W = 5, H = 3;

    /// <summary>Raw RGB scanlines with filter 0, every pixel distinct.</summary>
    private static byte[] Scanlines(int width, int height)
    {
        var raw = new byte[height * (1 + (3 * width))];
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                int o = (y * (1 + (3 * width))) + 1 + (3 * x);
                raw[o] = (byte)(10 + (40 * x));
                raw[o + 1] = (byte)(20 + (60 * y));
                raw[o + 2] = (byte)(x * y * 9);
            }
        }

        return raw;
    }

    private static byte[] Zlib(ReadOnlySpan<byte> raw)
    {
        using var output = new MemoryStream();
        using (var zlib = new ZLibStream(output, CompressionLevel.Optimal, leaveOpen: true))
        {
            zlib.Write(raw);
        }

        return output.ToArray();
    }

    private static byte[] Chunk(string type, ReadOnlySpan<byte> data)
    {
        var chunk = new byte[12 + data.Length];
        BinaryPrimitives.WriteUInt32BigEndian(chunk, (uint)data.Length);
        Encoding.ASCII.GetBytes(type, chunk.AsSpan(4));
        data.CopyTo(chunk.AsSpan(8));
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(8 + data.Length), HostileImageTests.Crc32(chunk.AsSpan(4, 4 + data.Length)));
        return chunk;
    }

    /// <summary>A PNG written by hand: 8-bit RGB, the given compressed data split into chunks of <paramref name="idatSize"/>.</summary>
    internal static byte[] HandPng(int width, int height, byte[] compressed, int idatSize = int.MaxValue, byte[]? before = null)
    {
        var ihdr = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(ihdr, (uint)width);
        BinaryPrimitives.WriteUInt32BigEndian(ihdr.AsSpan(4), (uint)height);
        ihdr[8] = 8;
        ihdr[9] = 2;
        using var png = new MemoryStream();
        png.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        png.Write(Chunk("IHDR", ihdr));
        if (before is not null)
        {
            png.Write(before);
        }

        for (int at = 0; at < compressed.Length; at += idatSize)
        {
            png.Write(Chunk("IDAT", compressed.AsSpan(at, Math.Min(idatSize, compressed.Length - at))));
        }

        png.Write(Chunk("IEND", []));
        return png.ToArray();
    }

    private static Image<Rgb24> LoadBytes(byte[] file) => ImageInput.Load(new MemoryStream(file), name: "input.png");

    [Fact]
    public void Png_whose_compressed_data_holds_half_the_rows_is_refused_not_padded_with_black()
    {
        // A complete, valid zlib stream of only 12 of the 24 declared rows: the decoder alone fills the rest black.
        var raw = Scanlines(32, 24);
        var file = HandPng(32, 24, Zlib(raw.AsSpan(0, 12 * (1 + (3 * 32)))));
        var e = Assert.Throws<InvalidDataException>(() => LoadBytes(file));
        Assert.Contains("truncated PNG", e.Message);
        Assert.Contains("(12 of 24 rows)", e.Message);
    }

    [Fact]
    public void Png_whose_deflate_stream_is_cut_off_is_refused()
    {
        var compressed = Zlib(Scanlines(32, 24));
        var file = HandPng(32, 24, compressed[..(compressed.Length / 2)]);
        var e = Assert.Throws<InvalidDataException>(() => LoadBytes(file));
        Assert.True(e.Message.Contains("truncated PNG", StringComparison.Ordinal) || e.Message.Contains("corrupt", StringComparison.Ordinal), e.Message);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(7)]
    public void Png_with_many_tiny_idat_chunks_loads_the_same_pixels(int idatSize)
    {
        var raw = Scanlines(W, H);
        var compressed = Zlib(raw);
        using var whole = LoadBytes(HandPng(W, H, compressed));
        using var split = LoadBytes(HandPng(W, H, compressed, idatSize));
        for (int y = 0; y < H; y++)
        {
            for (int x = 0; x < W; x++)
            {
                // Expected straight from the scanlines written above.
                int o = (y * (1 + (3 * W))) + 1 + (3 * x);
                var expected = new Rgb24(raw[o], raw[o + 1], raw[o + 2]);
                Assert.Equal(expected, whole[x, y]);
                Assert.Equal(expected, split[x, y]);
            }
        }
    }

    public static TheoryData<string, PngEncoder> Encodings() => new()
    {
        { "rgb8 interlaced", new PngEncoder { ColorType = PngColorType.Rgb, BitDepth = PngBitDepth.Bit8, InterlaceMethod = PngInterlaceMode.Adam7 } },
        { "rgba16", new PngEncoder { ColorType = PngColorType.RgbWithAlpha, BitDepth = PngBitDepth.Bit16 } },
        { "grey1", new PngEncoder { ColorType = PngColorType.Grayscale, BitDepth = PngBitDepth.Bit1 } },
        { "grey-alpha8", new PngEncoder { ColorType = PngColorType.GrayscaleWithAlpha, BitDepth = PngBitDepth.Bit8 } },
        { "palette4 interlaced", new PngEncoder { ColorType = PngColorType.Palette, BitDepth = PngBitDepth.Bit4, InterlaceMethod = PngInterlaceMode.Adam7 } },
    };

    [Theory]
    [MemberData(nameof(Encodings))]
    public void Every_colour_type_depth_and_interlacing_passes_the_row_check(string what, PngEncoder encoder)
    {
        // The expected-size formula must accept every legal layout; odd sizes exercise partial bytes and Adam7 passes.
        using var image = new Image<Rgb24>(13, 11, new Rgb24(0, 0, 0));
        image[3, 4] = new Rgb24(255, 255, 255);
        using var stream = new MemoryStream();
        image.Save(stream, encoder);
        using var loaded = LoadBytes(stream.ToArray());
        Assert.Equal(13, loaded.Width);
        Assert.Equal(new Rgb24(255, 255, 255), loaded[3, 4]);
        Assert.Equal(new Rgb24(0, 0, 0), loaded[4, 3]);
        Assert.NotNull(what);
    }

    /// <summary>A big-endian TIFF structure whose IFD0 holds only the orientation tag.</summary>
    private static byte[] Tiff(ushort orientation)
    {
        var tiff = new byte[26];
        "MM"u8.CopyTo(tiff);
        BinaryPrimitives.WriteUInt16BigEndian(tiff.AsSpan(2), 42);
        BinaryPrimitives.WriteUInt32BigEndian(tiff.AsSpan(4), 8);
        BinaryPrimitives.WriteUInt16BigEndian(tiff.AsSpan(8), 1);
        BinaryPrimitives.WriteUInt16BigEndian(tiff.AsSpan(10), 0x0112);
        BinaryPrimitives.WriteUInt16BigEndian(tiff.AsSpan(12), 3);
        BinaryPrimitives.WriteUInt32BigEndian(tiff.AsSpan(14), 1);
        BinaryPrimitives.WriteUInt16BigEndian(tiff.AsSpan(18), orientation);
        return tiff;
    }

    /// <summary>
    /// Where displayed pixel (x, y) comes from in the stored W×H image, from the EXIF 2.3 definition of each value
    /// (which stored row and column are the visual top and left) — written independently of the loader's ImageSharp calls.
    /// </summary>
    private static (int X, int Y) Source(int orientation, int x, int y) => orientation switch
    {
        1 => (x, y),
        2 => (W - 1 - x, y),
        3 => (W - 1 - x, H - 1 - y),
        4 => (x, H - 1 - y),
        5 => (y, x),
        6 => (y, H - 1 - x),
        7 => (W - 1 - y, H - 1 - x),
        8 => (W - 1 - y, x),
        _ => throw new ArgumentOutOfRangeException(nameof(orientation)),
    };

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    [InlineData(8)]
    public void Exif_orientation_of_a_png_is_applied_as_exif_transpose(int orientation)
    {
        var raw = Scanlines(W, H);
        var file = HandPng(W, H, Zlib(raw), before: Chunk("eXIf", Tiff((ushort)orientation)));
        using var image = LoadBytes(file);
        bool turned = orientation >= 5;
        Assert.Equal(turned ? H : W, image.Width);
        Assert.Equal(turned ? W : H, image.Height);
        for (int y = 0; y < image.Height; y++)
        {
            for (int x = 0; x < image.Width; x++)
            {
                var (sx, sy) = Source(orientation, x, y);
                int o = (sy * (1 + (3 * W))) + 1 + (3 * sx);
                Assert.Equal(new Rgb24(raw[o], raw[o + 1], raw[o + 2]), image[x, y]);
            }
        }
    }

    [Fact]
    public void Phone_jpeg_with_orientation_6_is_used_upright()
    {
        // A 64×32 landscape-stored photo, left half red and right half blue, tagged "rotate 90° clockwise to view":
        // upright it is 32×64 with red on top (stored left column → displayed top row).
        using var stored = new Image<Rgb24>(64, 32);
        for (int y = 0; y < 32; y++)
        {
            for (int x = 0; x < 64; x++)
            {
                stored[x, y] = x < 32 ? new Rgb24(220, 20, 20) : new Rgb24(20, 20, 220);
            }
        }

        stored.Metadata.ExifProfile = new ExifProfile();
        stored.Metadata.ExifProfile.SetValue(ExifTag.Orientation, (ushort)6);
        using var stream = new MemoryStream();
        stored.SaveAsJpeg(stream, new JpegEncoder { Quality = 95 });

        using var image = ImageInput.Load(new MemoryStream(stream.ToArray()), name: "phone.jpg");
        Assert.Equal(32, image.Width);
        Assert.Equal(64, image.Height);
        Assert.True(image[16, 8].R > 150 && image[16, 8].B < 100, $"top is {image[16, 8]}");
        Assert.True(image[16, 56].B > 150 && image[16, 56].R < 100, $"bottom is {image[16, 56]}");
    }

    [Theory]
    [InlineData("jpeg-null-reference-identify.bin")]
    [InlineData("jpeg-null-reference-decode.bin")]
    public void Fuzz_findings_are_rejected_as_invalid_data(string file)
    {
        // Mutated JPEGs on which ImageSharp's decoder threw NullReferenceException (the benchmarks' fuzz command, seed 1).
        var bytes = File.ReadAllBytes(Path.Combine(TestPaths.TestData, "fuzz", file));
        var e = Assert.Throws<InvalidDataException>(() => LoadBytes(bytes));
        Assert.Contains("cannot be decoded", e.Message);
    }

    [Fact]
    public void Malformed_exif_is_ignored_not_fatal()
    {
        // A truncated TIFF structure and an out-of-range value both mean "as stored".
        var raw = Scanlines(W, H);
        using var a = LoadBytes(HandPng(W, H, Zlib(raw), before: Chunk("eXIf", Tiff(6)[..12])));
        using var b = LoadBytes(HandPng(W, H, Zlib(raw), before: Chunk("eXIf", Tiff(99))));
        Assert.Equal(W, a.Width);
        Assert.Equal(W, b.Width);
    }
}
