namespace Sdxl.Net.Conditioning;

/// <summary>
/// The multi-aspect training buckets of SDXL (paper, appendix I): about 1024² pixels each, sides multiples of 64.
/// </summary>
public static class AspectRatioBuckets
{
    private static readonly ImageSize[] Buckets = Create();

    /// <summary>Every bucket, from the tallest (512×2048) to the widest (2048×512).</summary>
    public static IReadOnlyList<ImageSize> All => Buckets;

    /// <summary>The bucket whose aspect ratio is nearest (in log space) to <paramref name="width"/> ÷ <paramref name="height"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A side is not positive.</exception>
    public static ImageSize Nearest(int width, int height)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        return Nearest((double)width / height);
    }

    /// <summary>The bucket whose aspect ratio (width ÷ height) is nearest, in log space, to <paramref name="aspectRatio"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The ratio is not a positive finite number.</exception>
    public static ImageSize Nearest(double aspectRatio)
    {
        if (!double.IsFinite(aspectRatio) || aspectRatio <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(aspectRatio), aspectRatio, "The aspect ratio must be a positive finite number (width ÷ height).");
        }

        var target = Math.Log(aspectRatio);
        var best = Buckets[0];
        var bestDistance = double.MaxValue;
        foreach (var bucket in Buckets)
        {
            var distance = Math.Abs(Math.Log(bucket.AspectRatio) - target);
            if (distance < bestDistance)
            {
                best = bucket;
                bestDistance = distance;
            }
        }

        return best;
    }

    private static ImageSize[] Create()
    {
        // (height, width) pairs of the SDXL paper's table, tallest first.
        int[,] pairs =
        {
            { 2048, 512 }, { 1984, 512 }, { 1920, 512 }, { 1856, 512 }, { 1792, 576 }, { 1728, 576 }, { 1664, 576 },
            { 1600, 640 }, { 1536, 640 }, { 1472, 704 }, { 1408, 704 }, { 1344, 704 }, { 1344, 768 }, { 1280, 768 },
            { 1216, 832 }, { 1152, 832 }, { 1152, 896 }, { 1088, 896 }, { 1088, 960 }, { 1024, 960 }, { 1024, 1024 },
            { 960, 1024 }, { 960, 1088 }, { 896, 1088 }, { 896, 1152 }, { 832, 1152 }, { 832, 1216 }, { 768, 1280 },
            { 768, 1344 }, { 704, 1344 }, { 704, 1408 }, { 704, 1472 }, { 640, 1536 }, { 640, 1600 }, { 576, 1664 },
            { 576, 1728 }, { 576, 1792 }, { 512, 1856 }, { 512, 1920 }, { 512, 1984 }, { 512, 2048 },
        };
        var result = new ImageSize[pairs.GetLength(0)];
        for (int i = 0; i < result.Length; i++)
        {
            result[i] = new ImageSize(pairs[i, 1], pairs[i, 0]);
        }

        return result;
    }
}
