using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Sdxl.Net.Previews;

/// <summary>How preview images are made from the latents during denoising.</summary>
public enum PreviewKind
{
    /// <summary>
    /// SDXL's linear latent → RGB approximation (one 4 × 3 matrix and a bias per latent pixel; no model, nearly free).
    /// The preview has the latents' size (1/8 of the image).
    /// </summary>
    LatentRgb,

    /// <summary>
    /// The TAESD-XL tiny decoder (<c>madebyollin/taesdxl</c> exported to ONNX) from <see cref="PreviewOptions.TaesdDirectory"/>:
    /// a full-size, blurrier image for a few milliseconds per preview.
    /// </summary>
    Taesd,
}

/// <summary>Preview images during denoising, reported with the step progress (and by the streaming API).</summary>
/// <remarks>Previews are computed only when someone listens (a progress handler or a stream); they never slow a run that has none.</remarks>
public sealed record PreviewOptions
{
    /// <summary>How previews are made (default: the latent → RGB approximation).</summary>
    public PreviewKind Kind { get; init; } = PreviewKind.LatentRgb;

    /// <summary>A preview after every N-th step: steps N, 2N, 3N, ... of each denoising loop (default 1: every step).</summary>
    public int EveryNSteps { get; init; } = 1;

    /// <summary>
    /// The longest side of a preview in pixels (default 512): larger previews are scaled down to it, keeping the aspect
    /// ratio; smaller ones keep their natural size.
    /// </summary>
    public int MaxSize { get; init; } = 512;

    /// <summary>
    /// For <see cref="PreviewKind.Taesd"/>: the folder of the TAESD-XL ONNX decoder, holding <c>vae_decoder/model.onnx</c>
    /// (or <c>model.onnx</c>) with a <c>vae_decoder</c>-like signature (<c>latent_sample</c> → <c>sample</c> in [−1, 1]) and
    /// optionally diffusers' <c>config.json</c> of <c>AutoencoderTiny</c> (its <c>scaling_factor</c>, 1.0 for TAESD).
    /// </summary>
    public string? TaesdDirectory { get; init; }
}

/// <summary>One preview image: 8-bit RGB, row-major, 3 bytes per pixel.</summary>
public sealed class PreviewImage
{
    internal PreviewImage(int index, int step, int width, int height, byte[] rgb)
    {
        Index = index;
        Step = step;
        Width = width;
        Height = height;
        Rgb = rgb;
    }

    /// <summary>The image's index in its batch.</summary>
    public int Index { get; }

    /// <summary>The number of denoising steps finished when the preview was made.</summary>
    public int Step { get; }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>The pixels: Height rows of Width × (R, G, B) bytes.</summary>
    public ReadOnlyMemory<byte> Rgb { get; }

    /// <summary>Converts to an ImageSharp image (e.g. to save it as PNG or JPEG).</summary>
    public Image<Rgb24> ToImage() => Image.LoadPixelData<Rgb24>(Rgb.Span, Width, Height);
}
