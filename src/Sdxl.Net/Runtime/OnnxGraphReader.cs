using System.Buffers.Binary;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Text;

namespace Sdxl.Net.Runtime;

/// <summary>ONNX <c>TensorProto.DataType</c> values the library reads.</summary>
internal enum OnnxDataType
{
    Undefined = 0,
    Float = 1,
    UInt8 = 2,
    Int8 = 3,
    Int32 = 6,
    Int64 = 7,
    Bool = 9,
    Float16 = 10,
    Double = 11,
    BFloat16 = 16,
}

/// <summary>Where an initializer's values are stored.</summary>
internal enum OnnxDataStorage
{
    /// <summary><c>raw_data</c> inside the model file.</summary>
    Raw,

    /// <summary>Packed <c>float_data</c> inside the model file (float32 only).</summary>
    FloatData,

    /// <summary>Packed <c>int32_data</c> varints inside the model file (float16 / bfloat16 bit patterns).</summary>
    Int32Data,

    /// <summary>An external data file beside the model (<c>data_location = EXTERNAL</c>).</summary>
    External,

    /// <summary>No values (an empty tensor, or a storage this reader does not locate).</summary>
    None,
}

/// <summary>One initializer: its name, type and shape, and where its values are (never the values themselves).</summary>
/// <param name="Name">The initializer name.</param>
/// <param name="DataType">The ONNX element type number.</param>
/// <param name="Dimensions">The shape.</param>
/// <param name="Storage">Where the values are.</param>
/// <param name="Offset">Byte offset in the model file (inline storages) or in the external file.</param>
/// <param name="Length">Byte length of the stored field; -1 for external data without a length entry.</param>
/// <param name="ExternalLocation">The external file, relative to the model's folder.</param>
internal sealed record OnnxInitializer(string Name, int DataType, long[] Dimensions, OnnxDataStorage Storage, long Offset, long Length, string? ExternalLocation)
{
    public long ElementCount
    {
        get
        {
            long count = 1;
            foreach (var d in Dimensions)
            {
                count = checked(count * d);
            }

            return count;
        }
    }

    public OnnxDataType ElementType => Enum.IsDefined((OnnxDataType)DataType) ? (OnnxDataType)DataType : OnnxDataType.Undefined;

    public string Shape => "[" + string.Join(", ", Dimensions) + "]";
}

/// <summary>One graph node: its name, operator, inputs, outputs and integer attributes.</summary>
internal sealed record OnnxNode(string Name, string OpType, string Domain, IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs, IReadOnlyDictionary<string, long> IntAttributes)
{
    public long IntAttribute(string name, long fallback) => IntAttributes.TryGetValue(name, out var v) ? v : fallback;
}

/// <summary>A graph input or output as the file declares it.</summary>
/// <param name="Name">The value's name.</param>
/// <param name="ElementType">The tensor element type (onnx.proto's <c>TensorProto.DataType</c>, which ONNX Runtime's
/// <c>TensorElementType</c> numbers the same); 0 when the value is not a tensor.</param>
/// <param name="Dimensions">The dimensions, -1 for a symbolic or unknown axis; empty for a scalar or an unknown rank.</param>
internal sealed record OnnxValueInfo(string Name, int ElementType, long[] Dimensions);

/// <summary>
/// The structure of an ONNX model's main graph (nodes, initializer locations, graph inputs and outputs), read from the protobuf
/// wire format without loading any weight; <see cref="ReadAsSingle"/> then reads only the initializers asked for.
/// </summary>
internal sealed class OnnxGraph
{
    internal OnnxGraph(string path, List<OnnxNode> nodes, Dictionary<string, OnnxInitializer> initializers, List<OnnxValueInfo> inputs, List<OnnxValueInfo> outputs)
    {
        Path = path;
        Nodes = nodes;
        Initializers = initializers;
        InputValues = inputs;
        OutputValues = outputs;
        Inputs = inputs.ConvertAll(i => i.Name);
    }

    /// <summary>The main graph's declared inputs, with their types (initializers listed as inputs included).</summary>
    public IReadOnlyList<OnnxValueInfo> InputValues { get; }

    /// <summary>The main graph's declared outputs, with their types.</summary>
    public IReadOnlyList<OnnxValueInfo> OutputValues { get; }

    /// <summary>The model file.</summary>
    public string Path { get; }

    /// <summary>The main graph's nodes in file order.</summary>
    public IReadOnlyList<OnnxNode> Nodes { get; }

    /// <summary>The main graph's initializers by name.</summary>
    public IReadOnlyDictionary<string, OnnxInitializer> Initializers { get; }

    /// <summary>The main graph's declared input names.</summary>
    public IReadOnlyList<string> Inputs { get; }

    /// <summary>
    /// Reads a float32, float16 or bfloat16 initializer as float32, from the model file or its external data file.
    /// </summary>
    /// <exception cref="SdxlModelException">The tensor's location lies outside its file, or its type is not a float type.</exception>
    public float[] ReadAsSingle(OnnxInitializer tensor)
    {
        int elementSize = tensor.ElementType switch
        {
            OnnxDataType.Float => 4,
            OnnxDataType.Float16 or OnnxDataType.BFloat16 => 2,
            _ => throw Fault($"initializer '{tensor.Name}' is of ONNX type {tensor.DataType}; only float32, float16 and bfloat16 weights can be read"),
        };
        long count = tensor.ElementCount;
        if (count > Array.MaxLength / 4)
        {
            throw Fault($"initializer '{tensor.Name}' {tensor.Shape} is too large to read");
        }

        var result = new float[count];
        if (count == 0)
        {
            return result;
        }

        if (tensor.Storage == OnnxDataStorage.Int32Data)
        {
            ReadInt32Data(tensor, result);
            return result;
        }

        long byteCount = count * elementSize;
        string file = Path;
        long offset = tensor.Offset;
        switch (tensor.Storage)
        {
            case OnnxDataStorage.Raw:
            case OnnxDataStorage.FloatData:
                if (tensor.Length != byteCount)
                {
                    throw Fault($"initializer '{tensor.Name}' {tensor.Shape} holds {tensor.Length} bytes; {byteCount} expected");
                }

                break;
            case OnnxDataStorage.External:
                file = ExternalPath(tensor);
                if (tensor.Length >= 0 && tensor.Length != byteCount)
                {
                    throw Fault($"initializer '{tensor.Name}' {tensor.Shape} has external length {tensor.Length}; {byteCount} expected");
                }

                break;
            default:
                throw Fault($"initializer '{tensor.Name}' stores no values this reader can locate");
        }

        var bytes = new byte[byteCount];
        using (var handle = File.OpenHandle(file, FileMode.Open, FileAccess.Read, FileShare.Read))
        {
            long fileLength = RandomAccess.GetLength(handle);
            if (offset < 0 || offset > fileLength - byteCount)
            {
                throw Fault($"initializer '{tensor.Name}' lies at bytes [{offset}, {offset + byteCount}) beyond the end of '{file}' ({fileLength} bytes)");
            }

            int read = 0;
            while (read < bytes.Length)
            {
                int n = RandomAccess.Read(handle, bytes.AsSpan(read), offset + read);
                if (n <= 0)
                {
                    throw Fault($"'{file}' ended while reading initializer '{tensor.Name}'");
                }

                read += n;
            }
        }

        Decode(tensor.ElementType, bytes, result);
        return result;
    }

    /// <summary>Converts little-endian stored values of <paramref name="type"/> to float32.</summary>
    internal static void Decode(OnnxDataType type, ReadOnlySpan<byte> bytes, Span<float> destination)
    {
        switch (type)
        {
            case OnnxDataType.Float:
                if (BitConverter.IsLittleEndian)
                {
                    MemoryMarshal.Cast<byte, float>(bytes).CopyTo(destination);
                }
                else
                {
                    for (int i = 0; i < destination.Length; i++)
                    {
                        destination[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes[(i * 4)..]);
                    }
                }

                break;
            case OnnxDataType.Float16:
                TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(bytes), destination);
                break;
            case OnnxDataType.BFloat16:
                for (int i = 0; i < destination.Length; i++)
                {
                    destination[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(bytes[(i * 2)..]) << 16);
                }

                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(type), type, "Only float32, float16 and bfloat16 are decoded.");
        }
    }

    private void ReadInt32Data(OnnxInitializer tensor, float[] result)
    {
        // float16/bfloat16 values stored as varints in int32_data: the low 16 bits are the bit pattern.
        using var reader = new ProtoWireReader(Path);
        reader.Seek(tensor.Offset);
        long end = tensor.Offset + tensor.Length;
        Span<byte> two = stackalloc byte[2];
        for (int i = 0; i < result.Length; i++)
        {
            if (reader.Position >= end)
            {
                throw Fault($"initializer '{tensor.Name}' {tensor.Shape} has fewer int32_data values than elements");
            }

            BinaryPrimitives.WriteUInt16LittleEndian(two, (ushort)reader.ReadVarint());
            Decode(tensor.ElementType, two, result.AsSpan(i, 1));
        }
    }

    private string ExternalPath(OnnxInitializer tensor)
    {
        var location = tensor.ExternalLocation;
        if (string.IsNullOrEmpty(location) || System.IO.Path.IsPathRooted(location)
            || location.Split('/', '\\').Any(part => part == ".."))
        {
            throw Fault($"initializer '{tensor.Name}' names external data '{location}'; expected a file name beside the model");
        }

        var folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(Path))!;
        var file = System.IO.Path.Combine(folder, location);
        if (Directory.Exists(file))
        {
            throw Fault($"initializer '{tensor.Name}' is stored in '{location}', which is a directory beside the model, not a file");
        }

        if (!File.Exists(file))
        {
            throw Fault($"initializer '{tensor.Name}' is stored in '{location}', which does not exist beside the model");
        }

        return file;
    }

    /// <summary>
    /// Checks, without reading them, that every external initializer lies inside an existing data file beside the
    /// model: what a truncated or missing <c>model.onnx_data</c> breaks, found before ONNX Runtime would be asked to load it.
    /// </summary>
    /// <exception cref="SdxlModelException">A data file is missing or too short, or a location is not a file beside the model.</exception>
    public void CheckExternalData()
    {
        var lengths = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var tensor in Initializers.Values)
        {
            if (tensor.Storage != OnnxDataStorage.External)
            {
                continue;
            }

            var file = ExternalPath(tensor);
            if (!lengths.TryGetValue(file, out long fileLength))
            {
                lengths[file] = fileLength = ExternalFileLength(file);
            }

            long length = tensor.Length >= 0 ? tensor.Length : tensor.ElementCount * ElementSize(tensor.ElementType);
            if (tensor.Offset < 0 || length < 0 || tensor.Offset > fileLength - length)
            {
                throw Fault($"initializer '{tensor.Name}' lies at bytes [{tensor.Offset}, {tensor.Offset + length}) beyond the end of '{file}' ({fileLength} bytes): the file is truncated or from another export");
            }
        }
    }

    // The length of an external data file, through symbolic links (Hugging Face cache snapshots link to blobs); a
    // file that cannot be opened is named in words.
    private long ExternalFileLength(string file)
    {
        try
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1);
            return stream.Length;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Fault($"cannot read its external data '{file}': {FileAccessCheck.Reason(e)}");
        }
    }

    // Bytes per element of the types SDXL exports store (0 for others: their extent is then not checked).
    private static long ElementSize(OnnxDataType type) => type switch
    {
        OnnxDataType.Float or OnnxDataType.Int32 => 4,
        OnnxDataType.Float16 or OnnxDataType.BFloat16 => 2,
        OnnxDataType.Double or OnnxDataType.Int64 => 8,
        OnnxDataType.Int8 or OnnxDataType.UInt8 or OnnxDataType.Bool => 1,
        _ => 0,
    };

    private SdxlModelException Fault(string what) => new($"'{Path}': {what}.");
}

/// <summary>
/// Reads the structure of an ONNX <c>ModelProto</c> (its main <c>GraphProto</c>: nodes, initializers, inputs) straight
/// from the protobuf wire format, skipping every weight's bytes, so a multi-gigabyte UNet is inspected without being
/// loaded. Only the fields the library needs are decoded; everything else is skipped by its wire type.
/// </summary>
internal static class OnnxGraphReader
{
    // onnx.proto field numbers.
    private const int ModelGraph = 7;
    private const int GraphNode = 1;
    private const int GraphInitializer = 5;
    private const int GraphInput = 11;
    private const int GraphOutput = 12;
    private const int NodeInput = 1;
    private const int NodeOutput = 2;
    private const int NodeName = 3;
    private const int NodeOpType = 4;
    private const int NodeAttribute = 5;
    private const int NodeDomain = 7;
    private const int AttributeName = 1;
    private const int AttributeInt = 3;
    private const int TensorDims = 1;
    private const int TensorDataType = 2;
    private const int TensorFloatData = 4;
    private const int TensorInt32Data = 5;
    private const int TensorName = 8;
    private const int TensorRawData = 9;
    private const int TensorExternalData = 13;
    private const int TensorDataLocation = 14;
    private const int ValueInfoName = 1;
    private const int ValueInfoType = 2;
    private const int TypeTensor = 1;
    private const int TypeTensorElementType = 1;
    private const int TypeTensorShape = 2;
    private const int ShapeDim = 1;
    private const int DimValue = 1;
    private const int EntryKey = 1;
    private const int EntryValue = 2;

    /// <summary>Reads the main graph of the model at <paramref name="path"/>.</summary>
    /// <exception cref="SdxlModelException">The file is missing or is not a well-formed ONNX model.</exception>
    public static OnnxGraph Read(string path)
    {
        if (!File.Exists(path))
        {
            throw new SdxlModelException($"ONNX model not found: '{path}'.");
        }

        try
        {
            using var reader = new ProtoWireReader(path);
            var nodes = new List<OnnxNode>();
            var initializers = new Dictionary<string, OnnxInitializer>(StringComparer.Ordinal);
            var inputs = new List<OnnxValueInfo>();
            var outputs = new List<OnnxValueInfo>();
            bool sawGraph = false;
            long end = reader.Length;
            while (reader.TryReadTag(end, out int field, out int wire))
            {
                if (field == ModelGraph && wire == ProtoWireReader.LengthDelimited)
                {
                    long graphEnd = reader.ReadMessageEnd(end);
                    ReadGraph(reader, graphEnd, nodes, initializers, inputs, outputs);
                    sawGraph = true;
                }
                else
                {
                    reader.SkipField(wire, end);
                }
            }

            if (!sawGraph)
            {
                throw new InvalidDataException("the file holds no graph");
            }

            return new OnnxGraph(path, nodes, initializers, inputs, outputs);
        }
        catch (InvalidDataException e)
        {
            throw new SdxlModelException($"'{path}' is not a well-formed ONNX model: {e.Message}.", e);
        }
        catch (IOException e)
        {
            throw new SdxlModelException($"Cannot read ONNX model '{path}': {e.Message}", e);
        }
    }

    private static void ReadGraph(ProtoWireReader reader, long end, List<OnnxNode> nodes, Dictionary<string, OnnxInitializer> initializers,
        List<OnnxValueInfo> inputs, List<OnnxValueInfo> outputs)
    {
        while (reader.TryReadTag(end, out int field, out int wire))
        {
            if (wire != ProtoWireReader.LengthDelimited)
            {
                reader.SkipField(wire, end);
                continue;
            }

            long length = reader.ReadLength(end);
            long messageEnd = reader.Position + length;
            switch (field)
            {
                case GraphNode:
                    nodes.Add(ReadNode(reader, messageEnd));
                    break;
                case GraphInitializer:
                    var tensor = ReadTensor(reader, messageEnd);
                    initializers[tensor.Name] = tensor;
                    break;
                case GraphInput:
                    inputs.Add(ReadValueInfo(reader, messageEnd));
                    break;
                case GraphOutput:
                    outputs.Add(ReadValueInfo(reader, messageEnd));
                    break;
                default:
                    reader.Skip(length);
                    break;
            }

            reader.ExpectPosition(messageEnd);
        }
    }

    private static OnnxNode ReadNode(ProtoWireReader reader, long end)
    {
        var inputs = new List<string>();
        var outputs = new List<string>();
        var attributes = new Dictionary<string, long>(StringComparer.Ordinal);
        string name = string.Empty, opType = string.Empty, domain = string.Empty;
        while (reader.TryReadTag(end, out int field, out int wire))
        {
            switch (field)
            {
                case NodeInput when wire == ProtoWireReader.LengthDelimited:
                    inputs.Add(reader.ReadString(end));
                    break;
                case NodeOutput when wire == ProtoWireReader.LengthDelimited:
                    outputs.Add(reader.ReadString(end));
                    break;
                case NodeName when wire == ProtoWireReader.LengthDelimited:
                    name = reader.ReadString(end);
                    break;
                case NodeOpType when wire == ProtoWireReader.LengthDelimited:
                    opType = reader.ReadString(end);
                    break;
                case NodeDomain when wire == ProtoWireReader.LengthDelimited:
                    domain = reader.ReadString(end);
                    break;
                case NodeAttribute when wire == ProtoWireReader.LengthDelimited:
                {
                    long attributeEnd = reader.ReadMessageEnd(end);
                    string? attributeName = null;
                    long? value = null;
                    while (reader.TryReadTag(attributeEnd, out int f, out int w))
                    {
                        if (f == AttributeName && w == ProtoWireReader.LengthDelimited)
                        {
                            attributeName = reader.ReadString(attributeEnd);
                        }
                        else if (f == AttributeInt && w == ProtoWireReader.Varint)
                        {
                            value = (long)reader.ReadVarint();
                        }
                        else
                        {
                            reader.SkipField(w, attributeEnd);
                        }
                    }

                    reader.ExpectPosition(attributeEnd);
                    if (attributeName is not null && value is not null)
                    {
                        attributes[attributeName] = value.Value;
                    }

                    break;
                }

                default:
                    reader.SkipField(wire, end);
                    break;
            }
        }

        return new OnnxNode(name, opType, domain, inputs, outputs, attributes);
    }

    private static OnnxInitializer ReadTensor(ProtoWireReader reader, long end)
    {
        var dims = new List<long>();
        int dataType = 0;
        string name = string.Empty;
        var storage = OnnxDataStorage.None;
        long offset = 0, length = 0;
        bool external = false;
        string? location = null;
        long externalOffset = 0, externalLength = -1;
        while (reader.TryReadTag(end, out int field, out int wire))
        {
            switch (field)
            {
                case TensorDims when wire == ProtoWireReader.Varint:
                    dims.Add((long)reader.ReadVarint());
                    break;
                case TensorDims when wire == ProtoWireReader.LengthDelimited:
                {
                    long packedEnd = reader.ReadMessageEnd(end);
                    while (reader.Position < packedEnd)
                    {
                        dims.Add((long)reader.ReadVarint());
                    }

                    reader.ExpectPosition(packedEnd);
                    break;
                }

                case TensorDataType when wire == ProtoWireReader.Varint:
                    dataType = (int)reader.ReadVarint();
                    break;
                case TensorName when wire == ProtoWireReader.LengthDelimited:
                    name = reader.ReadString(end);
                    break;
                case TensorRawData or TensorFloatData or TensorInt32Data when wire == ProtoWireReader.LengthDelimited:
                    // Only where the values are: the bytes are read later, for the initializers that are asked for.
                    length = reader.ReadLength(end);
                    offset = reader.Position;
                    storage = field switch
                    {
                        TensorRawData => OnnxDataStorage.Raw,
                        TensorFloatData => OnnxDataStorage.FloatData,
                        _ => OnnxDataStorage.Int32Data,
                    };
                    reader.Skip(length);
                    break;
                case TensorExternalData when wire == ProtoWireReader.LengthDelimited:
                {
                    long entryEnd = reader.ReadMessageEnd(end);
                    string? key = null, value = null;
                    while (reader.TryReadTag(entryEnd, out int f, out int w))
                    {
                        if (f == EntryKey && w == ProtoWireReader.LengthDelimited)
                        {
                            key = reader.ReadString(entryEnd);
                        }
                        else if (f == EntryValue && w == ProtoWireReader.LengthDelimited)
                        {
                            value = reader.ReadString(entryEnd);
                        }
                        else
                        {
                            reader.SkipField(w, entryEnd);
                        }
                    }

                    reader.ExpectPosition(entryEnd);
                    switch (key)
                    {
                        case "location":
                            location = value;
                            break;
                        case "offset":
                            externalOffset = ParseLength(value, "offset");
                            break;
                        case "length":
                            externalLength = ParseLength(value, "length");
                            break;
                    }

                    break;
                }

                case TensorDataLocation when wire == ProtoWireReader.Varint:
                    external = reader.ReadVarint() == 1;
                    break;
                default:
                    reader.SkipField(wire, end);
                    break;
            }
        }

        if (external)
        {
            return new OnnxInitializer(name, dataType, dims.ToArray(), OnnxDataStorage.External, externalOffset, externalLength, location);
        }

        return new OnnxInitializer(name, dataType, dims.ToArray(), storage, offset, length, null);
    }

    private static long ParseLength(string? text, string what) =>
        long.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var v)
            ? v
            : throw new InvalidDataException($"external data {what} '{text}' is not a non-negative integer");

    private static OnnxValueInfo ReadValueInfo(ProtoWireReader reader, long end)
    {
        string name = string.Empty;
        int elementType = 0;
        var dims = new List<long>();
        while (reader.TryReadTag(end, out int field, out int wire))
        {
            if (field == ValueInfoName && wire == ProtoWireReader.LengthDelimited)
            {
                name = reader.ReadString(end);
            }
            else if (field == ValueInfoType && wire == ProtoWireReader.LengthDelimited)
            {
                long typeEnd = reader.ReadMessageEnd(end);
                while (reader.TryReadTag(typeEnd, out int f, out int w))
                {
                    if (f == TypeTensor && w == ProtoWireReader.LengthDelimited)
                    {
                        ReadTensorType(reader, reader.ReadMessageEnd(typeEnd), ref elementType, dims);
                    }
                    else
                    {
                        reader.SkipField(w, typeEnd);
                    }
                }

                reader.ExpectPosition(typeEnd);
            }
            else
            {
                reader.SkipField(wire, end);
            }
        }

        return new OnnxValueInfo(name, elementType, dims.ToArray());
    }

    private static void ReadTensorType(ProtoWireReader reader, long end, ref int elementType, List<long> dims)
    {
        while (reader.TryReadTag(end, out int field, out int wire))
        {
            if (field == TypeTensorElementType && wire == ProtoWireReader.Varint)
            {
                elementType = (int)reader.ReadVarint();
            }
            else if (field == TypeTensorShape && wire == ProtoWireReader.LengthDelimited)
            {
                long shapeEnd = reader.ReadMessageEnd(end);
                while (reader.TryReadTag(shapeEnd, out int f, out int w))
                {
                    if (f != ShapeDim || w != ProtoWireReader.LengthDelimited)
                    {
                        reader.SkipField(w, shapeEnd);
                        continue;
                    }

                    // A dimension is a value or a symbolic name (dim_param); a name, or neither, is a dynamic axis.
                    long dimEnd = reader.ReadMessageEnd(shapeEnd);
                    long value = -1;
                    while (reader.TryReadTag(dimEnd, out int df, out int dw))
                    {
                        if (df == DimValue && dw == ProtoWireReader.Varint)
                        {
                            value = (long)reader.ReadVarint();
                        }
                        else
                        {
                            reader.SkipField(dw, dimEnd);
                        }
                    }

                    reader.ExpectPosition(dimEnd);
                    dims.Add(value);
                }

                reader.ExpectPosition(shapeEnd);
            }
            else
            {
                reader.SkipField(wire, end);
            }
        }

        reader.ExpectPosition(end);
    }
}

/// <summary>A forward reader of protobuf wire-format fields over a file, which skips length-delimited payloads by seeking.</summary>
internal sealed class ProtoWireReader : IDisposable
{
    public const int Varint = 0;
    public const int Fixed64 = 1;
    public const int LengthDelimited = 2;
    public const int Fixed32 = 5;

    /// <summary>The longest string field read (names); longer ones mean a corrupt file.</summary>
    private const int MaxStringBytes = 1 << 20;

    private readonly FileStream _stream;
    private long _position;

    public ProtoWireReader(string path)
    {
        _stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
        Length = _stream.Length;
    }

    public long Length { get; }

    public long Position => _position;

    public void Seek(long position)
    {
        _stream.Seek(position, SeekOrigin.Begin);
        _position = position;
    }

    public ulong ReadVarint()
    {
        ulong result = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            int b = _stream.ReadByte();
            if (b < 0)
            {
                throw new InvalidDataException($"the file ends inside a field at byte {_position}");
            }

            _position++;
            result |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return result;
            }
        }

        throw new InvalidDataException($"a varint at byte {_position} is longer than 10 bytes");
    }

    /// <summary>Reads the next tag before <paramref name="end"/>; false at the end of the message.</summary>
    public bool TryReadTag(long end, out int field, out int wire)
    {
        if (_position >= end)
        {
            field = wire = 0;
            return false;
        }

        ulong tag = ReadVarint();
        field = (int)(tag >> 3);
        wire = (int)(tag & 7);
        if (field == 0)
        {
            throw new InvalidDataException($"field number 0 at byte {_position}");
        }

        return true;
    }

    /// <summary>Reads a length prefix and checks that the payload ends within <paramref name="end"/>.</summary>
    public long ReadLength(long end)
    {
        ulong length = ReadVarint();
        if (length > (ulong)(end - _position))
        {
            throw new InvalidDataException($"a field of {length} bytes at byte {_position} runs past the end of its message");
        }

        return (long)length;
    }

    /// <summary>Reads a length prefix and returns where the payload ends.</summary>
    public long ReadMessageEnd(long end)
    {
        long length = ReadLength(end);
        return _position + length;
    }

    public string ReadString(long end)
    {
        long length = ReadLength(end);
        if (length > MaxStringBytes)
        {
            throw new InvalidDataException($"a {length}-byte name at byte {_position}");
        }

        var buffer = new byte[length];
        _stream.ReadExactly(buffer);
        _position += length;
        return Encoding.UTF8.GetString(buffer);
    }

    public void Skip(long count)
    {
        if (count > 0)
        {
            _stream.Seek(count, SeekOrigin.Current);
            _position += count;
        }
    }

    public void SkipField(int wire, long end)
    {
        switch (wire)
        {
            case Varint:
                ReadVarint();
                break;
            case Fixed64:
                SkipChecked(8, end);
                break;
            case LengthDelimited:
                Skip(ReadLength(end));
                break;
            case Fixed32:
                SkipChecked(4, end);
                break;
            default:
                throw new InvalidDataException($"unsupported wire type {wire} at byte {_position}");
        }
    }

    /// <summary>Checks that a sub-message was read exactly to its end.</summary>
    public void ExpectPosition(long end)
    {
        if (_position != end)
        {
            throw new InvalidDataException($"a message overran its length (at byte {_position}, expected {end})");
        }
    }

    public void Dispose() => _stream.Dispose();

    private void SkipChecked(long count, long end)
    {
        if (count > end - _position)
        {
            throw new InvalidDataException($"a fixed-size field at byte {_position} runs past the end of its message");
        }

        Skip(count);
    }
}
