using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace Sdxl.Net.Imaging;

/// <summary>
/// A bounded walk over the chunks of an untrusted PNG held in memory: the structure check done before decoding and
/// the reading of text chunks (whose compressed forms are the classic decompression bomb) with a hard output limit.
/// </summary>
internal static class PngChunks
{
    /// <summary>
    /// The most bytes a compressed text chunk may inflate to: 4 MiB, above the largest recipe the writer can produce
    /// (four prompts of <see cref="RequestValidation.MaxPromptLength"/> characters, each escaped to at most 6 bytes of
    /// JSON: 2.4 MB; see <see cref="ImageRecipe.ToJson"/>), and small enough that a bomb costs nothing.
    /// </summary>
    public const int MaxTextBytes = 4 << 20;

    private static ReadOnlySpan<byte> Signature => [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    public static bool HasSignature(ReadOnlySpan<byte> data) => data.StartsWith(Signature);

    /// <summary>
    /// Checks that the chunk lengths stay inside the data, that IHDR comes first with dimensions within
    /// <paramref name="maxPixels"/>, and that IEND is present (a truncated file lacks it).
    /// </summary>
    /// <exception cref="InvalidDataException">The structure is broken or the dimensions exceed the limit.</exception>
    public static void CheckStructure(ReadOnlySpan<byte> data, string name, long maxPixels)
    {
        bool first = true;
        foreach (var chunk in Enumerate(data, name))
        {
            if (first)
            {
                if (chunk.Type != "IHDR" || chunk.Length < 8)
                {
                    throw new InvalidDataException($"{name} is not a valid PNG: the first chunk must be IHDR, found '{chunk.Type}'.");
                }

                var ihdr = data.Slice(chunk.DataOffset, 8);
                long width = BinaryPrimitives.ReadUInt32BigEndian(ihdr);
                long height = BinaryPrimitives.ReadUInt32BigEndian(ihdr[4..]);
                if (width <= 0 || height <= 0 || width * height > maxPixels)
                {
                    throw new InvalidDataException($"{name} declares {width}x{height} pixels; images up to {maxPixels} pixels are accepted.");
                }

                first = false;
            }

            if (chunk.Type == "IEND")
            {
                return;
            }
        }

        throw new InvalidDataException($"{name} is a truncated PNG: it ends before the IEND chunk.");
    }

    /// <summary>
    /// Inflates the image data (every IDAT chunk, in order) into a scratch buffer and checks that it holds every row
    /// the IHDR header declares: the decoder pads a stream that ends early with black rows and reports nothing.
    /// Returns the PNG to decode: <paramref name="data"/> itself, or, when the image data is split over several IDAT
    /// chunks, an equivalent PNG with them merged into one (any valid chunking then decodes the same way).
    /// </summary>
    /// <exception cref="InvalidDataException">The pixel data is truncated or corrupt, or the header is invalid.</exception>
    public static byte[] CheckPixelData(ReadOnlySpan<byte> data, string name)
    {
        var chunks = Enumerate(data, name);
        var ihdr = data.Slice(chunks[0].DataOffset, Math.Min(chunks[0].Length, 13));
        if (ihdr.Length < 13)
        {
            throw new InvalidDataException($"{name} is not a valid PNG: its IHDR chunk is {chunks[0].Length} bytes, not 13.");
        }

        long width = BinaryPrimitives.ReadUInt32BigEndian(ihdr);
        long height = BinaryPrimitives.ReadUInt32BigEndian(ihdr[4..]);
        int bitDepth = ihdr[8], colorType = ihdr[9], interlace = ihdr[12];
        int channels = colorType switch { 0 => 1, 2 => 3, 3 => 1, 4 => 2, 6 => 4, _ => 0 };
        bool depthOk = colorType switch
        {
            0 => bitDepth is 1 or 2 or 4 or 8 or 16,
            3 => bitDepth is 1 or 2 or 4 or 8,
            _ => bitDepth is 8 or 16,
        };
        if (channels == 0 || !depthOk || interlace > 1)
        {
            throw new InvalidDataException($"{name} is not a valid PNG: colour type {colorType} with bit depth {bitDepth} and interlace method {interlace} is not defined.");
        }

        long expected = ExpectedImageDataBytes(width, height, channels * bitDepth, interlace == 1);
        int idatCount = 0, idatBytes = 0;
        foreach (var chunk in chunks)
        {
            if (chunk.Type == "IDAT")
            {
                idatCount++;
                idatBytes += chunk.Length;
            }
        }

        if (idatCount == 0)
        {
            throw new InvalidDataException($"{name} is not a valid PNG: it has no image data (no IDAT chunk).");
        }

        var compressed = new byte[idatBytes];
        int at = 0;
        foreach (var chunk in chunks)
        {
            if (chunk.Type == "IDAT")
            {
                data.Slice(chunk.DataOffset, chunk.Length).CopyTo(compressed.AsSpan(at));
                at += chunk.Length;
            }
        }

        long inflated = CountInflated(compressed, expected, name);
        if (inflated < expected)
        {
            long rowBytes = 1 + (((width * channels * bitDepth) + 7) / 8);
            var rows = interlace == 1 ? string.Empty : $" ({inflated / rowBytes} of {height} rows)";
            throw new InvalidDataException($"{name} is a truncated PNG: its compressed pixel data holds {inflated} of the {expected} bytes the header declares{rows}.");
        }

        return idatCount == 1 ? data.ToArray() : MergeImageData(data, chunks, compressed);
    }

    /// <summary>
    /// The bytes of filtered scanlines (a filter byte and the packed pixels per row) for the image, per Adam7 pass
    /// when interlaced (PNG specification, section 8.2).
    /// </summary>
    internal static long ExpectedImageDataBytes(long width, long height, int bitsPerPixel, bool interlaced)
    {
        static long Rows(long w, long h, int bits) => w == 0 || h == 0 ? 0 : h * (1 + (((w * bits) + 7) / 8));
        if (!interlaced)
        {
            return Rows(width, height, bitsPerPixel);
        }

        ReadOnlySpan<int> passes = [0, 0, 8, 8, 4, 0, 8, 8, 0, 4, 4, 8, 2, 0, 4, 4, 0, 2, 2, 4, 1, 0, 2, 2, 0, 1, 1, 2];
        long total = 0;
        for (int p = 0; p < 7; p++)
        {
            int x0 = passes[p * 4], y0 = passes[(p * 4) + 1], dx = passes[(p * 4) + 2], dy = passes[(p * 4) + 3];
            long w = (width - x0 + dx - 1) / dx, h = (height - y0 + dy - 1) / dy;
            total += Rows(Math.Max(0, w), Math.Max(0, h), bitsPerPixel);
        }

        return total;
    }

    /// <summary>Inflates into a reused scratch buffer, stopping once <paramref name="expected"/> bytes were produced.</summary>
    private static long CountInflated(byte[] compressed, long expected, string name)
    {
        using var input = new MemoryStream(compressed, writable: false);
        using var zlib = new ZLibStream(input, CompressionMode.Decompress);
        var scratch = new byte[64 * 1024];
        long total = 0;
        try
        {
            while (total < expected)
            {
                int read = zlib.Read(scratch, 0, (int)Math.Min(scratch.Length, expected - total));
                if (read == 0)
                {
                    break;
                }

                total += read;
            }
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{name} cannot be decoded: its compressed pixel data is corrupt after {total} bytes ({e.Message}).", e);
        }

        return total;
    }

    /// <summary>The same PNG with its IDAT chunks replaced by one holding <paramref name="compressed"/>, where the first stood.</summary>
    private static byte[] MergeImageData(ReadOnlySpan<byte> data, List<Chunk> chunks, byte[] compressed)
    {
        using var output = new MemoryStream(data.Length + 12);
        output.Write(Signature);
        bool written = false;
        foreach (var chunk in chunks)
        {
            if (chunk.Type == "IDAT")
            {
                if (!written)
                {
                    WriteChunk(output, "IDAT", compressed);
                    written = true;
                }

                continue;
            }

            output.Write(data.Slice(chunk.DataOffset - 8, chunk.Length + 12));
        }

        return output.ToArray();
    }

    private static void WriteChunk(Stream output, string type, ReadOnlySpan<byte> body)
    {
        Span<byte> header = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32BigEndian(header, (uint)body.Length);
        Encoding.ASCII.GetBytes(type, header[4..]);
        output.Write(header);
        output.Write(body);
        Span<byte> crc = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(crc, Crc32(header[4..], body));
        output.Write(crc);
    }

    /// <summary>The PNG chunk CRC over <paramref name="typeAndBody"/> (a chunk's type and data, contiguous).</summary>
    internal static uint Crc32(ReadOnlySpan<byte> typeAndBody) => Crc32(typeAndBody, default);

    /// <summary>The PNG chunk CRC (ISO 3309 / ITU-T V.42, as in the PNG specification's annex D) over type and data.</summary>
    private static uint Crc32(ReadOnlySpan<byte> type, ReadOnlySpan<byte> body)
    {
        uint c = 0xFFFFFFFF;
        foreach (var b in type)
        {
            c = CrcTable[(int)((c ^ b) & 0xFF)] ^ (c >> 8);
        }

        foreach (var b in body)
        {
            c = CrcTable[(int)((c ^ b) & 0xFF)] ^ (c >> 8);
        }

        return c ^ 0xFFFFFFFF;
    }

    private static readonly uint[] CrcTable = CreateCrcTable();

    private static uint[] CreateCrcTable()
    {
        var table = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
            }

            table[n] = c;
        }

        return table;
    }

    /// <summary>The text of the first tEXt, zTXt or iTXt chunk with <paramref name="keyword"/>, inflated with a limit; <see langword="null"/> when absent.</summary>
    /// <exception cref="FormatException">The chunk structure is broken or the text inflates beyond <see cref="MaxTextBytes"/>.</exception>
    public static string? ReadText(ReadOnlySpan<byte> data, string keyword, string name)
    {
        try
        {
            foreach (var chunk in Enumerate(data, name))
            {
                if (chunk.Type is not ("tEXt" or "zTXt" or "iTXt"))
                {
                    continue;
                }

                var body = data.Slice(chunk.DataOffset, chunk.Length);
                int zero = body.IndexOf((byte)0);
                if (zero <= 0 || !Encoding.Latin1.GetString(body[..zero]).Equals(keyword, StringComparison.Ordinal))
                {
                    continue;
                }

                var rest = body[(zero + 1)..];
                switch (chunk.Type)
                {
                    case "tEXt":
                        return Encoding.Latin1.GetString(rest);
                    case "zTXt":
                        return Encoding.Latin1.GetString(Inflate(rest.IsEmpty ? rest : rest[1..], name, keyword));
                    default:
                    {
                        // iTXt: compression flag, method, language tag \0, translated keyword \0, UTF-8 text.
                        if (rest.Length < 2)
                        {
                            throw new FormatException($"{name}: the iTXt chunk '{keyword}' is truncated.");
                        }

                        bool compressed = rest[0] != 0;
                        var tail = rest[2..];
                        for (int skip = 0; skip < 2; skip++)
                        {
                            int end = tail.IndexOf((byte)0);
                            if (end < 0)
                            {
                                throw new FormatException($"{name}: the iTXt chunk '{keyword}' is truncated.");
                            }

                            tail = tail[(end + 1)..];
                        }

                        return Encoding.UTF8.GetString(compressed ? Inflate(tail, name, keyword) : tail);
                    }
                }
            }
        }
        catch (InvalidDataException e)
        {
            throw new FormatException(e.Message, e);
        }

        return null;
    }

    private static byte[] Inflate(ReadOnlySpan<byte> compressed, string name, string keyword)
    {
        using var input = new MemoryStream(compressed.ToArray(), writable: false);
        using var zlib = new ZLibStream(input, CompressionMode.Decompress);
        var buffer = new byte[Math.Min(MaxTextBytes + 1, Math.Max(4096, compressed.Length * 4))];
        int total = 0;
        try
        {
            while (true)
            {
                if (total == buffer.Length)
                {
                    if (buffer.Length > MaxTextBytes)
                    {
                        throw new FormatException($"{name}: the text chunk '{keyword}' inflates to more than {MaxTextBytes} bytes; it is refused as a decompression bomb.");
                    }

                    Array.Resize(ref buffer, Math.Min(buffer.Length * 2, MaxTextBytes + 1));
                }

                int read = zlib.Read(buffer, total, buffer.Length - total);
                if (read == 0)
                {
                    break;
                }

                total += read;
            }
        }
        catch (InvalidDataException e)
        {
            throw new FormatException($"{name}: the compressed text chunk '{keyword}' is corrupt: {e.Message}", e);
        }

        return buffer.AsSpan(0, total).ToArray();
    }

    private static List<Chunk> Enumerate(ReadOnlySpan<byte> data, string name)
    {
        if (!HasSignature(data))
        {
            throw new InvalidDataException($"{name} is not a PNG file (bad signature).");
        }

        var chunks = new List<Chunk>();
        int offset = Signature.Length;
        while (offset < data.Length)
        {
            if (data.Length - offset < 12)
            {
                throw new InvalidDataException($"{name} is a truncated PNG: a chunk header at byte {offset} is cut off.");
            }

            uint length = BinaryPrimitives.ReadUInt32BigEndian(data[offset..]);
            var type = Encoding.ASCII.GetString(data.Slice(offset + 4, 4));
            if (length > int.MaxValue || length > (uint)(data.Length - offset - 12))
            {
                throw new InvalidDataException($"{name} is a truncated or corrupt PNG: chunk '{type}' at byte {offset} claims {length} bytes, more than the file holds.");
            }

            chunks.Add(new Chunk(type, offset + 8, (int)length));
            offset += 12 + (int)length;
            if (type == "IEND")
            {
                break;
            }
        }

        return chunks;
    }

    private readonly record struct Chunk(string Type, int DataOffset, int Length);
}
