using System.Numerics.Tensors;

namespace Sdxl.Net.Text;

/// <summary>Applies per-token prompt weights to one chunk's hidden states [77, d], in place.</summary>
internal static class PromptWeights
{
    /// <param name="states">The chunk's hidden states [tokens, d] from one text encoder.</param>
    /// <param name="width">d.</param>
    /// <param name="weights">One weight per token.</param>
    /// <param name="empty">The empty prompt's states [tokens, d] (used by <see cref="PromptWeighting.ComfyUI"/> only).</param>
    /// <param name="weighting">How the weights apply.</param>
    public static void Apply(Span<float> states, int width, ReadOnlySpan<float> weights, ReadOnlySpan<float> empty, PromptWeighting weighting)
    {
        if (weighting == PromptWeighting.ComfyUI)
        {
            // ComfyUI: h = (h - empty) * w + empty for each token whose weight is not 1.
            for (int t = 0; t < weights.Length; t++)
            {
                if (weights[t] != 1f)
                {
                    var row = states.Slice(t * width, width);
                    var baseline = empty.Slice(t * width, width);
                    TensorPrimitives.Subtract(row, baseline, row);
                    TensorPrimitives.Multiply(row, weights[t], row);
                    TensorPrimitives.Add(row, baseline, row);
                }
            }

            return;
        }

        // A1111's "Original" emphasis: z *= multipliers; z *= original_mean / new_mean (means over the whole chunk).
        float originalMean = Mean(states);
        for (int t = 0; t < weights.Length; t++)
        {
            var row = states.Slice(t * width, width);
            TensorPrimitives.Multiply(row, weights[t], row);
        }

        if (weighting == PromptWeighting.NoMeanRestore)
        {
            return;
        }

        float newMean = Mean(states);
        TensorPrimitives.Multiply(states, originalMean / newMean, states);
    }

    // torch's float32 mean accumulates with more precision than a running float sum; a double sum stays within an ulp of it.
    private static float Mean(ReadOnlySpan<float> values)
    {
        double sum = 0;
        foreach (var v in values)
        {
            sum += v;
        }

        return (float)(sum / values.Length);
    }
}
