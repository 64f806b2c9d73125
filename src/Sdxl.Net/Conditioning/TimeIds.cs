namespace Sdxl.Net.Conditioning;

/// <summary>Assembles the UNet's <c>time_ids</c> in diffusers' order.</summary>
internal static class TimeIds
{
    /// <summary>
    /// The positive and negative rows for the text-to-image (base) pipeline:
    /// <c>original_size + crops_coords_top_left + target_size</c>, each (height, width) / (top, left).
    /// The negative row differs only when both negative sizes are given (diffusers' rule).
    /// </summary>
    public static (float[] Positive, float[] Negative) ForBase(MicroConditioning c, int width, int height)
    {
        var original = c.OriginalSize ?? new ImageSize(width, height);
        var crop = c.CropTopLeft ?? default;
        var target = c.TargetSize ?? new ImageSize(width, height);
        var positive = Row(original, crop, target.Height, target.Width);
        var negative = c.NegativeOriginalSize is { } no && c.NegativeTargetSize is { } nt
            ? Row(no, c.NegativeCropTopLeft ?? default, nt.Height, nt.Width)
            : (float[])positive.Clone();
        return (positive, negative);
    }

    /// <summary>
    /// The rows for the image-to-image (refiner) pipeline. With aesthetics (5 values):
    /// <c>original + crop + aesthetic_score</c> and <c>negative_original + negative_crop + negative_aesthetic_score</c>.
    /// Without (6 values): <c>original + crop + target</c> and <c>negative_original + crop + negative_target</c>
    /// (diffusers uses the positive crop in the negative row there).
    /// </summary>
    public static (float[] Positive, float[] Negative) ForImageToImage(MicroConditioning c, int width, int height, bool requiresAestheticsScore)
    {
        var original = c.OriginalSize ?? new ImageSize(width, height);
        var target = c.TargetSize ?? new ImageSize(width, height);
        var crop = c.CropTopLeft ?? default;
        var negativeOriginal = c.NegativeOriginalSize ?? original;
        var negativeTarget = c.NegativeTargetSize ?? target;
        if (requiresAestheticsScore)
        {
            var positive = new float[] { original.Height, original.Width, crop.Top, crop.Left, (float)(c.AestheticScore ?? 6.0) };
            var negCrop = c.NegativeCropTopLeft ?? default;
            var negative = new float[] { negativeOriginal.Height, negativeOriginal.Width, negCrop.Top, negCrop.Left, (float)(c.NegativeAestheticScore ?? 2.5) };
            return (positive, negative);
        }

        return (Row(original, crop, target.Height, target.Width), Row(negativeOriginal, crop, negativeTarget.Height, negativeTarget.Width));
    }

    private static float[] Row(ImageSize original, CropCoordinates crop, float a, float b) =>
        [original.Height, original.Width, crop.Top, crop.Left, a, b];
}
