using Sdxl.Net.Denoising;

namespace Sdxl.Net.Tests.Denoising;

public sealed class GuidanceTests
{
    [Fact]
    public void Combine_is_uncond_plus_scale_times_difference()
    {
        float[] u = [1f, -2f, 0.5f];
        float[] c = [3f, -2f, -0.5f];
        var d = new float[3];
        Guidance.Combine(u, c, 5f, d);
        Assert.Equal([11f, -2f, -4.5f], d);
    }

    [Fact]
    public void Rescale_matches_the_formula_with_unbiased_std_per_sample()
    {
        // Two samples of four values each.
        float[] guided = [1f, 2f, 3f, 4f, -1f, 0f, 1f, 10f];
        float[] text = [0.5f, 0.5f, 1.5f, 1.5f, 2f, 2f, 2f, 2.5f];
        var expected = (float[])guided.Clone();
        for (int b = 0; b < 2; b++)
        {
            var g = guided.AsSpan(b * 4, 4).ToArray();
            var t = text.AsSpan(b * 4, 4).ToArray();
            double Std(float[] x) { double m = x.Average(v => (double)v); return Math.Sqrt(x.Sum(v => (v - m) * (v - m)) / (x.Length - 1)); }
            double factor = Std(t) / Std(g);
            for (int i = 0; i < 4; i++)
            {
                expected[(b * 4) + i] = (float)((0.7 * g[i] * factor) + (0.3 * g[i]));
            }
        }

        Guidance.Rescale(guided, text, batch: 2, rescale: 0.7f);
        for (int i = 0; i < guided.Length; i++)
        {
            Assert.Equal(expected[i], guided[i], 5);
        }
    }

    [Fact]
    public void Rescale_zero_leaves_values_alone()
    {
        float[] guided = [1f, 2f, 3f];
        Guidance.Rescale(guided, [0f, 0f, 1f], 1, 0f);
        Assert.Equal([1f, 2f, 3f], guided);
    }

    [Fact]
    public void Base_time_ids_alternate_rows_like_diffusers_repeat()
    {
        float[] neg = [0f, 0f];
        float[] pos = [1f, 1f];
        var rows = Batching.BaseTimeIds(neg, pos, batch: 2, cfg: true);
        Assert.Equal([0f, 0f, 1f, 1f, 0f, 0f, 1f, 1f], rows);
        var embeds = Batching.NegativeThenPositive(neg, pos, batch: 2, cfg: true);
        Assert.Equal([0f, 0f, 0f, 0f, 1f, 1f, 1f, 1f], embeds);
        Assert.Equal([1f, 1f, 1f, 1f], Batching.NegativeThenPositive(neg, pos, batch: 2, cfg: false));
    }
}
