using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Sdxl.Net.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Gif;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;

namespace Sdxl.Net.Tests.Reliability;

/// <summary>
/// A corpus of corrupt and hostile files, generated here, fed to <see cref="ImageInput.Load(string, ImageLoadLimits?)"/>
/// and <see cref="ImageRecipe.ReadRecipe"/>: each ends in a clear exception, before any large allocation.
/// </summary>
public sealed class HostileImageTests
{
    internal static byte[] Png(int width = 32, int height = 24)
    {
        using var image = new Image<Rgb24>(width, height);
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                image[x, y] = new Rgb24((byte)(x * 7), (byte)(y * 9), (byte)(x ^ y));
            }
        }

        using var stream = new MemoryStream();
        image.SaveAsPng(stream);
        return stream.ToArray();
    }

    internal static byte[] Jpeg()
    {
        using var image = new Image<Rgb24>(32, 24, new Rgb24(200, 40, 90));
        using var stream = new MemoryStream();
        image.SaveAsJpeg(stream, new JpegEncoder { Quality = 90 });
        return stream.ToArray();
    }

    /// <summary>A PNG with <paramref name="chunk"/> inserted before IEND, with a correct CRC.</summary>
    internal static byte[] WithChunk(byte[] png, string type, byte[] data)
    {
        var chunk = new byte[12 + data.Length];
        BinaryPrimitives.WriteUInt32BigEndian(chunk, (uint)data.Length);
        Encoding.ASCII.GetBytes(type, chunk.AsSpan(4));
        data.CopyTo(chunk, 8);
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(8 + data.Length), Crc32(chunk.AsSpan(4, 4 + data.Length)));
        int iend = png.Length - 12;
        return [.. png.AsSpan(0, iend), .. chunk, .. png.AsSpan(iend)];
    }

    /// <summary>zlib data that inflates to <paramref name="bytes"/> zero bytes (about 1000:1).</summary>
    internal static byte[] ZlibZeros(int bytes)
    {
        using var output = new MemoryStream();
        using (var zlib = new ZLibStream(output, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            var block = new byte[1 << 20];
            for (int written = 0; written < bytes; written += block.Length)
            {
                zlib.Write(block, 0, Math.Min(block.Length, bytes - written));
            }
        }

        return output.ToArray();
    }

    internal static byte[] Bomb(string type, string keyword, int inflated)
    {
        var key = Encoding.Latin1.GetBytes(keyword);
        byte[] header = type == "zTXt" ? [.. key, 0, 0] : [.. key, 0, 1, 0, 0, 0];
        return WithChunk(Png(), type, [.. header, .. ZlibZeros(inflated)]);
    }

    public static TheoryData<string, byte[], string> Corpus()
    {
        var png = Png();
        var jpeg = Jpeg();
        var huge = (byte[])png.Clone();
        BinaryPrimitives.WriteUInt32BigEndian(huge.AsSpan(16), 100_000);
        BinaryPrimitives.WriteUInt32BigEndian(huge.AsSpan(20), 100_000);
        BinaryPrimitives.WriteUInt32BigEndian(huge.AsSpan(29), Crc32(huge.AsSpan(12, 17)));
        var hugeJpeg = (byte[])jpeg.Clone();
        int sof = hugeJpeg.AsSpan().IndexOf([(byte)0xFF, (byte)0xC0]);
        BinaryPrimitives.WriteUInt16BigEndian(hugeJpeg.AsSpan(sof + 5), 65000);
        BinaryPrimitives.WriteUInt16BigEndian(hugeJpeg.AsSpan(sof + 7), 65000);
        var lying = (byte[])png.Clone();
        BinaryPrimitives.WriteUInt32BigEndian(lying.AsSpan(33), 0x7FFF_0000); // the first chunk after IHDR claims 2 GB
        using var gifImage = new Image<Rgb24>(8, 8);
        using var gif = new MemoryStream();
        gifImage.SaveAsGif(gif, new GifEncoder());
        var garbage = new byte[2048];
        new Random(3).NextBytes(garbage);
        var corruptIdat = (byte[])png.Clone();
        int idat = corruptIdat.AsSpan().IndexOf("IDAT"u8);
        corruptIdat.AsSpan(idat + 6, 20).Fill(0xAB);

        return new TheoryData<string, byte[], string>
        {
            { "empty file", [], "is empty" },
            { "random bytes", garbage, "is not a PNG, JPEG, WebP or BMP image" },
            { "GIF (format not accepted)", gif.ToArray(), "is not a PNG, JPEG, WebP or BMP image" },
            { "PNG truncated in half", png[..(png.Length / 2)], "truncated" },
            { "PNG without IEND", png[..^12], "truncated PNG: it ends before the IEND chunk" },
            { "PNG chunk length beyond the file", lying, "claims 2147418112 bytes" },
            { "PNG header claiming 100000x100000", huge, "declares 100000x100000 pixels" },
            { "PNG with corrupt compressed pixels", corruptIdat, "cannot be decoded" },
            { "JPEG truncated in half", jpeg[..(jpeg.Length / 2)], "truncated JPEG" },
            { "JPEG header only", jpeg[..20], "truncated JPEG" },
            { "JPEG header claiming 65000x65000", hugeJpeg, "is 65000x65000" },
        };
    }

    [Theory]
    [MemberData(nameof(Corpus))]
    public void Hostile_file_is_rejected_with_a_clear_exception(string what, byte[] bytes, string message)
    {
        using var folder = new TempFolder();
        File.WriteAllBytes(folder["input"], bytes);
        var e = Assert.Throws<InvalidDataException>(() => ImageInput.Load(folder["input"]).Dispose());
        Assert.True(e.Message.Contains(message, StringComparison.Ordinal), $"{what}: {e.Message}");
        Assert.Contains(folder["input"], e.Message);
    }

    [Fact]
    public void Intact_png_and_jpeg_load()
    {
        // The originals every corpus entry was derived from.
        using var png = ImageInput.Load(new MemoryStream(Png()));
        using var jpeg = ImageInput.Load(new MemoryStream(Jpeg()));
        Assert.Equal((32, 24), (png.Width, png.Height));
        Assert.Equal((32, 24), (jpeg.Width, jpeg.Height));
    }

    [Fact]
    public void Byte_and_pixel_limits_apply_before_decoding()
    {
        var png = Png(64, 64);
        var bytes = Assert.Throws<InvalidDataException>(() => ImageInput.Load(new MemoryStream(png), new ImageLoadLimits { MaxBytes = 100 }));
        Assert.Contains("larger than 100 bytes", bytes.Message);
        var pixels = Assert.Throws<InvalidDataException>(() => ImageInput.Load(new MemoryStream(png), new ImageLoadLimits { MaxPixels = 4095 }));
        Assert.Contains("up to 4095 pixels", pixels.Message);
        using var folder = new TempFolder();
        File.WriteAllBytes(folder["big.png"], png);
        var file = Assert.Throws<InvalidDataException>(() => ImageInput.Load(folder["big.png"], new ImageLoadLimits { MaxBytes = 100 }));
        Assert.Contains($"is {png.Length} bytes; images up to 100 bytes", file.Message);

        // Through a symbolic link the target's size counts (a link's own length is that of the target's path).
        File.CreateSymbolicLink(folder["link.png"], folder["big.png"]);
        var linked = Assert.Throws<InvalidDataException>(() => ImageInput.Load(folder["link.png"], new ImageLoadLimits { MaxBytes = 100 }));
        Assert.Contains($"is {png.Length} bytes; images up to 100 bytes", linked.Message);
    }

    [Theory]
    [InlineData("zTXt")]
    [InlineData("iTXt")]
    public void Text_chunk_bomb_in_an_input_image_is_not_inflated(string type)
    {
        var bomb = Bomb(type, "Comment", 256 << 20);
        long before = GC.GetTotalAllocatedBytes(precise: true);
        using var image = ImageInput.Load(new MemoryStream(bomb));
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        Assert.Equal(32, image.Width);
        Assert.True(allocated < 32L << 20, $"loading allocated {allocated >> 20} MiB for a {bomb.Length >> 10} KiB file");
    }

    [Theory]
    [InlineData("zTXt")]
    [InlineData("iTXt")]
    public void Recipe_chunk_bomb_is_refused(string type)
    {
        using var folder = new TempFolder();
        File.WriteAllBytes(folder["bomb.png"], Bomb(type, ImageRecipe.RequestKeyword, 256 << 20));
        long before = GC.GetTotalAllocatedBytes(precise: true);
        var e = Assert.Throws<FormatException>(() => ImageRecipe.ReadRecipe(folder["bomb.png"]));
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        Assert.Contains("decompression bomb", e.Message);
        Assert.True(allocated < 32L << 20, $"reading allocated {allocated >> 20} MiB");
    }

    [Fact]
    public void Recipe_reading_handles_compressed_plain_and_missing_chunks()
    {
        using var folder = new TempFolder();
        var json = "{\"prompt\":\"a tower\",\"width\":64,\"height\":64,\"steps\":3,\"guidance_scale\":5}";
        var key = Encoding.Latin1.GetBytes(ImageRecipe.RequestKeyword);
        using (var deflated = new MemoryStream())
        {
            using (var z = new ZLibStream(deflated, CompressionLevel.Optimal, leaveOpen: true))
            {
                z.Write(Encoding.UTF8.GetBytes(json));
            }

            File.WriteAllBytes(folder["z.png"], WithChunk(Png(), "zTXt", [.. key, 0, 0, .. deflated.ToArray()]));
        }

        File.WriteAllBytes(folder["t.png"], WithChunk(Png(), "tEXt", [.. key, 0, .. Encoding.Latin1.GetBytes(json)]));
        File.WriteAllBytes(folder["none.png"], Png());
        Assert.Equal("a tower", ImageRecipe.ReadRecipe(folder["z.png"])!.Request.Prompt);
        Assert.Equal(3, ImageRecipe.ReadRecipe(folder["t.png"])!.Request.Steps);
        Assert.Null(ImageRecipe.ReadRecipe(folder["none.png"]));
    }

    [Theory]
    [InlineData("not a png", "is not a PNG file")]
    [InlineData("invalid json", "is not a valid recipe")]
    [InlineData("corrupt zlib", "is corrupt")]
    [InlineData("truncated", "truncated")]
    public void Corrupt_recipe_file_is_a_format_exception(string what, string message)
    {
        using var folder = new TempFolder();
        var key = Encoding.Latin1.GetBytes(ImageRecipe.RequestKeyword);
        byte[] bytes = what switch
        {
            "not a png" => Jpeg(),
            "invalid json" => WithChunk(Png(), "tEXt", [.. key, 0, .. "{\"prompt\": "u8]),
            "corrupt zlib" => WithChunk(Png(), "zTXt", [.. key, 0, 0, 0x78, 0x9C, 0xFF, 0xFF, 0xFF, 0xFF, 0x00]),
            _ => WithChunk(Png(), "tEXt", [.. key, 0, .. "{}"u8])[..^40],
        };
        File.WriteAllBytes(folder["r.png"], bytes);
        var e = Assert.Throws<FormatException>(() => ImageRecipe.ReadRecipe(folder["r.png"]));
        Assert.True(e.Message.Contains(message, StringComparison.Ordinal), $"{what}: {e.Message}");
    }

    internal static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFF_FFFF;
        foreach (var b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++)
            {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1;
            }
        }

        return ~crc;
    }
}
