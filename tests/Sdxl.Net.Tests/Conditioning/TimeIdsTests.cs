using Sdxl.Net.Conditioning;

namespace Sdxl.Net.Tests.Conditioning;

public sealed class TimeIdsTests
{
    [Fact]
    public void Base_defaults_are_height_width_zero_crop_height_width()
    {
        var (pos, neg) = TimeIds.ForBase(new MicroConditioning(), width: 1216, height: 832);
        Assert.Equal([832f, 1216f, 0f, 0f, 832f, 1216f], pos);
        Assert.Equal(pos, neg);
    }

    [Fact]
    public void Base_orders_original_crop_target_as_height_width_and_top_left()
    {
        var c = new MicroConditioning
        {
            OriginalSize = new ImageSize(Width: 4096, Height: 2048),
            CropTopLeft = new CropCoordinates(Top: 8, Left: 16),
            TargetSize = new ImageSize(Width: 1024, Height: 512),
        };
        var (pos, _) = TimeIds.ForBase(c, 64, 64);
        Assert.Equal([2048f, 4096f, 8f, 16f, 512f, 1024f], pos);
    }

    [Fact]
    public void Base_negative_needs_both_negative_sizes_like_diffusers()
    {
        var onlyOriginal = new MicroConditioning { NegativeOriginalSize = new ImageSize(512, 512), NegativeCropTopLeft = new CropCoordinates(1, 2) };
        var (pos, neg) = TimeIds.ForBase(onlyOriginal, 64, 64);
        Assert.Equal(pos, neg);

        var both = onlyOriginal with { NegativeTargetSize = new ImageSize(Width: 640, Height: 320) };
        (_, neg) = TimeIds.ForBase(both, 64, 64);
        Assert.Equal([512f, 512f, 1f, 2f, 320f, 640f], neg);
    }

    [Fact]
    public void Refiner_rows_end_with_aesthetic_scores()
    {
        var c = new MicroConditioning { AestheticScore = 6.0, NegativeAestheticScore = 2.5, CropTopLeft = new CropCoordinates(3, 4) };
        var (pos, neg) = TimeIds.ForImageToImage(c, width: 96, height: 64, requiresAestheticsScore: true);
        Assert.Equal([64f, 96f, 3f, 4f, 6.0f], pos);
        Assert.Equal([64f, 96f, 0f, 0f, 2.5f], neg);
    }

    [Fact]
    public void Image_to_image_without_aesthetics_uses_the_positive_crop_in_the_negative_row()
    {
        var c = new MicroConditioning { CropTopLeft = new CropCoordinates(5, 6), NegativeCropTopLeft = new CropCoordinates(7, 8) };
        var (_, neg) = TimeIds.ForImageToImage(c, 64, 64, requiresAestheticsScore: false);
        Assert.Equal([64f, 64f, 5f, 6f, 64f, 64f], neg);
    }

    [Fact]
    public void Providers_apply_in_order_and_request_values_win()
    {
        var ctx = new MicroConditioningContext(1000, 1000, IsRefiner: false);
        var c = new MicroConditioning();
        c = new TargetSizeConditioning(new ImageSize(1, 1)).Apply(ctx, c);
        c = new AspectBucketConditioning().Apply(ctx, c);
        Assert.Equal(new ImageSize(1024, 1024), c.TargetSize);
        c = c.Merge(new MicroConditioning { TargetSize = new ImageSize(640, 1536) });
        Assert.Equal(new ImageSize(640, 1536), c.TargetSize);
    }
}

public sealed class AspectRatioBucketTests
{
    [Theory]
    [InlineData(1024, 1024, 1024, 1024)]
    [InlineData(1920, 1080, 1344, 768)]
    [InlineData(1080, 1920, 768, 1344)]
    [InlineData(4000, 1000, 2048, 512)]
    [InlineData(300, 200, 1216, 832)]
    public void Nearest_bucket(int w, int h, int bw, int bh) =>
        Assert.Equal(new ImageSize(bw, bh), AspectRatioBuckets.Nearest(w, h));

    [Fact]
    public void Buckets_are_about_a_megapixel_with_sides_multiple_of_64()
    {
        Assert.NotEmpty(AspectRatioBuckets.All);
        foreach (var b in AspectRatioBuckets.All)
        {
            Assert.Equal(0, b.Width % 64);
            Assert.Equal(0, b.Height % 64);
            Assert.InRange(b.Width * b.Height, 900_000, 1_100_000);
        }
    }

    [Fact]
    public void Invalid_ratio_is_rejected() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => AspectRatioBuckets.Nearest(double.NaN));
}
