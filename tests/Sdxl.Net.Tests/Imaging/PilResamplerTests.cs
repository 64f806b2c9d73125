using Sdxl.Net.Imaging;

namespace Sdxl.Net.Tests.Imaging;

/// <summary>
/// The Pillow-exact Lanczos resize against values derived in the test from Pillow's algorithm as documented in
/// libImaging/Resample.c (written independently here: the Lanczos-3 kernel as 3·sin(πx)·sin(πx/3)/(π²x²), taps
/// [round(c − s), round(c + s)) with s = 3·max(1, in/out) and c = (i + ½)·in/out, weights normalized, rounded half away
/// from zero to 22-bit fixed point, sums started at ½, an 8-bit clip after each pass).
/// </summary>
public sealed class PilResamplerTests
{
    // Upscaling [0, 255] to four pixels: the taps of each output (by hand, c = 0.25, 0.75, 1.25, 1.75, two taps each)
    // ring past the ends: -45 and 300 before the clip, so Pillow gives 0 and 255.
    [Fact]
    public void Upscaling_an_edge_rings_and_is_clipped_to_8_bits()
    {
        var result = PilResampler.Resize([0, 255], 2, 1, 1, 4, 1);
        Assert.Equal(ExpectedRow([0, 255], 4), result);
        Assert.Equal(new byte[] { 0, 59, 196, 255 }, result);
    }

    [Theory]
    [InlineData(7, 3)]
    [InlineData(5, 8)]
    [InlineData(13, 4)]
    [InlineData(3, 11)]
    public void One_row_matches_the_formula(int inWidth, int outWidth)
    {
        var row = new byte[inWidth];
        var random = new Random(inWidth * 31 + outWidth);
        random.NextBytes(row);
        Assert.Equal(ExpectedRow(row, outWidth), PilResampler.Resize(row, inWidth, 1, 1, outWidth, 1));
    }

    // [[0, 255], [255, 0]] to 4×4: the horizontal pass rings to -45/300 at the row ends; Pillow clips those to 0/255
    // before the vertical pass, which changes e.g. output (row 1, column 0): 59 with the clip, 35 without.
    [Fact]
    public void The_vertical_pass_reads_the_clipped_horizontal_result()
    {
        byte[] image = [0, 255, 255, 0];
        var expected = ExpectedImage(image, 2, 2, 4, 4);
        var actual = PilResampler.Resize(image, 2, 2, 1, 4, 4);
        Assert.Equal(expected, actual);
        Assert.Equal(59, actual[4]);
    }

    [Theory]
    [InlineData(9, 6, 4, 4)]
    [InlineData(5, 7, 12, 3)]
    [InlineData(16, 16, 10, 10)]
    public void Rgb_images_resize_each_channel_as_the_formula(int w, int h, int newW, int newH)
    {
        var image = new byte[w * h * 3];
        new Random(w * h).NextBytes(image);
        var actual = PilResampler.Resize(image, w, h, 3, newW, newH);
        for (int c = 0; c < 3; c++)
        {
            var plane = new byte[w * h];
            for (int i = 0; i < plane.Length; i++)
            {
                plane[i] = image[(3 * i) + c];
            }

            var expected = ExpectedImage(plane, w, h, newW, newH);
            for (int i = 0; i < expected.Length; i++)
            {
                Assert.True(expected[i] == actual[(3 * i) + c], $"channel {c}, pixel {i}: expected {expected[i]}, got {actual[(3 * i) + c]}");
            }
        }
    }

    [Fact]
    public void A_constant_image_stays_constant_and_the_same_size_is_a_copy()
    {
        var gray = Enumerable.Repeat((byte)173, 10 * 7).ToArray();
        Assert.All(PilResampler.Resize(gray, 10, 7, 1, 3, 5), v => Assert.Equal(173, v));
        var image = new byte[6 * 4 * 3];
        new Random(3).NextBytes(image);
        Assert.Equal(image, PilResampler.Resize(image, 6, 4, 3, 6, 4));
    }

    /// <summary>One axis by the formula: fixed-point taps per output index.</summary>
    private static (int First, int[] Weights)[] Taps(int inSize, int outSize)
    {
        double scale = (double)inSize / outSize;
        double support = 3 * Math.Max(1, scale);
        var taps = new (int, int[])[outSize];
        for (int i = 0; i < outSize; i++)
        {
            double center = (i + 0.5) * scale;
            int first = Math.Max(0, (int)(center - support + 0.5));
            int end = Math.Min(inSize, (int)(center + support + 0.5));
            var w = new double[end - first];
            for (int j = 0; j < w.Length; j++)
            {
                double x = (first + j + 0.5 - center) / Math.Max(1, scale);
                w[j] = x == 0 ? 1 : x < -3 || x >= 3 ? 0 : 3 * Math.Sin(Math.PI * x) * Math.Sin(Math.PI * x / 3) / (Math.PI * Math.PI * x * x);
            }

            double sum = w.Sum();
            taps[i] = (first, w.Select(v => (int)Math.Round(v / sum * (1 << 22), MidpointRounding.AwayFromZero)).ToArray());
        }

        return taps;
    }

    private static byte Clip(long sum) => (byte)Math.Clamp(sum >> 22, 0, 255);

    private static byte[] ExpectedRow(byte[] row, int outWidth)
    {
        var taps = Taps(row.Length, outWidth);
        var result = new byte[outWidth];
        for (int i = 0; i < outWidth; i++)
        {
            long sum = 1 << 21;
            for (int j = 0; j < taps[i].Weights.Length; j++)
            {
                sum += row[taps[i].First + j] * (long)taps[i].Weights[j];
            }

            result[i] = Clip(sum);
        }

        return result;
    }

    private static byte[] ExpectedImage(byte[] image, int w, int h, int newW, int newH)
    {
        // Horizontal pass over every row (clipped to bytes), then the vertical pass.
        var rows = new byte[h * newW];
        for (int y = 0; y < h; y++)
        {
            ExpectedRow(image.AsSpan(y * w, w).ToArray(), newW).CopyTo(rows, y * newW);
        }

        var taps = Taps(h, newH);
        var result = new byte[newH * newW];
        for (int y = 0; y < newH; y++)
        {
            for (int x = 0; x < newW; x++)
            {
                long sum = 1 << 21;
                for (int j = 0; j < taps[y].Weights.Length; j++)
                {
                    sum += rows[((taps[y].First + j) * newW) + x] * (long)taps[y].Weights[j];
                }

                result[(y * newW) + x] = Clip(sum);
            }
        }

        return result;
    }
}
