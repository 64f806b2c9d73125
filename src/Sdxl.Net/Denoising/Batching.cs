namespace Sdxl.Net.Denoising;

/// <summary>Builds the CFG batch the way diffusers lays it out.</summary>
internal static class Batching
{
    /// <summary>Repeats <paramref name="row"/> <paramref name="times"/> times into <paramref name="destination"/> starting at <paramref name="offset"/>.</summary>
    public static void Repeat(ReadOnlySpan<float> row, int times, Span<float> destination, int offset)
    {
        for (int i = 0; i < times; i++)
        {
            row.CopyTo(destination.Slice(offset + (i * row.Length), row.Length));
        }
    }

    /// <summary><c>cat([negative × B, positive × B])</c>, or <c>positive × B</c> without guidance.</summary>
    public static float[] NegativeThenPositive(ReadOnlySpan<float> negative, ReadOnlySpan<float> positive, int batch, bool cfg)
    {
        if (!cfg)
        {
            var only = new float[positive.Length * batch];
            Repeat(positive, batch, only, 0);
            return only;
        }

        var result = new float[positive.Length * batch * 2];
        Repeat(negative, batch, result, 0);
        Repeat(positive, batch, result, positive.Length * batch);
        return result;
    }

    /// <summary>
    /// The base pipeline's <c>time_ids</c>: <c>cat([neg, pos]).repeat(B, 1)</c> — rows alternate negative/positive
    /// (a diffusers quirk kept for fidelity; it matters only when negative micro-conditioning differs).
    /// </summary>
    public static float[] BaseTimeIds(ReadOnlySpan<float> negative, ReadOnlySpan<float> positive, int batch, bool cfg)
    {
        if (!cfg)
        {
            return NegativeThenPositive(negative, positive, batch, cfg: false);
        }

        var result = new float[positive.Length * batch * 2];
        for (int b = 0; b < batch; b++)
        {
            negative.CopyTo(result.AsSpan(2 * b * positive.Length));
            positive.CopyTo(result.AsSpan(((2 * b) + 1) * positive.Length));
        }

        return result;
    }
}
