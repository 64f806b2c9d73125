using Sdxl.Net.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Sdxl.Net.ControlNet;

/// <summary>
/// The Canny edge detector with OpenCV's semantics (<c>cv2.Canny(image, low, high)</c>: 3×3 Sobel with replicated
/// borders, L1 gradient magnitude |dx| + |dy|, for colour images the channel with the largest magnitude, non-maximum
/// suppression in four directions, hysteresis with 8-connectivity), which is how diffusers' ControlNet examples make
/// canny control images (thresholds 100 and 200).
/// </summary>
public static class CannyEdgeDetector
{
    /// <summary>diffusers' example low threshold.</summary>
    public const double DefaultLowThreshold = 100;

    /// <summary>diffusers' example high threshold.</summary>
    public const double DefaultHighThreshold = 200;

    /// <summary>tan(22.5°) in OpenCV's 15-bit fixed point.</summary>
    private const int Shift = 15;
    private static readonly int Tan22 = (int)((0.4142135623730950488016887242097 * (1 << Shift)) + 0.5);

    /// <summary>
    /// Detects edges and returns them as a control image: white (255) edge pixels on black, the same in R, G and B
    /// (diffusers' example stacks the single-channel result three times).
    /// </summary>
    /// <param name="image">The source image.</param>
    /// <param name="lowThreshold">Gradients above it extend edges (OpenCV's threshold1; swapped with the high one if larger).</param>
    /// <param name="highThreshold">Gradients above it start edges (OpenCV's threshold2).</param>
    public static Image<Rgb24> Detect(Image<Rgb24> image, double lowThreshold = DefaultLowThreshold, double highThreshold = DefaultHighThreshold)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (!double.IsFinite(lowThreshold) || !double.IsFinite(highThreshold))
        {
            throw new ArgumentOutOfRangeException(nameof(lowThreshold), "Canny thresholds must be finite numbers.");
        }

        var edges = Edges(ImageInput.RgbBytes(image), image.Width, image.Height, 3, lowThreshold, highThreshold);
        var result = new Image<Rgb24>(image.Width, image.Height);
        result.ProcessPixelRows(accessor =>
        {
            for (int y = 0; y < accessor.Height; y++)
            {
                var row = accessor.GetRowSpan(y);
                for (int x = 0; x < row.Length; x++)
                {
                    byte v = edges[(y * image.Width) + x];
                    row[x] = new Rgb24(v, v, v);
                }
            }
        });
        return result;
    }

    /// <summary>The edge map (255 or 0 per pixel) of interleaved 8-bit pixels, exactly as cv2.Canny with aperture 3 and L1 gradient.</summary>
    internal static byte[] Edges(byte[] pixels, int width, int height, int channels, double lowThreshold, double highThreshold)
    {
        if (lowThreshold > highThreshold)
        {
            (lowThreshold, highThreshold) = (highThreshold, lowThreshold);
        }

        int low = (int)Math.Floor(lowThreshold);
        int high = (int)Math.Floor(highThreshold);
        var (dx, dy, magnitude) = Gradients(pixels, width, height, channels);

        // The map has a one-pixel frame: 0 may be an edge, 1 cannot be, 2 is one.
        int stride = width + 2;
        var map = new byte[stride * (height + 2)];
        map.AsSpan().Fill(1);
        var stack = new Stack<int>();
        int Mag(int y, int x) => y < 0 || y >= height || x < 0 || x >= width ? 0 : magnitude[(y * width) + x];
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                int i = (y * width) + x;
                int m = magnitude[i];
                if (m <= low || !IsLocalMaximum(m, dx[i], dy[i], y, x, Mag))
                {
                    continue;
                }

                int at = ((y + 1) * stride) + x + 1;
                if (m > high)
                {
                    map[at] = 2;
                    stack.Push(at);
                }
                else
                {
                    map[at] = 0;
                }
            }
        }

        // Hysteresis: grow the strong edges through 8-connected candidates.
        ReadOnlySpan<int> neighbours = [-1, 1, -stride - 1, -stride, -stride + 1, stride - 1, stride, stride + 1];
        while (stack.Count > 0)
        {
            int at = stack.Pop();
            foreach (int d in neighbours)
            {
                if (map[at + d] == 0)
                {
                    map[at + d] = 2;
                    stack.Push(at + d);
                }
            }
        }

        var edges = new byte[width * height];
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                edges[(y * width) + x] = map[((y + 1) * stride) + x + 1] == 2 ? (byte)255 : (byte)0;
            }
        }

        return edges;
    }

    /// <summary>
    /// OpenCV's direction test: horizontal when |dy| &lt; tan 22.5° |dx| (the maximum must beat the left neighbour and
    /// not lose to the right one), vertical when |dy| &gt; tan 67.5° |dx| (the same with the rows above and below),
    /// otherwise the diagonal that the signs of dx and dy select (strictly larger than both).
    /// </summary>
    private static bool IsLocalMaximum(int m, int xs, int ys, int y, int x, Func<int, int, int> mag)
    {
        int ax = Math.Abs(xs);
        int ay = Math.Abs(ys) << Shift;
        int tg22x = ax * Tan22;
        if (ay < tg22x)
        {
            return m > mag(y, x - 1) && m >= mag(y, x + 1);
        }

        int tg67x = tg22x + (ax << (Shift + 1));
        if (ay > tg67x)
        {
            return m > mag(y - 1, x) && m >= mag(y + 1, x);
        }

        int s = (xs ^ ys) < 0 ? -1 : 1;
        return m > mag(y - 1, x - s) && m > mag(y + 1, x + s);
    }

    /// <summary>3×3 Sobel dx and dy with replicated borders and the L1 magnitude, keeping per pixel the channel with the largest magnitude (the first on ties).</summary>
    private static (int[] Dx, int[] Dy, int[] Magnitude) Gradients(byte[] pixels, int width, int height, int channels)
    {
        var dx = new int[width * height];
        var dy = new int[width * height];
        var magnitude = new int[width * height];
        for (int y = 0; y < height; y++)
        {
            int up = Math.Max(y - 1, 0), down = Math.Min(y + 1, height - 1);
            for (int x = 0; x < width; x++)
            {
                int left = Math.Max(x - 1, 0), right = Math.Min(x + 1, width - 1);
                int best = -1;
                for (int c = 0; c < channels; c++)
                {
                    int P(int yy, int xx) => pixels[(((yy * width) + xx) * channels) + c];
                    int gx = P(up, right) - P(up, left) + (2 * (P(y, right) - P(y, left))) + P(down, right) - P(down, left);
                    int gy = P(down, left) - P(up, left) + (2 * (P(down, x) - P(up, x))) + P(down, right) - P(up, right);
                    int m = Math.Abs(gx) + Math.Abs(gy);
                    if (m > best)
                    {
                        best = m;
                        dx[(y * width) + x] = gx;
                        dy[(y * width) + x] = gy;
                    }
                }

                magnitude[(y * width) + x] = best;
            }
        }

        return (dx, dy, magnitude);
    }
}
