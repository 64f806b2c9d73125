using Sdxl.Net.Denoising;
using Sdxl.Net.Imaging;
using Sdxl.Net.Models;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Sdxl.Net.ControlNet;

/// <summary>
/// Where ControlNet meets the pipeline: loading the nets, checking them against the ControlNet-enabled UNet, checking a
/// request's control images, choosing the UNet of a run and creating the run's residual provider.
/// </summary>
internal static class ControlNetStage
{
    /// <summary>Loads the registered nets (disposing them all if one fails).</summary>
    public static ControlNetModel[] Load(IReadOnlyList<ControlNetRegistration> registrations, Runtime.ExecutionProviderOptions options)
    {
        var nets = new List<ControlNetModel>(registrations.Count);
        try
        {
            foreach (var r in registrations)
            {
                nets.Add(new ControlNetModel(r.Name, r.Directory, options));
            }

            return [.. nets];
        }
        catch
        {
            foreach (var n in nets)
            {
                n.Dispose();
            }

            throw;
        }
    }

    /// <summary>
    /// Fails at build time when the model folder has no UNet that takes the residuals of <paramref name="nets"/>, or
    /// takes another number of them.
    /// </summary>
    public static void CheckModel(SdxlModelFolder model, IReadOnlyList<ControlNetModel> nets)
    {
        if (nets.Count == 0)
        {
            return;
        }

        var unet = model.ControlNetUNet ?? model.UNet;
        var names = ResidualLayout.Names(unet.ExtraInputs.Keys, "unet", unet.ModelPath)
            ?? throw new SdxlModelException(
                $"ControlNet needs a ControlNet-enabled UNet (inputs down_block_{{i}}_additional_residual and mid_block_additional_residual): either unet/model.onnx takes them, or OnnxStack's controlnet/model.onnx sits beside unet/. Neither does in '{model.Directory}'; see docs/controlnet.md.");
        foreach (var net in nets)
        {
            if (net.DownCount != names.Length - 1)
            {
                throw new SdxlModelException($"controlnet '{net.Name}' outputs {net.DownCount} down-block residuals and the UNet '{unet.ModelPath}' takes {names.Length - 1}: they are not for the same base model.");
            }
        }
    }

    /// <summary>Checks a request's control images; the messages name the entry and what is allowed.</summary>
    public static void CheckRequest(GenerationRequest r, IReadOnlyList<ControlNetModel> nets)
    {
        if (r.ControlImages is not { Count: > 0 } images)
        {
            return;
        }

        if (nets.Count == 0)
        {
            throw new ArgumentException("ControlImages need a ControlNet: add one with SdxlPipelineBuilder.AddControlNet(directory).", nameof(r.ControlImages));
        }

        if (r.Mask is not null)
        {
            throw new ArgumentException("ControlImages cannot be combined with inpainting (Mask); ControlNet works with text-to-image and image-to-image.", nameof(r.ControlImages));
        }

        for (int i = 0; i < images.Count; i++)
        {
            var c = images[i] ?? throw new ArgumentException($"ControlImages[{i}] is null.", nameof(r.ControlImages));
            if (c.Image is null)
            {
                throw new ArgumentException($"ControlImages[{i}].Image is null.", nameof(r.ControlImages));
            }

            _ = Resolve(c, i, nets);
            if (c.Scale is { } s && !double.IsFinite(s))
            {
                throw new ArgumentOutOfRangeException(nameof(r.ControlImages), s, $"ControlImages[{i}].Scale must be a finite number.");
            }

            // diffusers' check_inputs: 0 <= start < end <= 1.
            if (!(c.GuidanceStart >= 0) || !(c.GuidanceEnd <= 1) || !(c.GuidanceStart < c.GuidanceEnd))
            {
                throw new ArgumentOutOfRangeException(nameof(r.ControlImages), $"ControlImages[{i}]: GuidanceStart {c.GuidanceStart} and GuidanceEnd {c.GuidanceEnd} must satisfy 0 <= start < end <= 1.");
            }
        }
    }

    /// <summary>The UNet a run of <paramref name="r"/> uses: OnnxStack's ControlNet UNet only when a ControlNet is active.</summary>
    public static UNetModel UNetFor(SdxlModelFolder model, GenerationRequest r) =>
        r.ControlImages is { Count: > 0 } && model.ControlNetUNet is { } controlNetUNet ? controlNetUNet : model.UNet;

    /// <summary>
    /// The residual provider of a base-model run: the request's nets, or zero residuals when the folder's own UNet takes
    /// residuals and no net is active; <see langword="null"/> when the run's UNet takes none.
    /// </summary>
    public static ControlNetInputProvider? CreateProvider(SdxlModelFolder model, IReadOnlyList<ControlNetModel> nets, GenerationRequest r,
        DenoisingConditioning conditioning, int width, int height)
    {
        var unet = UNetFor(model, r);
        var names = ResidualLayout.Names(unet.ExtraInputs.Keys, "unet", unet.ModelPath);
        if (names is null)
        {
            return null;
        }

        var units = new List<ControlUnit>();
        if (r.ControlImages is { } images)
        {
            double defaultScale = DefaultScale(r);
            for (int i = 0; i < images.Count; i++)
            {
                var c = images[i];
                units.Add(new ControlUnit(Resolve(c, i, nets), Preprocess(c.Image, width, height), c.Scale ?? defaultScale, c.GuidanceStart, c.GuidanceEnd));
            }
        }

        ResidualShape[]? zeros = null;
        if (units.Count == 0)
        {
            zeros = ResidualLayout.FromConfig(model.UNetConfig, names.Length - 1)
                ?? throw new SdxlModelException($"unet: the model takes ControlNet residuals and this generation has no ControlNet. Zero residuals (the plain UNet) need the residual shapes from unet/config.json (block_out_channels, layers_per_block), which it does not describe. File: '{unet.ModelPath}'.");
        }

        // diffusers: guess_mode = guess_mode or the (first) net's global_pool_conditions.
        bool guess = r.ControlNetGuessMode || (units.Count > 0 && units[0].Net.GlobalPoolConditions);
        return new ControlNetInputProvider(units, names, unet.ExtraInputs, zeros, conditioning, r.BatchSize, guess, height, width);
    }

    /// <summary>diffusers' default controlnet_conditioning_scale: 1.0 in the text-to-image pipeline, 0.8 in image-to-image.</summary>
    public static double DefaultScale(GenerationRequest r) => r.Image is null ? 1.0 : 0.8;

    /// <summary>The names of the nets that read the request's control images, in order; <see langword="null"/> without any.</summary>
    public static IReadOnlyList<string>? NetNames(GenerationRequest r, IReadOnlyList<ControlNetModel> nets)
    {
        if (r.ControlImages is not { Count: > 0 } images)
        {
            return null;
        }

        var names = new string[images.Count];
        for (int i = 0; i < names.Length; i++)
        {
            names[i] = Resolve(images[i], i, nets).Name;
        }

        return names;
    }

    /// <summary>
    /// diffusers' control image processor (do_convert_rgb, no normalization): Pillow's Lanczos resize to the generated
    /// size, then RGB / 255 in float32, planar [3, H, W].
    /// </summary>
    public static float[] Preprocess(Image<Rgb24> image, int width, int height)
    {
        var rgb = ImageInput.Fit(ImageInput.RgbBytes(image), image.Width, image.Height, 3, width, height, ImageResizeMode.Stretch);
        int plane = width * height;
        var data = new float[3 * plane];
        for (int o = 0; o < plane; o++)
        {
            data[o] = rgb[3 * o] / 255f;
            data[plane + o] = rgb[(3 * o) + 1] / 255f;
            data[(2 * plane) + o] = rgb[(3 * o) + 2] / 255f;
        }

        return data;
    }

    /// <summary>The SHA-256 of an image's RGB pixels (row-major, 8 bits per channel), as recipes record control images.</summary>
    public static string PixelHash(Image<Rgb24> image) =>
        Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(ImageInput.RgbBytes(image)));

    private static ControlNetModel Resolve(ControlImage c, int index, IReadOnlyList<ControlNetModel> nets)
    {
        if (c.ControlNet is { } name)
        {
            foreach (var net in nets)
            {
                if (net.Name == name)
                {
                    return net;
                }
            }

            throw new ArgumentException($"ControlImages[{index}] names ControlNet '{name}'; the pipeline has {string.Join(", ", nets.Select(n => $"'{n.Name}'"))}.", nameof(GenerationRequest.ControlImages));
        }

        return index < nets.Count
            ? nets[index]
            : throw new ArgumentException($"ControlImages[{index}] names no ControlNet and the pipeline has only {nets.Count}: set ControlImage.ControlNet to one of {string.Join(", ", nets.Select(n => $"'{n.Name}'"))}.", nameof(GenerationRequest.ControlImages));
    }
}

/// <summary>A ControlNet added to a pipeline: the name requests use and its folder.</summary>
internal sealed record ControlNetRegistration(string Name, string Directory);
