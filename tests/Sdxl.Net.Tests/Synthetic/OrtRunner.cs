using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Sdxl.Net.Tests.Synthetic;

/// <summary>Runs a session on inputs held as doubles, converting to and from each tensor's element type.</summary>
internal static class OrtRunner
{
    public static Dictionary<string, (long[] Shape, float[] Values)> Run(
        InferenceSession session, IReadOnlyList<TensorSignature> inputs, IReadOnlyList<double[]> values)
    {
        var ortInputs = new List<OrtValue>();
        try
        {
            for (var i = 0; i < inputs.Count; i++)
            {
                ortInputs.Add(Create(inputs[i].Type, values[i], inputs[i].RunShape));
            }

            using var runOptions = new RunOptions();
            using var outputs = session.Run(runOptions, inputs.Select(x => x.Name).ToArray(), ortInputs, session.OutputNames);
            var result = new Dictionary<string, (long[], float[])>();
            for (var i = 0; i < outputs.Count; i++)
            {
                var info = outputs[i].GetTensorTypeAndShape();
                var data = info.ElementDataType == TensorElementType.Float16
                    ? outputs[i].GetTensorDataAsSpan<Float16>().ToArray().Select(h => (float)BitConverter.UInt16BitsToHalf(h.value)).ToArray()
                    : outputs[i].GetTensorDataAsSpan<float>().ToArray();
                result[session.OutputNames[i]] = (info.Shape, data);
            }

            return result;
        }
        finally
        {
            foreach (var value in ortInputs)
            {
                value.Dispose();
            }
        }
    }

    private static OrtValue Create(TensorElementType type, double[] values, long[] shape) => type switch
    {
        TensorElementType.Float => OrtValue.CreateTensorValueFromMemory(values.Select(v => (float)v).ToArray(), shape),
        TensorElementType.Float16 => OrtValue.CreateTensorValueFromMemory(
            values.Select(v => new Float16(BitConverter.HalfToUInt16Bits((Half)v))).ToArray(), shape),
        TensorElementType.Int64 => OrtValue.CreateTensorValueFromMemory(values.Select(v => (long)v).ToArray(), shape),
        TensorElementType.Int32 => OrtValue.CreateTensorValueFromMemory(values.Select(v => (int)v).ToArray(), shape),
        _ => throw new NotSupportedException($"No test input of type {type}."),
    };
}
