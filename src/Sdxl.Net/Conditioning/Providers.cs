namespace Sdxl.Net.Conditioning;

/// <summary>Sets the original size (and optionally its negative): SDXL's "training image size" conditioning.</summary>
/// <param name="Size">The original size; <see langword="null"/> keeps the current value.</param>
/// <param name="NegativeSize">The negative original size; <see langword="null"/> keeps the current value.</param>
public sealed record OriginalSizeConditioning(ImageSize? Size, ImageSize? NegativeSize = null) : IMicroConditioningProvider
{
    /// <inheritdoc />
    public MicroConditioning Apply(MicroConditioningContext context, MicroConditioning conditioning) =>
        conditioning with { OriginalSize = Size ?? conditioning.OriginalSize, NegativeOriginalSize = NegativeSize ?? conditioning.NegativeOriginalSize };
}

/// <summary>Sets the crop's top-left corner (and optionally its negative).</summary>
/// <param name="Crop">The crop coordinates; <see langword="null"/> keeps the current value.</param>
/// <param name="NegativeCrop">The negative crop coordinates; <see langword="null"/> keeps the current value.</param>
public sealed record CropConditioning(CropCoordinates? Crop, CropCoordinates? NegativeCrop = null) : IMicroConditioningProvider
{
    /// <inheritdoc />
    public MicroConditioning Apply(MicroConditioningContext context, MicroConditioning conditioning) =>
        conditioning with { CropTopLeft = Crop ?? conditioning.CropTopLeft, NegativeCropTopLeft = NegativeCrop ?? conditioning.NegativeCropTopLeft };
}

/// <summary>Sets the target size (and optionally its negative).</summary>
/// <param name="Size">The target size; <see langword="null"/> keeps the current value.</param>
/// <param name="NegativeSize">The negative target size; <see langword="null"/> keeps the current value.</param>
public sealed record TargetSizeConditioning(ImageSize? Size, ImageSize? NegativeSize = null) : IMicroConditioningProvider
{
    /// <inheritdoc />
    public MicroConditioning Apply(MicroConditioningContext context, MicroConditioning conditioning) =>
        conditioning with { TargetSize = Size ?? conditioning.TargetSize, NegativeTargetSize = NegativeSize ?? conditioning.NegativeTargetSize };
}

/// <summary>Conditions the target size on the SDXL aspect-ratio bucket nearest to the generated size.</summary>
public sealed class AspectBucketConditioning : IMicroConditioningProvider
{
    /// <inheritdoc />
    public MicroConditioning Apply(MicroConditioningContext context, MicroConditioning conditioning) =>
        conditioning with { TargetSize = AspectRatioBuckets.Nearest(context.Width, context.Height) };
}

/// <summary>Sets the refiner's aesthetic scores.</summary>
/// <param name="Score">The aesthetic score (diffusers default 6.0).</param>
/// <param name="NegativeScore">The negative aesthetic score (diffusers default 2.5).</param>
public sealed record AestheticScoreConditioning(double Score = 6.0, double NegativeScore = 2.5) : IMicroConditioningProvider
{
    /// <inheritdoc />
    public MicroConditioning Apply(MicroConditioningContext context, MicroConditioning conditioning) =>
        conditioning with { AestheticScore = Score, NegativeAestheticScore = NegativeScore };
}
