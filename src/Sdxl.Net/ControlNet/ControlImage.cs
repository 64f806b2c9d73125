using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Sdxl.Net.ControlNet;

/// <summary>
/// One control image of a request and the ControlNet that reads it, with diffusers' per-net settings
/// (<c>controlnet_conditioning_scale</c>, <c>control_guidance_start</c>, <c>control_guidance_end</c>).
/// </summary>
public sealed record ControlImage
{
    /// <summary>
    /// The condition (edges, depth, pose, ...), resized to the generated size with Pillow's Lanczos filter and fed as
    /// RGB in [0, 1], as diffusers' control image processor. Load untrusted files with
    /// <see cref="Imaging.ImageInput.Load(string, Imaging.ImageLoadLimits?)"/>.
    /// </summary>
    public required Image<Rgb24> Image { get; init; }

    /// <summary>
    /// The name given to <see cref="SdxlPipelineBuilder.AddControlNet(string, string?)"/> (by default its folder's
    /// name); <see langword="null"/> uses the ControlNet added at this image's position in
    /// <see cref="GenerationRequest.ControlImages"/>.
    /// </summary>
    public string? ControlNet { get; init; }

    /// <summary>
    /// The factor the net's residuals are multiplied by before the UNet adds them; <see langword="null"/> uses
    /// diffusers' default: 1.0 for text-to-image, 0.8 for image-to-image.
    /// </summary>
    public double? Scale { get; init; }

    /// <summary>The fraction of the steps after which the net starts to apply (diffusers' <c>control_guidance_start</c>, default 0).</summary>
    public double GuidanceStart { get; init; }

    /// <summary>The fraction of the steps after which it stops applying (diffusers' <c>control_guidance_end</c>, default 1).</summary>
    public double GuidanceEnd { get; init; } = 1.0;
}
