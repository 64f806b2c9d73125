using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Sdxl.Net.Imaging;

/// <summary>Reads and writes NumPy <c>.npy</c> files of float32 arrays (C order), the interchange format of diffusers users.</summary>
public static class NpyFile
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>Reads a float32 (or float16/float64, converted) C-order array.</summary>
    /// <exception cref="FormatException">The file is not a supported .npy array.</exception>
    public static (float[] Data, int[] Shape) Read(string path)
    {
        using var stream = File.OpenRead(path);
        try
        {
            return Read(stream);
        }
        catch (FormatException e)
        {
            throw new FormatException($"'{path}': {e.Message}", e);
        }
    }

    /// <summary>Reads a float32 (or float16/float64, converted) C-order array from a stream.</summary>
    /// <exception cref="FormatException">The data is not a supported .npy array.</exception>
    public static (float[] Data, int[] Shape) Read(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        try
        {
            return ReadArray(stream);
        }
        catch (Exception e) when (e is EndOfStreamException or OverflowException or ArgumentException)
        {
            // A header cut short, or dimensions that do not parse or overflow: all mean a corrupt file.
            throw new FormatException($"corrupt .npy file: {e.Message}", e);
        }
    }

    private static (float[] Data, int[] Shape) ReadArray(Stream stream)
    {
        Span<byte> prefix = stackalloc byte[10];
        if (stream.ReadAtLeast(prefix, 10, throwOnEndOfStream: false) < 10 || !prefix[..6].SequenceEqual(Magic))
        {
            throw new FormatException("not a NumPy .npy file (bad magic).");
        }

        int major = prefix[6];
        int headerLength;
        if (major == 1)
        {
            headerLength = BinaryPrimitives.ReadUInt16LittleEndian(prefix[8..]);
        }
        else if (major is 2 or 3)
        {
            Span<byte> extra = stackalloc byte[2];
            stream.ReadExactly(extra);
            headerLength = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian([prefix[8], prefix[9], extra[0], extra[1]]), 1 << 20);
        }
        else
        {
            throw new FormatException($"unsupported .npy version {major}.");
        }

        var headerBytes = new byte[headerLength];
        stream.ReadExactly(headerBytes);
        var header = Encoding.ASCII.GetString(headerBytes);
        var descr = Field(header, "descr").Trim('\'', '"', ' ');
        if (Field(header, "fortran_order").Trim() != "False")
        {
            throw new FormatException("Fortran-ordered arrays are not supported; save with C order.");
        }

        var shapeText = Field(header, "shape").Trim().TrimStart('(').TrimEnd(')');
        var shape = shapeText.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => int.Parse(s, NumberStyles.None, CultureInfo.InvariantCulture)).ToArray();
        long count = 1;
        foreach (var d in shape)
        {
            count = checked(count * d);
        }

        if (count > int.MaxValue / 8)
        {
            throw new FormatException($"array too large ({count} elements).");
        }

        int elementSize = descr switch
        {
            "<f4" => 4,
            "<f2" => 2,
            "<f8" => 8,
            _ => throw new FormatException($"unsupported dtype '{descr}'; expected little-endian float32 ('<f4'), float16 or float64."),
        };
        var raw = new byte[count * elementSize];
        if (stream.ReadAtLeast(raw, raw.Length, throwOnEndOfStream: false) != raw.Length)
        {
            throw new FormatException($"truncated: the header promises {count} values of {descr}.");
        }

        var data = new float[count];
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = elementSize switch
            {
                4 => BinaryPrimitives.ReadSingleLittleEndian(raw.AsSpan(i * 4)),
                2 => (float)BinaryPrimitives.ReadHalfLittleEndian(raw.AsSpan(i * 2)),
                _ => (float)BinaryPrimitives.ReadDoubleLittleEndian(raw.AsSpan(i * 8)),
            };
        }

        return (data, shape);
    }

    /// <summary>Writes a float32 C-order array.</summary>
    public static void Write(Stream stream, ReadOnlySpan<float> data, ReadOnlySpan<int> shape)
    {
        long count = 1;
        foreach (var d in shape)
        {
            count *= d;
        }

        if (count != data.Length)
        {
            throw new ArgumentException($"The shape holds {count} values but {data.Length} were given.", nameof(data));
        }

        var dims = new string[shape.Length];
        for (int i = 0; i < dims.Length; i++)
        {
            dims[i] = shape[i].ToString(CultureInfo.InvariantCulture);
        }

        var shapeText = shape.Length == 1 ? $"({dims[0]},)" : $"({string.Join(", ", dims)})";
        var header = $"{{'descr': '<f4', 'fortran_order': False, 'shape': {shapeText}, }}";
        int total = 10 + header.Length + 1;
        header = header.PadRight(header.Length + ((64 - (total % 64)) % 64)) + "\n";
        Span<byte> prefix = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, 0, 0];
        BinaryPrimitives.WriteUInt16LittleEndian(prefix[8..], (ushort)header.Length);
        stream.Write(prefix);
        stream.Write(Encoding.ASCII.GetBytes(header));
        var buffer = new byte[Math.Min(data.Length, 65536) * 4];
        for (int offset = 0; offset < data.Length; offset += buffer.Length / 4)
        {
            int n = Math.Min(buffer.Length / 4, data.Length - offset);
            for (int i = 0; i < n; i++)
            {
                BinaryPrimitives.WriteSingleLittleEndian(buffer.AsSpan(i * 4), data[offset + i]);
            }

            stream.Write(buffer, 0, n * 4);
        }
    }

    private static string Field(string header, string key)
    {
        int k = header.IndexOf($"'{key}'", StringComparison.Ordinal);
        if (k < 0)
        {
            throw new FormatException($"header has no '{key}'.");
        }

        int colon = header.IndexOf(':', k);
        int start = colon + 1;
        int end;
        if (header.AsSpan(start).TrimStart().StartsWith("("))
        {
            end = header.IndexOf(')', start) + 1;
        }
        else
        {
            end = header.IndexOf(',', start);
            if (end < 0)
            {
                end = header.IndexOf('}', start);
            }
        }

        return header[start..end];
    }
}
