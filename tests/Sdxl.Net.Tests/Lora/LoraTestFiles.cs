using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Google.Protobuf;
using Onnx;

namespace Sdxl.Net.Tests.Lora;

/// <summary>One tensor to write into a test safetensors file.</summary>
internal sealed record TestTensor(string Name, long[] Shape, float[] Values, string DType = "F32");

/// <summary>Writes safetensors files byte by byte (the format's spec: u64 header size, JSON header, data).</summary>
internal static class SafetensorsWriter
{
    public static void Write(string path, IEnumerable<TestTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = new Dictionary<string, object>();
        if (metadata is not null)
        {
            header["__metadata__"] = metadata;
        }

        using var data = new MemoryStream();
        var b = new byte[4];
        foreach (var t in tensors)
        {
            long begin = data.Position;
            foreach (var v in t.Values)
            {
                switch (t.DType)
                {
                    case "F32":
                        BinaryPrimitives.WriteSingleLittleEndian(b, v);
                        data.Write(b, 0, 4);
                        break;
                    case "F16":
                        BinaryPrimitives.WriteHalfLittleEndian(b, (Half)v);
                        data.Write(b, 0, 2);
                        break;
                    default: // BF16: the upper half of a value already representable in bfloat16
                        BinaryPrimitives.WriteUInt16LittleEndian(b, (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16));
                        data.Write(b, 0, 2);
                        break;
                }
            }

            header[t.Name] = new Dictionary<string, object> { ["dtype"] = t.DType, ["shape"] = t.Shape, ["data_offsets"] = new[] { begin, data.Position } };
        }

        WriteRaw(path, Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header)), data.ToArray());
    }

    /// <summary>Writes a file with the given header bytes and data (for malformed files).</summary>
    public static void WriteRaw(string path, byte[] header, byte[] data, ulong? declaredHeaderSize = null)
    {
        using var file = File.Create(path);
        Span<byte> size = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(size, declaredHeaderSize ?? (ulong)header.Length);
        file.Write(size);
        file.Write(header);
        file.Write(data);
    }

    /// <summary>Rounds values to what <paramref name="dtype"/> stores, so references use the stored numbers.</summary>
    public static float[] Representable(float[] values, string dtype) => dtype switch
    {
        "F16" => values.Select(v => (float)(Half)v).ToArray(),
        "BF16" => values.Select(v => BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(v) & 0xFFFF0000u)).ToArray(),
        _ => values,
    };
}

/// <summary>
/// Reads and rewrites ONNX initializers with the protobuf classes of OnnxSharp: a path independent of the library's own
/// wire-format reader, used to find module weights and to bake merged weights into a model file.
/// </summary>
internal static class OnnxWeights
{
    public static ModelProto Load(string path)
    {
        using var stream = File.OpenRead(path);
        return ModelProto.Parser.ParseFrom(stream);
    }

    /// <summary>The initializer consumed by the node named <paramref name="nodeName"/> as its second input.</summary>
    public static (string Name, long[] Dims, float[] Values) WeightOfNode(ModelProto model, string nodeName)
    {
        var node = model.Graph.Node.Single(n => n.Name == nodeName);
        var tensor = model.Graph.Initializer.Single(t => t.Name == node.Input[1]);
        return (tensor.Name, tensor.Dims.ToArray(), ReadFloats(tensor));
    }

    public static float[] ReadFloats(TensorProto tensor)
    {
        var bytes = tensor.RawData.ToByteArray();
        var values = new float[bytes.Length / 4];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(i * 4));
        }

        return values;
    }

    /// <summary>Replaces initializers' float32 values and writes the model to <paramref name="path"/>.</summary>
    public static void Bake(ModelProto model, IReadOnlyDictionary<string, float[]> replacements, string path)
    {
        foreach (var tensor in model.Graph.Initializer)
        {
            if (replacements.TryGetValue(tensor.Name, out var values))
            {
                var bytes = new byte[values.Length * 4];
                for (int i = 0; i < values.Length; i++)
                {
                    BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
                }

                tensor.RawData = ByteString.CopyFrom(bytes);
            }
        }

        using var stream = File.Create(path);
        model.WriteTo(stream);
    }
}

/// <summary>The LoRA merge written out plainly in double precision: W' = W + s · up · down in the stored layout.</summary>
internal static class ReferenceMerge
{
    /// <param name="weight">The stored weight.</param>
    /// <param name="transposed">Whether it is stored [in, out] (a MatMul weight) rather than [out, in(·k·k)].</param>
    /// <param name="up">[out, rank].</param>
    /// <param name="down">[rank, in(·k·k)].</param>
    /// <param name="rank">The rank.</param>
    /// <param name="scale">weight · alpha / rank.</param>
    public static float[] Apply(float[] weight, bool transposed, float[] up, float[] down, int rank, double scale)
    {
        int outputs = up.Length / rank, inputs = down.Length / rank;
        var result = (float[])weight.Clone();
        for (int o = 0; o < outputs; o++)
        {
            for (int i = 0; i < inputs; i++)
            {
                double delta = 0;
                for (int k = 0; k < rank; k++)
                {
                    delta += (double)up[(o * rank) + k] * down[(k * inputs) + i];
                }

                int index = transposed ? (i * outputs) + o : (o * inputs) + i;
                result[index] = (float)(result[index] + (scale * delta));
            }
        }

        return result;
    }
}
