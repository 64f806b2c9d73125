using System.Buffers.Binary;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace Sdxl.Net.Imaging;

/// <summary>
/// The EXIF orientation of an untrusted image (JPEG APP1, PNG <c>eXIf</c>, WebP <c>EXIF</c>), read with a bounded
/// parser of the one tag needed, and applied as PIL's <c>ImageOps.exif_transpose</c> — which diffusers'
/// <c>load_image</c> calls — so a phone photo taken upright is used upright. The decoders' own metadata reading
/// stays off (text chunks are a decompression-bomb vector).
/// </summary>
internal static class ExifOrientation
{
    private const ushort OrientationTag = 0x0112;

    /// <summary>The orientation (1 to 8) declared by the file; 1 (as stored) when absent or unreadable.</summary>
    public static int Read(ReadOnlySpan<byte> file)
    {
        var tiff = FindTiff(file);
        return tiff.IsEmpty ? 1 : FromTiff(tiff);
    }

    /// <summary>Rotates and flips <paramref name="image"/> in place so that it displays as the orientation says.</summary>
    public static void Apply(Image<Rgb24> image, int orientation)
    {
        // EXIF 2.3, tag 0x0112: where the stored first row and column belong. PIL's exif_transpose maps 2..8 to
        // FLIP_LEFT_RIGHT, ROTATE_180, FLIP_TOP_BOTTOM, TRANSPOSE, ROTATE_270, TRANSVERSE, ROTATE_90 (PIL rotates
        // counter-clockwise; ImageSharp's Rotate90 is clockwise, i.e. PIL's ROTATE_270).
        switch (orientation)
        {
            case 2: image.Mutate(x => x.Flip(FlipMode.Horizontal)); break;
            case 3: image.Mutate(x => x.Rotate(RotateMode.Rotate180)); break;
            case 4: image.Mutate(x => x.Flip(FlipMode.Vertical)); break;
            case 5: image.Mutate(x => x.Rotate(RotateMode.Rotate90).Flip(FlipMode.Horizontal)); break;
            case 6: image.Mutate(x => x.Rotate(RotateMode.Rotate90)); break;
            case 7: image.Mutate(x => x.Rotate(RotateMode.Rotate270).Flip(FlipMode.Horizontal)); break;
            case 8: image.Mutate(x => x.Rotate(RotateMode.Rotate270)); break;
        }
    }

    private static ReadOnlySpan<byte> FindTiff(ReadOnlySpan<byte> file)
    {
        ReadOnlySpan<byte> exifHeader = "Exif\0\0"u8;
        if (file.Length > 4 && file[0] == 0xFF && file[1] == 0xD8)
        {
            // JPEG: markers up to the first scan; APP1 holds "Exif\0\0" and a TIFF structure.
            int i = 2;
            while (i + 4 <= file.Length && file[i] == 0xFF)
            {
                byte marker = file[i + 1];
                if (marker == 0xFF)
                {
                    i++;
                    continue;
                }

                if (marker is 0xD8 or 0x01 or (>= 0xD0 and <= 0xD7))
                {
                    i += 2;
                    continue;
                }

                if (marker is 0xDA or 0xD9)
                {
                    break;
                }

                int length = BinaryPrimitives.ReadUInt16BigEndian(file[(i + 2)..]);
                if (length < 2 || i + 2 + length > file.Length)
                {
                    break;
                }

                var segment = file.Slice(i + 4, length - 2);
                if (marker == 0xE1 && segment.StartsWith(exifHeader))
                {
                    return segment[exifHeader.Length..];
                }

                i += 2 + length;
            }

            return default;
        }

        if (PngChunks.HasSignature(file))
        {
            int i = 8;
            while (i + 12 <= file.Length)
            {
                uint length = BinaryPrimitives.ReadUInt32BigEndian(file[i..]);
                if (length > (uint)(file.Length - i - 12))
                {
                    break;
                }

                var type = file.Slice(i + 4, 4);
                if (type.SequenceEqual("eXIf"u8))
                {
                    return file.Slice(i + 8, (int)length);
                }

                if (type.SequenceEqual("IDAT"u8) || type.SequenceEqual("IEND"u8))
                {
                    // eXIf must precede the image data.
                    break;
                }

                i += 12 + (int)length;
            }

            return default;
        }

        if (file.Length > 12 && file.StartsWith("RIFF"u8) && file.Slice(8, 4).SequenceEqual("WEBP"u8))
        {
            int i = 12;
            while (i + 8 <= file.Length)
            {
                uint length = BinaryPrimitives.ReadUInt32LittleEndian(file[(i + 4)..]);
                if (length > (uint)(file.Length - i - 8))
                {
                    break;
                }

                if (file.Slice(i, 4).SequenceEqual("EXIF"u8))
                {
                    var body = file.Slice(i + 8, (int)length);
                    return body.StartsWith(exifHeader) ? body[exifHeader.Length..] : body;
                }

                i += 8 + (int)length + (int)(length & 1);
            }
        }

        return default;
    }

    /// <summary>Tag 0x0112 of IFD0 of a TIFF structure; 1 when absent or malformed.</summary>
    private static int FromTiff(ReadOnlySpan<byte> tiff)
    {
        if (tiff.Length < 8)
        {
            return 1;
        }

        bool little;
        if (tiff[0] == (byte)'I' && tiff[1] == (byte)'I')
        {
            little = true;
        }
        else if (tiff[0] == (byte)'M' && tiff[1] == (byte)'M')
        {
            little = false;
        }
        else
        {
            return 1;
        }

        if (U16(tiff, 2, little) != 42)
        {
            return 1;
        }

        uint ifd = U32(tiff, 4, little);
        if (ifd > (uint)(tiff.Length - 2))
        {
            return 1;
        }

        int count = U16(tiff, (int)ifd, little);
        for (int k = 0; k < count; k++)
        {
            long entry = ifd + 2 + (12L * k);
            if (entry + 12 > tiff.Length)
            {
                return 1;
            }

            if (U16(tiff, (int)entry, little) == OrientationTag)
            {
                // Type SHORT (3), count 1: the value sits in the first two bytes of the value field.
                int value = U16(tiff, (int)entry + 2, little) == 3 ? U16(tiff, (int)entry + 8, little) : 1;
                return value is >= 1 and <= 8 ? value : 1;
            }
        }

        return 1;
    }

    private static ushort U16(ReadOnlySpan<byte> data, int at, bool little) =>
        little ? BinaryPrimitives.ReadUInt16LittleEndian(data[at..]) : BinaryPrimitives.ReadUInt16BigEndian(data[at..]);

    private static uint U32(ReadOnlySpan<byte> data, int at, bool little) =>
        little ? BinaryPrimitives.ReadUInt32LittleEndian(data[at..]) : BinaryPrimitives.ReadUInt32BigEndian(data[at..]);
}
