using System.Buffers;
using System.Numerics.Tensors;

namespace Sdxl.Net.Denoising;

/// <summary>Classifier-free guidance and guidance rescale over the CFG batch [negative…, positive…].</summary>
internal static class Guidance
{
    /// <summary>
    /// <c>noise = uncond + scale · (text − uncond)</c>, written into <paramref name="destination"/>
    /// (which may alias <paramref name="unconditional"/>).
    /// </summary>
    public static void Combine(ReadOnlySpan<float> unconditional, ReadOnlySpan<float> text, float scale, Span<float> destination)
    {
        // destination = uncond + scale * (text - uncond), evaluated like torch: diff first, then multiply-add.
        TensorPrimitives.Subtract(text, unconditional, destination);
        // Separate multiply and add (no fused multiply-add) round like torch's float32 ops.
        TensorPrimitives.Multiply(destination, scale, destination);
        TensorPrimitives.Add(destination, unconditional, destination);
    }

    /// <summary>
    /// Guidance rescale (Lin et al. 2023, §3.4), per sample: <c>cfg · (std(text)/std(cfg))</c> blended with the plain
    /// CFG result by <paramref name="rescale"/>. Standard deviations are torch's unbiased (n − 1) estimator.
    /// </summary>
    public static void Rescale(Span<float> guided, ReadOnlySpan<float> text, int batch, float rescale)
    {
        if (rescale <= 0)
        {
            return;
        }

        int per = guided.Length / batch;
        var scratch = ArrayPool<float>.Shared.Rent(per);
        try
        {
            var blended = scratch.AsSpan(0, per);
            for (int b = 0; b < batch; b++)
            {
                var g = guided.Slice(b * per, per);
                var t = text.Slice(b * per, per);
                // torch holds each std as a float32 tensor and divides in float32.
                float stdText = (float)StdUnbiased(t);
                float stdCfg = (float)StdUnbiased(g);
                float factor = stdText / stdCfg;

                // g = rescale · (g · factor) + (1 − rescale) · g, one float operation at a time as the scalar
                // expression rounds (separate multiplies and add, no fused multiply-add), but vectorised.
                TensorPrimitives.Multiply(g, factor, blended);
                TensorPrimitives.Multiply(blended, rescale, blended);
                TensorPrimitives.Multiply(g, 1 - rescale, g);
                TensorPrimitives.Add(blended, g, g);
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(scratch);
        }
    }

    internal static double StdUnbiased(ReadOnlySpan<float> values)
    {
        double mean = 0;
        foreach (var v in values)
        {
            mean += v;
        }

        mean /= values.Length;
        double sum = 0;
        foreach (var v in values)
        {
            double d = v - mean;
            sum += d * d;
        }

        return Math.Sqrt(sum / (values.Length - 1));
    }
}
