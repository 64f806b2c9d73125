using System.Numerics.Tensors;

namespace Sdxl.Net.Lora;

/// <summary>The LoRA merge, in float32: <c>W += scale · up · down</c> written in the ONNX initializer's layout.</summary>
internal static class LoraMath
{
    /// <summary>
    /// Adds <paramref name="scale"/> · up · down to <paramref name="weight"/>. up is [out, rank]; down is [rank, in]
    /// (a convolution's [rank, in, kh, kw] read as [rank, in·kh·kw]); the weight is [in, out] for
    /// <see cref="WeightLayout.InOut"/> (MatMul's Wᵀ) and [out, in(·kh·kw)] otherwise.
    /// </summary>
    public static void AddDelta(Span<float> weight, WeightLayout layout, ReadOnlySpan<float> up, ReadOnlySpan<float> down, int rank, float scale)
    {
        int outputs = up.Length / rank;
        int inputs = down.Length / rank;
        if (weight.Length != outputs * inputs)
        {
            throw new ArgumentException($"ΔW [{outputs}, {inputs}] does not fit a weight of {weight.Length} values.", nameof(weight));
        }

        var row = new float[inputs];
        for (int o = 0; o < outputs; o++)
        {
            // row = scale · Σ_k up[o, k] · down[k, :]
            row.AsSpan().Clear();
            for (int k = 0; k < rank; k++)
            {
                float factor = up[(o * rank) + k] * scale;
                if (factor != 0f)
                {
                    TensorPrimitives.MultiplyAdd(down.Slice(k * inputs, inputs), factor, row, row);
                }
            }

            if (layout == WeightLayout.InOut)
            {
                for (int i = 0; i < inputs; i++)
                {
                    weight[(i * outputs) + o] += row[i];
                }
            }
            else
            {
                var target = weight.Slice(o * inputs, inputs);
                TensorPrimitives.Add(target, row, target);
            }
        }
    }
}
