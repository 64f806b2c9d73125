namespace Sdxl.Net.Imaging;

/// <summary>
/// Pillow's <c>Image.resize(size, Image.LANCZOS)</c> for 8-bit images, reproduced exactly: the separable Lanczos-3
/// filter whose support widens by the downscale factor, coefficients normalized to sum 1 then rounded to 22-bit fixed
/// point, a horizontal pass over the source rows the vertical filter uses, clipping to 8 bits, then the vertical pass
/// (Pillow's libImaging/Resample.c). diffusers resizes every PIL input this way (control images, image-to-image and
/// inpainting inputs), so any other resampler changes the image the models see by up to a few levels.
/// </summary>
internal static class PilResampler
{
    /// <summary>Fixed-point precision of the coefficients: 32 bits minus 8 for the pixel minus 2 for overshoot.</summary>
    internal const int PrecisionBits = 32 - 8 - 2;

    /// <summary>Lanczos' support (a = 3).</summary>
    private const double Support = 3.0;

    /// <summary>
    /// Resizes interleaved 8-bit pixels (<paramref name="channels"/> per pixel, row-major) to
    /// <paramref name="newWidth"/> × <paramref name="newHeight"/>. The same size returns a copy, as Pillow does.
    /// </summary>
    public static byte[] Resize(ReadOnlySpan<byte> source, int width, int height, int channels, int newWidth, int newHeight)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(newWidth, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(newHeight, 1);
        if (source.Length != checked(width * height * channels))
        {
            throw new ArgumentException($"{source.Length} bytes given for a {width}x{height} image with {channels} channels.", nameof(source));
        }

        bool horizontal = newWidth != width;
        bool vertical = newHeight != height;
        var vert = Coefficients(height, newHeight);

        // The horizontal pass only computes the source rows the vertical filter reads (Pillow's ybox_first..last).
        int firstRow = vert.Bounds[0];
        int lastRow = vert.Bounds[(newHeight * 2) - 2] + vert.Bounds[(newHeight * 2) - 1];
        byte[] current;
        int rowOffset = 0;
        if (horizontal)
        {
            var horiz = Coefficients(width, newWidth);
            current = new byte[newWidth * (lastRow - firstRow) * channels];
            ResampleHorizontal(source, width, channels, firstRow, lastRow - firstRow, newWidth, horiz, current);
            rowOffset = firstRow;
        }
        else
        {
            current = source.ToArray();
        }

        if (!vertical)
        {
            return current;
        }

        var result = new byte[newWidth * newHeight * channels];
        ResampleVertical(current, newWidth, channels, rowOffset, newHeight, vert, result);
        return result;
    }

    /// <summary>The filter taps of one axis: for each output index its first source index, tap count and fixed-point weights.</summary>
    /// <param name="Bounds">[first, count] per output index.</param>
    /// <param name="Weights">KernelSize weights per output index (zero past the count).</param>
    /// <param name="KernelSize">The taps reserved per output index.</param>
    internal sealed record AxisCoefficients(int[] Bounds, int[] Weights, int KernelSize);

    /// <summary>Pillow's precompute_coeffs followed by normalize_coeffs_8bpc, for the full source range [0, inSize).</summary>
    internal static AxisCoefficients Coefficients(int inSize, int outSize)
    {
        // Pillow passes the box as floats; (in1 - in0) is exact for any image size.
        double scale = (double)inSize / outSize;
        double filterScale = Math.Max(scale, 1.0);
        double support = Support * filterScale;
        int kernelSize = ((int)Math.Ceiling(support) * 2) + 1;
        var bounds = new int[outSize * 2];
        var weights = new int[outSize * kernelSize];
        var k = new double[kernelSize];
        for (int xx = 0; xx < outSize; xx++)
        {
            double center = (xx + 0.5) * scale;
            double total = 0.0;
            double invScale = 1.0 / filterScale;

            // C casts truncate toward zero; so do C#'s.
            int xmin = (int)(center - support + 0.5);
            if (xmin < 0)
            {
                xmin = 0;
            }

            int xmax = (int)(center + support + 0.5);
            if (xmax > inSize)
            {
                xmax = inSize;
            }

            xmax -= xmin;
            for (int x = 0; x < xmax; x++)
            {
                double w = Lanczos((x + xmin - center + 0.5) * invScale);
                k[x] = w;
                total += w;
            }

            for (int x = 0; x < xmax; x++)
            {
                if (total != 0.0)
                {
                    k[x] /= total;
                }

                // normalize_coeffs_8bpc: round half away from zero to 22-bit fixed point.
                double scaled = k[x] * (1 << PrecisionBits);
                weights[(xx * kernelSize) + x] = k[x] < 0 ? (int)(-0.5 + scaled) : (int)(0.5 + scaled);
            }

            bounds[xx * 2] = xmin;
            bounds[(xx * 2) + 1] = xmax;
        }

        return new AxisCoefficients(bounds, weights, kernelSize);
    }

    /// <summary>Pillow's truncated sinc: sinc(x) · sinc(x / 3) on [-3, 3).</summary>
    internal static double Lanczos(double x) => x >= -3.0 && x < 3.0 ? Sinc(x) * Sinc(x / 3) : 0.0;

    private static double Sinc(double x)
    {
        if (x == 0.0)
        {
            return 1.0;
        }

        x *= Math.PI;
        return Math.Sin(x) / x;
    }

    /// <summary>Rounds a fixed-point sum (which started at one half) to a byte, clipping as Pillow's clip8.</summary>
    private static byte Clip8(int sum)
    {
        int v = sum >> PrecisionBits;
        return v < 0 ? (byte)0 : v > 255 ? (byte)255 : (byte)v;
    }

    private static void ResampleHorizontal(ReadOnlySpan<byte> source, int width, int channels, int firstRow, int rows, int newWidth,
        AxisCoefficients c, Span<byte> destination)
    {
        for (int yy = 0; yy < rows; yy++)
        {
            var row = source.Slice((yy + firstRow) * width * channels, width * channels);
            var outRow = destination.Slice(yy * newWidth * channels, newWidth * channels);
            for (int xx = 0; xx < newWidth; xx++)
            {
                int xmin = c.Bounds[xx * 2];
                int count = c.Bounds[(xx * 2) + 1];
                var k = c.Weights.AsSpan(xx * c.KernelSize, count);
                for (int ch = 0; ch < channels; ch++)
                {
                    int sum = 1 << (PrecisionBits - 1);
                    for (int x = 0; x < k.Length; x++)
                    {
                        sum += row[((x + xmin) * channels) + ch] * k[x];
                    }

                    outRow[(xx * channels) + ch] = Clip8(sum);
                }
            }
        }
    }

    private static void ResampleVertical(ReadOnlySpan<byte> source, int width, int channels, int rowOffset, int newHeight,
        AxisCoefficients c, Span<byte> destination)
    {
        int stride = width * channels;
        for (int yy = 0; yy < newHeight; yy++)
        {
            int ymin = c.Bounds[yy * 2] - rowOffset;
            int count = c.Bounds[(yy * 2) + 1];
            var k = c.Weights.AsSpan(yy * c.KernelSize, count);
            var outRow = destination.Slice(yy * stride, stride);
            for (int i = 0; i < stride; i++)
            {
                int sum = 1 << (PrecisionBits - 1);
                for (int y = 0; y < k.Length; y++)
                {
                    sum += source[((y + ymin) * stride) + i] * k[y];
                }

                outRow[i] = Clip8(sum);
            }
        }
    }
}
