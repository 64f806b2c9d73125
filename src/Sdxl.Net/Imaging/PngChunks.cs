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
    /// <summary>The most bytes a compressed text chunk may inflate to (1 MiB: a recipe is a few kilobytes).</summary>
    public const int MaxTextBytes = 1 << 20;

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
