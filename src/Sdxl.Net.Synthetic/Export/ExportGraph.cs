using System.Buffers.Binary;
using Google.Protobuf;
using Onnx;
using DataType = Onnx.TensorProto.Types.DataType;

namespace Sdxl.Net.Synthetic.Export;

/// <summary>
/// Builds one ONNX graph the way <c>torch.onnx.export</c> writes a diffusers or transformers module: nodes named by
/// their module path (<c>/down_blocks.1/attentions.0/transformer_blocks.0/attn1/to_q/MatMul</c>), linear weights as
/// transposed initializers with generated names (<c>onnx::MatMul_1519</c>), every other parameter under its
/// <c>state_dict</c> name, and the weights streamed straight into the external data file (4 KiB aligned, so ONNX Runtime
/// can memory-map them) while the graph is built — the weights never sit in managed memory as a whole.
/// </summary>
internal sealed class ExportGraph : IDisposable
{
    /// <summary>Initializers at least this large go to the external data file (onnx's default threshold).</summary>
    private const int ExternalThresholdBytes = 1024;

    /// <summary>External tensors start at multiples of this, so ONNX Runtime can memory-map them.</summary>
    private const int Alignment = 4096;

    /// <summary>Values generated and written per chunk.</summary>
    private const int ChunkValues = 1 << 20;

    private readonly GraphProto _graph;
    private readonly WeightRandom _random;
    private readonly DataType _floatType;
    private readonly Stream? _data;
    private readonly string? _dataFileName;
    private readonly List<string> _scopes = [];
    private readonly Dictionary<string, int> _nodeNames = new(StringComparer.Ordinal);
    private readonly float[]? _chunk;
    private readonly byte[]? _bytes;
    private int _nextValue;
    private int _nextMatMul = 1000;

    /// <param name="name">The graph name.</param>
    /// <param name="random">The source of the weights.</param>
    /// <param name="float16">Whether weights, arithmetic and float I/O are float16 (a real fp16 export) or float32.</param>
    /// <param name="dataPath">The external data file to stream weights into, or <see langword="null"/> to only count parameters.</param>
    public ExportGraph(string name, WeightRandom random, bool float16, string? dataPath)
    {
        _graph = new GraphProto { Name = name };
        _random = random;
        _floatType = float16 ? DataType.Float16 : DataType.Float;
        if (dataPath is not null)
        {
            _data = new FileStream(dataPath, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
            _dataFileName = Path.GetFileName(dataPath);
            _chunk = new float[ChunkValues];
            _bytes = new byte[ChunkValues * sizeof(float)];
        }
    }

    /// <summary>The number of parameters (weight elements) added.</summary>
    public long ParameterCount { get; private set; }

    /// <summary>The element type of weights, arithmetic and float I/O.</summary>
    public DataType FloatType => _floatType;

    /// <summary>Enters a module scope: nodes and parameters created inside are named under it.</summary>
    public Scope Enter(string module)
    {
        _scopes.Add(module);
        return new Scope(this);
    }

    /// <summary>The current module path with dots (<c>down_blocks.1.attentions.0</c>).</summary>
    public string ModulePath => string.Join('.', _scopes);

    /// <summary>Declares a float graph input (of the graph's float type).</summary>
    public string FloatInput(string name, params Dim[] dims) => Input(name, _floatType, dims);

    /// <summary>Declares a graph input of an exact element type.</summary>
    public string Input(string name, DataType type, params Dim[] dims)
    {
        _graph.Input.Add(ValueInfo(name, type, dims));
        return name;
    }

    /// <summary>Exposes <paramref name="value"/> as graph output <paramref name="name"/>.</summary>
    public void FloatOutput(string name, string value, params Dim[] dims)
    {
        AddNode("Identity", [value], [name], []);
        _graph.Output.Add(ValueInfo(name, _floatType, dims));
    }

    /// <summary>Adds a node named by the current scope and returns its output.</summary>
    public string Op(string opType, string[] inputs, params AttributeProto[] attributes)
    {
        var output = $"/{string.Join('/', _scopes)}/{opType}_output_{_nextValue++}";
        AddNode(opType, inputs, [output], attributes);
        return output;
    }

    /// <summary>
    /// A parameter under its <c>state_dict</c> name (the current module path + <paramref name="leaf"/>), filled with
    /// uniform noise of standard deviation <paramref name="std"/> around <paramref name="mean"/>.
    /// </summary>
    public string Parameter(string leaf, float std, float mean, params long[] dims) => Initializer(ModulePath + "." + leaf, std, mean, dims);

    /// <summary>A linear layer's weight as torch exports it: transposed [in, out] under a generated name.</summary>
    public string LinearWeight(float std, long inFeatures, long outFeatures) => Initializer($"onnx::MatMul_{_nextMatMul++}", std, 0f, [inFeatures, outFeatures]);

    /// <summary>A constant of the graph's float type (not a parameter).</summary>
    public string FloatConstant(float[] values, params long[] dims)
    {
        var tensor = new TensorProto { Name = $"onnx::Constant_{_nextValue++}", DataType = (int)_floatType };
        tensor.Dims.Add(dims);
        tensor.RawData = ByteString.CopyFrom(Encode(values, _floatType));
        _graph.Initializer.Add(tensor);
        return tensor.Name;
    }

    /// <summary>A float32 constant whatever the graph's float type (Resize scales, float32 sub-computations).</summary>
    public string Float32Constant(float[] values, params long[] dims)
    {
        var tensor = new TensorProto { Name = $"onnx::Constant_{_nextValue++}", DataType = (int)DataType.Float };
        tensor.Dims.Add(dims);
        tensor.RawData = ByteString.CopyFrom(Encode(values, DataType.Float));
        _graph.Initializer.Add(tensor);
        return tensor.Name;
    }

    /// <summary>An int64 constant (axes, shapes, indices).</summary>
    public string Int64Constant(params long[] values)
    {
        var tensor = new TensorProto { Name = $"onnx::Constant_{_nextValue++}", DataType = (int)DataType.Int64 };
        tensor.Dims.Add(values.Length);
        tensor.Int64Data.Add(values);
        _graph.Initializer.Add(tensor);
        return tensor.Name;
    }

    /// <summary>Writes the model file (IR 8, opset 17) beside the external data file and closes both.</summary>
    public void Save(string modelPath)
    {
        var model = new ModelProto { IrVersion = 8, ProducerName = "Sdxl.Net.Synthetic", ProducerVersion = "2", Graph = _graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = string.Empty, Version = 17 });
        _data?.Flush();
        using var stream = new FileStream(modelPath, FileMode.Create, FileAccess.Write);
        model.WriteTo(stream);
    }

    public void Dispose() => _data?.Dispose();

    private string Initializer(string name, float std, float mean, long[] dims)
    {
        long count = 1;
        foreach (var d in dims)
        {
            count *= d;
        }

        ParameterCount += count;
        var tensor = new TensorProto { Name = name, DataType = (int)_floatType };
        tensor.Dims.Add(dims);
        int elementSize = _floatType == DataType.Float16 ? 2 : 4;
        if (_data is null)
        {
            // Counting only: an empty tensor keeps the graph's structure.
        }
        else if (count * elementSize < ExternalThresholdBytes)
        {
            var values = new float[count];
            Fill(values, std, mean);
            tensor.RawData = ByteString.CopyFrom(Encode(values, _floatType));
        }
        else
        {
            var padding = (int)((Alignment - (_data.Position % Alignment)) % Alignment);
            _data.Write(new byte[padding]);
            long offset = _data.Position;
            for (long done = 0; done < count; done += ChunkValues)
            {
                int n = (int)Math.Min(ChunkValues, count - done);
                var chunk = _chunk.AsSpan(0, n);
                Fill(chunk, std, mean);
                _data.Write(EncodeInto(chunk, _floatType, _bytes!));
            }

            tensor.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = _dataFileName });
            tensor.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            tensor.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = (count * elementSize).ToString(System.Globalization.CultureInfo.InvariantCulture) });
            tensor.DataLocation = TensorProto.Types.DataLocation.External;
        }

        _graph.Initializer.Add(tensor);
        return name;
    }

    private void Fill(Span<float> values, float std, float mean)
    {
        _random.FillUniform(values, std);
        if (mean != 0f)
        {
            for (int i = 0; i < values.Length; i++)
            {
                values[i] += mean;
            }
        }
    }

    private static byte[] Encode(float[] values, DataType type) => EncodeInto(values, type, new byte[values.Length * (type == DataType.Float16 ? 2 : 4)]).ToArray();

    private static ReadOnlySpan<byte> EncodeInto(ReadOnlySpan<float> values, DataType type, byte[] buffer)
    {
        if (type == DataType.Float16)
        {
            for (int i = 0; i < values.Length; i++)
            {
                BinaryPrimitives.WriteHalfLittleEndian(buffer.AsSpan(i * 2), (Half)values[i]);
            }

            return buffer.AsSpan(0, values.Length * 2);
        }

        for (int i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(buffer.AsSpan(i * 4), values[i]);
        }

        return buffer.AsSpan(0, values.Length * 4);
    }

    private void AddNode(string opType, string[] inputs, string[] outputs, AttributeProto[] attributes)
    {
        // torch names a node by its module path and op type, numbering repeats within a module (/attn1/MatMul_1).
        var baseName = $"/{string.Join('/', _scopes)}/{opType}";
        var name = _nodeNames.TryGetValue(baseName, out var seen) ? $"{baseName}_{seen}" : baseName;
        _nodeNames[baseName] = seen + 1;
        var node = new NodeProto { OpType = opType, Name = name };
        node.Input.Add(inputs);
        node.Output.Add(outputs);
        node.Attribute.Add(attributes);
        _graph.Node.Add(node);
    }

    private static ValueInfoProto ValueInfo(string name, DataType type, Dim[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var dim in dims)
        {
            shape.Dim.Add(dim.Symbol is null
                ? new TensorShapeProto.Types.Dimension { DimValue = dim.Size }
                : new TensorShapeProto.Types.Dimension { DimParam = dim.Symbol });
        }

        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } } };
    }

    /// <summary>Leaves a module scope when disposed.</summary>
    internal readonly struct Scope(ExportGraph graph) : IDisposable
    {
        public void Dispose() => graph._scopes.RemoveAt(graph._scopes.Count - 1);
    }
}
