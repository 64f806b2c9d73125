using Sdxl.Net.Denoising;

namespace Sdxl.Net.Tests.Performance;

/// <summary>The vectorised guidance-rescale blend rounds exactly like the element-by-element float expression.</summary>
public sealed class GuidanceRescaleVectorTests
{
    [Theory]
    [InlineData(0.7f, 1)]
    [InlineData(0.3f, 2)]
    [InlineData(1.0f, 1)]
    public void Vectorised_blend_equals_the_scalar_expression_bit_for_bit(float rescale, int batch)
    {
        var random = new Random(9);
        int per = (4 * 17 * 13) + 3; // not a multiple of any vector width
        var guided = new float[per * batch];
        var text = new float[per * batch];
        for (int i = 0; i < guided.Length; i++)
        {
            guided[i] = (float)((random.NextDouble() * 8) - 4);
            text[i] = (float)((random.NextDouble() * 2) - 1);
        }

        var expected = (float[])guided.Clone();
        for (int b = 0; b < batch; b++)
        {
            var g = expected.AsSpan(b * per, per);
            float factor = (float)Guidance.StdUnbiased(text.AsSpan(b * per, per)) / (float)Guidance.StdUnbiased(g);
            for (int i = 0; i < g.Length; i++)
            {
                float rescaled = g[i] * factor;
                g[i] = (rescale * rescaled) + ((1 - rescale) * g[i]);
            }
        }

        Guidance.Rescale(guided, text, batch, rescale);

        Assert.Equal(expected, guided);
    }
}
