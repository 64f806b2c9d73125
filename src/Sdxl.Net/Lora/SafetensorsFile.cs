using System.Buffers.Binary;
using System.Text.Json;
using Sdxl.Net.Runtime;

namespace Sdxl.Net.Lora;

/// <summary>One tensor entry of a safetensors header.</summary>
/// <param name="Name">The tensor key.</param>
/// <param name="DType">The safetensors dtype (F32, F16 or BF16).</param>
/// <param name="Shape">The shape.</param>
/// <param name="Begin">Start offset in the data section.</param>
/// <param name="End">End offset (exclusive) in the data section.</param>
internal sealed record SafetensorsTensor(string Name, string DType, long[] Shape, long Begin, long End)
{
    public long ElementCount
    {
        get
        {
            long count = 1;
            foreach (var d in Shape)
            {
                count *= d;
            }

            return count;
        }
    }

    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}

/// <summary>
/// A <c>.safetensors</c> file read as untrusted input: the header is bounded in size, every tensor must be F32, F16 or
/// BF16 with a byte range that matches its shape and lies inside the file, and values are read only when asked for.
/// </summary>
internal sealed class SafetensorsFile
{
    /// <summary>The largest header accepted (the safetensors library's own limit is 100 MB).</summary>
    internal const long MaxHeaderBytes = 100L * 1024 * 1024;

    private SafetensorsFile(string path, long dataStart, Dictionary<string, SafetensorsTensor> tensors, Dictionary<string, string> metadata)
    {
        Path = path;
        DataStart = dataStart;
        Tensors = tensors;
        Metadata = metadata;
    }

    public string Path { get; }

    /// <summary>The file offset of the data section (8 + header size).</summary>
    public long DataStart { get; }

    public IReadOnlyDictionary<string, SafetensorsTensor> Tensors { get; }

    /// <summary>The <c>__metadata__</c> strings.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Reads and checks the header of <paramref name="path"/>.</summary>
    /// <exception cref="InvalidDataException">The file is not a well-formed safetensors file of float tensors; the message says what is wrong.</exception>
    public static SafetensorsFile Open(string path)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        long fileLength = RandomAccess.GetLength(handle);
        if (fileLength < 8)
        {
            throw Invalid(path, $"the file has {fileLength} bytes; a safetensors file starts with an 8-byte header size");
        }

        Span<byte> sizeBytes = stackalloc byte[8];
        ReadExactly(handle, sizeBytes, 0, path);
        ulong headerSize = BinaryPrimitives.ReadUInt64LittleEndian(sizeBytes);
        if (headerSize > (ulong)MaxHeaderBytes)
        {
            throw Invalid(path, $"the header claims {headerSize} bytes; at most {MaxHeaderBytes} are accepted");
        }

        if ((long)headerSize > fileLength - 8)
        {
            throw Invalid(path, $"the header claims {headerSize} bytes but the file has only {fileLength - 8} after the size field");
        }

        var header = new byte[headerSize];
        ReadExactly(handle, header, 8, path);

        // JsonDocument accepts invalid UTF-8 inside strings and fails only when a name is read, with an
        // InvalidOperationException (found by the benchmarks' fuzz command).
        if (!System.Text.Unicode.Utf8.IsValid(header))
        {
            throw Invalid(path, "the header is not valid UTF-8");
        }

        long dataStart = 8 + (long)headerSize;
        long dataLength = fileLength - dataStart;

        var tensors = new Dictionary<string, SafetensorsTensor>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException e)
        {
            throw Invalid(path, $"the header is not valid JSON ({e.Message})");
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw Invalid(path, "the header is not a JSON object");
            }

            foreach (var entry in doc.RootElement.EnumerateObject())
            {
                if (entry.Name == "__metadata__")
                {
                    if (entry.Value.ValueKind == JsonValueKind.Object)
                    {
                        foreach (var m in entry.Value.EnumerateObject())
                        {
                            if (m.Value.ValueKind == JsonValueKind.String)
                            {
                                metadata[m.Name] = m.Value.GetString()!;
                            }
                        }
                    }

                    continue;
                }

                tensors[entry.Name] = ParseTensor(path, entry.Name, entry.Value, dataLength);
            }
        }

        return new SafetensorsFile(path, dataStart, tensors, metadata);
    }

    /// <summary>Reads a tensor as float32.</summary>
    public float[] ReadAsSingle(SafetensorsTensor tensor)
    {
        var bytes = new byte[tensor.End - tensor.Begin];
        using (var handle = File.OpenHandle(Path, FileMode.Open, FileAccess.Read, FileShare.Read))
        {
            ReadExactly(handle, bytes, DataStart + tensor.Begin, Path);
        }

        var result = new float[tensor.ElementCount];
        OnnxGraph.Decode(ElementType(tensor.DType), bytes, result);
        return result;
    }

    /// <summary>Reads a scalar (or one-element) tensor, e.g. a kohya <c>.alpha</c>.</summary>
    public float ReadScalar(SafetensorsTensor tensor)
    {
        if (tensor.ElementCount != 1)
        {
            throw Invalid(Path, $"'{tensor.Name}' should hold one value; its shape is {tensor.ShapeText}");
        }

        return ReadAsSingle(tensor)[0];
    }

    private static OnnxDataType ElementType(string dtype) => dtype switch
    {
        "F32" => OnnxDataType.Float,
        "F16" => OnnxDataType.Float16,
        _ => OnnxDataType.BFloat16,
    };

    private static SafetensorsTensor ParseTensor(string path, string name, JsonElement value, long dataLength)
    {
        if (value.ValueKind != JsonValueKind.Object
            || !value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String
            || !value.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array
            || !value.TryGetProperty("data_offsets", out var offsetsElement) || offsetsElement.ValueKind != JsonValueKind.Array
            || offsetsElement.GetArrayLength() != 2)
        {
            throw Invalid(path, $"tensor '{name}' lacks dtype, shape or data_offsets [begin, end]");
        }

        var dtype = dtypeElement.GetString()!;
        int elementSize = dtype switch
        {
            "F32" => 4,
            "F16" or "BF16" => 2,
            _ => throw Invalid(path, $"tensor '{name}' has dtype {dtype}; LoRA weights must be F32, F16 or BF16"),
        };

        if (shapeElement.GetArrayLength() > 8)
        {
            throw Invalid(path, $"tensor '{name}' has {shapeElement.GetArrayLength()} dimensions");
        }

        var shape = new long[shapeElement.GetArrayLength()];
        long count = 1;
        int i = 0;
        foreach (var d in shapeElement.EnumerateArray())
        {
            if (!d.TryGetInt64(out var dim) || dim < 0 || dim > int.MaxValue)
            {
                throw Invalid(path, $"tensor '{name}' has an invalid dimension {d.GetRawText()}");
            }

            shape[i++] = dim;
            count = dim == 0 ? 0 : count > (Array.MaxLength / 4) / Math.Max(dim, 1) ? throw Invalid(path, $"tensor '{name}' is too large") : count * dim;
        }

        if (!offsetsElement[0].TryGetInt64(out var begin) || !offsetsElement[1].TryGetInt64(out var end) || begin < 0 || end < begin)
        {
            throw Invalid(path, $"tensor '{name}' has invalid data_offsets {offsetsElement.GetRawText()}");
        }

        if (end > dataLength)
        {
            throw Invalid(path, $"tensor '{name}' data_offsets [{begin}, {end}] run past the end of the data ({dataLength} bytes)");
        }

        if (end - begin != count * elementSize)
        {
            throw Invalid(path, $"tensor '{name}' {dtype} [{string.Join(", ", shape)}] needs {count * elementSize} bytes; data_offsets give {end - begin}");
        }

        return new SafetensorsTensor(name, dtype, shape, begin, end);
    }

    private static void ReadExactly(Microsoft.Win32.SafeHandles.SafeFileHandle handle, Span<byte> buffer, long offset, string path)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n = RandomAccess.Read(handle, buffer[read..], offset + read);
            if (n <= 0)
            {
                throw Invalid(path, "the file ended early");
            }

            read += n;
        }
    }

    private static InvalidDataException Invalid(string path, string what) => new($"'{path}' is not a usable safetensors file: {what}.");
}
