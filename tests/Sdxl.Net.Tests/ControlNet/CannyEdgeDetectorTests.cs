using Sdxl.Net.ControlNet;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Sdxl.Net.Tests.ControlNet;

/// <summary>
/// The Canny detector against edge maps derived by hand from cv2.Canny's definition (3×3 Sobel, replicated borders,
/// L1 magnitude, OpenCV's non-maximum suppression with "greater than one neighbour, not less than the other", strict
/// thresholds, hysteresis) on images small enough to follow every pixel.
/// </summary>
public sealed class CannyEdgeDetectorTests
{
    // A vertical step 0 | a between columns 3 and 4 of an 8-wide image: dx = 4a at columns 3 and 4 (Sobel weights
    // 1 + 2 + 1), dy = 0. Column 3 beats its left neighbour (0) and ties its right one (kept: ">="); column 4 does not
    // beat column 3. The edge is column 3, if 4a exceeds the high threshold 200 strictly: a = 51 yes, a = 50 no.
    [Theory]
    [InlineData(51, true)]
    [InlineData(50, false)]
    [InlineData(26, false)]
    public void A_vertical_step_gives_the_column_left_of_it_when_above_the_high_threshold(byte a, bool expectEdge)
    {
        var edges = CannyEdgeDetector.Edges(Gray(8, 6, (y, x) => x < 4 ? (byte)0 : a), 8, 6, 3, 100, 200);
        for (int y = 0; y < 6; y++)
        {
            for (int x = 0; x < 8; x++)
            {
                Assert.Equal(expectEdge && x == 3 ? 255 : 0, edges[(y * 8) + x]);
            }
        }
    }

    // The same for a horizontal step between rows 2 and 3: the vertical direction, row 2 kept.
    [Fact]
    public void A_horizontal_step_gives_the_row_above_it()
    {
        var edges = CannyEdgeDetector.Edges(Gray(5, 6, (y, x) => y < 3 ? (byte)200 : (byte)10), 5, 6, 3, 100, 200);
        for (int y = 0; y < 6; y++)
        {
            for (int x = 0; x < 5; x++)
            {
                Assert.Equal(y == 2 ? 255 : 0, edges[(y * 5) + x]);
            }
        }
    }

    // Hysteresis. 8×10 image: left 4 columns 0; right columns 40 in rows 0-4 and 255 in rows 5-9. By hand:
    // rows 0-3, column 3: magnitude 4·40 = 160, a local maximum between the low (100) and high (200) thresholds: weak.
    // (4,4): dx 375, dy 645 (diagonal, both signs +), 1020 > (3,3) 160 and > (5,5) 860: strong.
    // (4,5..7): dx 0, dy 4·215 = 860, above (3,x) 0 and not below (5,x) 860: strong, a horizontal edge.
    // (5,4): dx 805, dy 645 (diagonal), 1450 > (4,3) 590 and > (6,5) 0: strong. (4,3) and (5,3) lose to (5,4).
    // rows 6-9, column 3: dx 1020, dy 0, ties column 4: strong.
    // The weak rows 0-3 touch (4,4) diagonally, so they are kept; alone (the whole right side 40) they vanish.
    [Fact]
    public void Weak_edges_survive_only_when_connected_to_strong_ones()
    {
        var connected = CannyEdgeDetector.Edges(Gray(8, 10, (y, x) => x < 4 ? (byte)0 : y < 5 ? (byte)40 : (byte)255), 8, 10, 3, 100, 200);
        var expected = new HashSet<(int, int)> { (4, 4), (4, 5), (4, 6), (4, 7), (5, 4) };
        foreach (var y in new[] { 0, 1, 2, 3, 6, 7, 8, 9 })
        {
            expected.Add((y, 3));
        }

        for (int y = 0; y < 10; y++)
        {
            for (int x = 0; x < 8; x++)
            {
                Assert.True((expected.Contains((y, x)) ? 255 : 0) == connected[(y * 8) + x], $"pixel ({y},{x}): {connected[(y * 8) + x]}");
            }
        }

        var alone = CannyEdgeDetector.Edges(Gray(8, 10, (y, x) => x < 4 ? (byte)0 : (byte)40), 8, 10, 3, 100, 200);
        Assert.All(alone, v => Assert.Equal(0, v));
    }

    // Colour: per pixel the channel with the largest magnitude decides. A step only in blue is found as in gray;
    // thresholds given in the other order are swapped, as OpenCV does.
    [Fact]
    public void Colour_images_use_the_strongest_channel_and_swapped_thresholds_are_reordered()
    {
        using var image = new Image<Rgb24>(8, 4);
        image.ProcessPixelRows(a =>
        {
            for (int y = 0; y < a.Height; y++)
            {
                var row = a.GetRowSpan(y);
                for (int x = 0; x < row.Length; x++)
                {
                    row[x] = new Rgb24(30, 30, x < 4 ? (byte)0 : (byte)255);
                }
            }
        });
        using var edges = CannyEdgeDetector.Detect(image, 200, 100);
        Assert.Equal(8, edges.Width);
        for (int x = 0; x < 8; x++)
        {
            var p = edges[x, 1];
            Assert.Equal(x == 3 ? new Rgb24(255, 255, 255) : new Rgb24(0, 0, 0), p);
        }
    }

    private static byte[] Gray(int width, int height, Func<int, int, byte> value)
    {
        var pixels = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                byte v = value(y, x);
                pixels[(((y * width) + x) * 3) + 0] = v;
                pixels[(((y * width) + x) * 3) + 1] = v;
                pixels[(((y * width) + x) * 3) + 2] = v;
            }
        }

        return pixels;
    }
}
