namespace Sdxl.Net.Conditioning;

/// <summary>An image size in pixels.</summary>
/// <param name="Width">Width in pixels.</param>
/// <param name="Height">Height in pixels.</param>
public readonly record struct ImageSize(int Width, int Height)
{
    /// <summary>Width ÷ height.</summary>
    public double AspectRatio => (double)Width / Height;

    /// <inheritdoc />
    public override string ToString() => $"{Width}x{Height}";
}

/// <summary>The top-left corner of a crop, in pixels (the SDXL paper's c_top, c_left).</summary>
/// <param name="Top">Pixels cropped from the top.</param>
/// <param name="Left">Pixels cropped from the left.</param>
public readonly record struct CropCoordinates(int Top, int Left)
{
    /// <inheritdoc />
    public override string ToString() => $"{Top},{Left}";
}

/// <summary>
/// SDXL's micro-conditioning (paper §2.2–2.3): the values the UNet receives as <c>time_ids</c>.
/// <see langword="null"/> means "diffusers' default".
/// </summary>
/// <remarks>
/// Defaults, as in diffusers: original and target size = the generated size; crop = (0, 0); the negative
/// (unconditional) values equal the positive ones unless set. In the base pipeline the negative values take effect
/// only when both <see cref="NegativeOriginalSize"/> and <see cref="NegativeTargetSize"/> are set (diffusers' rule).
/// The refiner replaces the target size by the aesthetic score.
/// </remarks>
public sealed record MicroConditioning
{
    /// <summary>The size of the training image the model should imitate (low values look upscaled and blurry).</summary>
    public ImageSize? OriginalSize { get; init; }

    /// <summary>The crop's top-left corner (non-zero values produce cropped-looking compositions).</summary>
    public CropCoordinates? CropTopLeft { get; init; }

    /// <summary>The target size (usually the generated size, or its aspect-ratio bucket).</summary>
    public ImageSize? TargetSize { get; init; }

    /// <summary>Negative original size (a common trick: a small value steers away from low-resolution looks).</summary>
    public ImageSize? NegativeOriginalSize { get; init; }

    /// <summary>Negative crop coordinates.</summary>
    public CropCoordinates? NegativeCropTopLeft { get; init; }

    /// <summary>Negative target size.</summary>
    public ImageSize? NegativeTargetSize { get; init; }

    /// <summary>Refiner only: the aesthetic score to imitate (diffusers default 6.0).</summary>
    public double? AestheticScore { get; init; }

    /// <summary>Refiner only: the negative aesthetic score (diffusers default 2.5).</summary>
    public double? NegativeAestheticScore { get; init; }

    /// <summary>Returns a copy where every value set in <paramref name="overrides"/> replaces this one's.</summary>
    public MicroConditioning Merge(MicroConditioning? overrides) => overrides is null ? this : new()
    {
        OriginalSize = overrides.OriginalSize ?? OriginalSize,
        CropTopLeft = overrides.CropTopLeft ?? CropTopLeft,
        TargetSize = overrides.TargetSize ?? TargetSize,
        NegativeOriginalSize = overrides.NegativeOriginalSize ?? NegativeOriginalSize,
        NegativeCropTopLeft = overrides.NegativeCropTopLeft ?? NegativeCropTopLeft,
        NegativeTargetSize = overrides.NegativeTargetSize ?? NegativeTargetSize,
        AestheticScore = overrides.AestheticScore ?? AestheticScore,
        NegativeAestheticScore = overrides.NegativeAestheticScore ?? NegativeAestheticScore,
    };
}

/// <summary>What a conditioning provider knows about the generation it conditions.</summary>
/// <param name="Width">The generated width in pixels.</param>
/// <param name="Height">The generated height in pixels.</param>
/// <param name="IsRefiner">Whether the values are for a refiner UNet (aesthetic score instead of target size).</param>
public sealed record MicroConditioningContext(int Width, int Height, bool IsRefiner);

/// <summary>
/// A pluggable source of micro-conditioning values. Providers run in registration order, each refining the values
/// of the previous; explicit values on the request are applied last.
/// </summary>
public interface IMicroConditioningProvider
{
    /// <summary>Returns the conditioning with this provider's values applied.</summary>
    MicroConditioning Apply(MicroConditioningContext context, MicroConditioning conditioning);
}
