using System.Buffers.Binary;
using Google.Protobuf;
using Onnx;
using DataType = Onnx.TensorProto.Types.DataType;

namespace Sdxl.Net.Synthetic;

/// <summary>
/// Builds one opset-17 ONNX graph: named inputs and outputs with symbolic dimensions, random or constant initializers,
/// and nodes whose outputs get generated names. Saved inline or with large initializers as external data.
/// </summary>
internal sealed class OnnxGraphBuilder
{
    /// <summary>Initializers at least this large go to the external data file (onnx's default threshold).</summary>
    private const int ExternalDataThresholdBytes = 1024;

    /// <summary>External tensors start at multiples of this, so ONNX Runtime can memory-map them.</summary>
    private const int ExternalDataAlignment = 4096;

    private readonly GraphProto _graph;
    private readonly WeightRandom _random;
    private readonly bool _float16Io;
    private readonly bool _countOnly;
    private int _nextId;

    /// <param name="name">The graph name.</param>
    /// <param name="random">The source of the weights.</param>
    /// <param name="float16Io">Whether float graph inputs and outputs are float16.</param>
    /// <param name="countOnly">Only count the weights: build the graph with empty tensors (for sizing big models).</param>
    /// <param name="moduleNodeNames">
    /// Name weight-consuming nodes by their module path as torch exports do (<c>/down_blocks.1/…/to_q/MatMul</c>), with
    /// MatMul weights renamed <c>onnx::MatMul_N</c> (see <see cref="SyntheticModelOptions.DiffusersModuleNames"/>).
    /// </param>
    public OnnxGraphBuilder(string name, WeightRandom random, bool float16Io, bool countOnly = false, bool moduleNodeNames = false)
    {
        _graph = new GraphProto { Name = name };
        _random = random;
        _float16Io = float16Io;
        _countOnly = countOnly;
        ModuleNodeNames = moduleNodeNames;
    }

    /// <summary>Whether weight-consuming nodes carry module paths (torch-export naming).</summary>
    public bool ModuleNodeNames { get; }

    /// <summary>
    /// A random weight drawn exactly as <see cref="Weight"/> draws [<paramref name="rows"/>, <paramref name="columns"/>]
    /// but stored transposed, [columns, rows] (a Gemm weight with transB = 1 computing the same product).
    /// </summary>
    public string WeightTransposed(string name, float std, long rows, long columns)
    {
        if (_countOnly)
        {
            return CountedPlaceholder(name, [columns, rows]);
        }

        var values = new float[checked((int)(rows * columns))];
        _random.FillUniform(values, std);
        ParameterCount += values.Length;
        var transposed = new float[values.Length];
        for (long r = 0; r < rows; r++)
        {
            for (long c = 0; c < columns; c++)
            {
                transposed[(c * rows) + r] = values[(r * columns) + c];
            }
        }

        return FloatTensor(name, transposed, [columns, rows]);
    }

    /// <summary>The name a MatMul weight gets in torch exports: <c>onnx::MatMul_N</c>.</summary>
    public string ExportedMatMulWeightName() => $"onnx::MatMul_{_nextId++}";

    /// <summary>Adds a single-output node with an explicit node name and returns the name of its output.</summary>
    public string NamedNode(string nodeName, string opType, string[] inputs, params AttributeProto[] attributes)
    {
        var output = NextName(opType);
        var node = new NodeProto { OpType = opType, Name = nodeName };
        node.Input.Add(inputs);
        node.Output.Add(output);
        node.Attribute.Add(attributes);
        _graph.Node.Add(node);
        return output;
    }

    /// <summary>The number of weight values (float initializer elements) added so far.</summary>
    public long ParameterCount { get; private set; }

    /// <summary>
    /// Declares a float graph input (float16 when the model has float16 I/O) and returns the float32 value to compute with.
    /// </summary>
    public string FloatInput(string name, params Dim[] dims)
    {
        AddInput(name, _float16Io ? DataType.Float16 : DataType.Float, dims);
        return _float16Io ? Cast(name, DataType.Float) : name;
    }

    /// <summary>Declares a graph input of an exact element type and returns its name.</summary>
    public string Input(string name, DataType type, params Dim[] dims)
    {
        AddInput(name, type, dims);
        return name;
    }

    /// <summary>Exposes the float32 <paramref name="value"/> as graph output <paramref name="name"/> (float16 when the model has float16 I/O).</summary>
    public void FloatOutput(string name, string value, params Dim[] dims)
    {
        var type = _float16Io ? DataType.Float16 : DataType.Float;
        if (_float16Io)
        {
            AddNode("Cast", [value], [name], Attr.Int("to", (long)DataType.Float16));
        }
        else
        {
            AddNode("Identity", [value], [name]);
        }

        _graph.Output.Add(ValueInfo(name, type, dims));
    }

    /// <summary>A random weight tensor with zero mean and standard deviation <paramref name="std"/>.</summary>
    public string Weight(string name, float std, params long[] dims)
    {
        if (_countOnly)
        {
            return CountedPlaceholder(name, dims);
        }

        var values = new float[checked((int)Product(dims))];
        _random.FillUniform(values, std);
        ParameterCount += values.Length;
        return FloatTensor(name, values, dims);
    }

    /// <summary>A weight tensor whose every element is <paramref name="value"/> (norm scales, biases).</summary>
    public string Filled(string name, float value, params long[] dims)
    {
        if (_countOnly)
        {
            return CountedPlaceholder(name, dims);
        }

        var values = new float[checked((int)Product(dims))];
        values.AsSpan().Fill(value);
        ParameterCount += values.Length;
        return FloatTensor(name, values, dims);
    }

    /// <summary>A norm scale: random values around one.</summary>
    public string NormScale(string name, params long[] dims)
    {
        if (_countOnly)
        {
            return CountedPlaceholder(name, dims);
        }

        var values = new float[checked((int)Product(dims))];
        _random.FillUniform(values, 0.1f);
        for (var i = 0; i < values.Length; i++)
        {
            values[i] += 1f;
        }

        ParameterCount += values.Length;
        return FloatTensor(name, values, dims);
    }

    /// <summary>A float constant (not counted as a parameter).</summary>
    public string FloatConstant(float[] values, params long[] dims) => FloatTensor(NextName("const"), values, dims);

    /// <summary>An int64 constant, e.g. axes, shapes and indices.</summary>
    public string Int64Constant(params long[] values)
    {
        var tensor = new TensorProto { Name = NextName("const"), DataType = (int)DataType.Int64 };
        tensor.Dims.Add(values.Length);
        tensor.Int64Data.Add(values);
        _graph.Initializer.Add(tensor);
        return tensor.Name;
    }

    /// <summary>Adds a single-output node and returns the name of its output.</summary>
    public string Node(string opType, string[] inputs, params AttributeProto[] attributes)
    {
        var output = NextName(opType);
        AddNode(opType, inputs, [output], attributes);
        return output;
    }

    /// <summary>Casts <paramref name="value"/> to <paramref name="type"/>.</summary>
    public string Cast(string value, DataType type) => Node("Cast", [value], Attr.Int("to", (long)type));

    /// <summary>Builds the model (IR version 8, opset 17).</summary>
    public ModelProto ToModel()
    {
        var model = new ModelProto
        {
            IrVersion = 8,
            ProducerName = "Sdxl.Net.Synthetic",
            ProducerVersion = "1",
            Graph = _graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = string.Empty, Version = 17 });
        return model;
    }

    /// <summary>
    /// Writes the model to <paramref name="path"/>; with <paramref name="externalData"/>, every initializer of at least
    /// 1 KiB goes to <c>{file name}_data</c> beside it (location/offset/length entries, as onnx and optimum write).
    /// </summary>
    public void Save(string path, bool externalData)
    {
        var model = ToModel();
        if (externalData)
        {
            var dataFileName = Path.GetFileName(path) + "_data";
            using var data = new FileStream(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, dataFileName), FileMode.Create, FileAccess.Write);
            foreach (var tensor in model.Graph.Initializer)
            {
                if (tensor.RawData.Length < ExternalDataThresholdBytes)
                {
                    continue;
                }

                var padding = (int)((ExternalDataAlignment - data.Position % ExternalDataAlignment) % ExternalDataAlignment);
                data.Write(new byte[padding]);
                var offset = data.Position;
                tensor.RawData.WriteTo(data);
                tensor.ExternalData.Add(Entry("location", dataFileName));
                tensor.ExternalData.Add(Entry("offset", offset.ToString(System.Globalization.CultureInfo.InvariantCulture)));
                tensor.ExternalData.Add(Entry("length", tensor.RawData.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)));
                tensor.DataLocation = TensorProto.Types.DataLocation.External;
                tensor.RawData = ByteString.Empty;
            }
        }

        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write);
        model.WriteTo(stream);
    }

    private string CountedPlaceholder(string name, long[] dims)
    {
        ParameterCount += Product(dims);
        var tensor = new TensorProto { Name = name, DataType = (int)DataType.Float };
        tensor.Dims.Add(dims);
        _graph.Initializer.Add(tensor);
        return name;
    }

    private static StringStringEntryProto Entry(string key, string value) => new() { Key = key, Value = value };

    private string FloatTensor(string name, float[] values, long[] dims)
    {
        var bytes = new byte[values.Length * sizeof(float)];
        for (var i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * sizeof(float)), values[i]);
        }

        var tensor = new TensorProto { Name = name, DataType = (int)DataType.Float, RawData = ByteString.CopyFrom(bytes) };
        tensor.Dims.Add(dims);
        _graph.Initializer.Add(tensor);
        return name;
    }

    private void AddInput(string name, DataType type, Dim[] dims) => _graph.Input.Add(ValueInfo(name, type, dims));

    private void AddNode(string opType, string[] inputs, string[] outputs, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = opType, Name = NextName(opType + "_node") };
        node.Input.Add(inputs);
        node.Output.Add(outputs);
        node.Attribute.Add(attributes);
        _graph.Node.Add(node);
    }

    private string NextName(string prefix) => $"{prefix}_{_nextId++}";

    private static ValueInfoProto ValueInfo(string name, DataType type, Dim[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var dim in dims)
        {
            shape.Dim.Add(dim.Symbol is null
                ? new TensorShapeProto.Types.Dimension { DimValue = dim.Size }
                : new TensorShapeProto.Types.Dimension { DimParam = dim.Symbol });
        }

        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }

    private static long Product(long[] dims)
    {
        long product = 1;
        foreach (var dim in dims)
        {
            product *= dim;
        }

        return product;
    }
}

/// <summary>One dimension of a declared graph input or output: a fixed size or a named symbolic one.</summary>
internal readonly record struct Dim(long Size, string? Symbol)
{
    public static implicit operator Dim(long size) => new(size, null);

    public static implicit operator Dim(string symbol) => new(-1, symbol);
}

/// <summary>Node attribute factories.</summary>
internal static class Attr
{
    public static AttributeProto Int(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static AttributeProto Float(string name, float value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    public static AttributeProto String(string name, string value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(value) };

    public static AttributeProto Ints(string name, params long[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.Add(values);
        return attribute;
    }
}
