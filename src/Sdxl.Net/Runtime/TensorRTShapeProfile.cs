using System.Globalization;

namespace Sdxl.Net.Runtime;

/// <summary>
/// The input shapes a TensorRT engine is built for (ONNX Runtime's <c>trt_profile_min_shapes</c>,
/// <c>trt_profile_opt_shapes</c>, <c>trt_profile_max_shapes</c>). Without a profile TensorRT builds an engine for the
/// first shapes it sees and rebuilds (minutes for an SDXL UNet) whenever a request has another size or batch; with one,
/// every size and batch inside the ranges runs on one engine, fastest at the "opt" shapes.
/// </summary>
/// <remarks>
/// Sizes are image pixels (latents are 1/8) and batches are images per request; the UNet's rows are twice the images
/// under classifier-free guidance, so its range runs from <see cref="MinBatch"/> rows to 2 × <see cref="MaxBatch"/>.
/// The widths of the conditioning inputs are the model's (SDXL base by default; <see cref="SdxlRefiner"/> for the refiner).
/// </remarks>
public sealed record TensorRTShapeProfile
{
    /// <summary>SDXL base: 512–1024 px (opt 1024), 1–2 images per request, prompts of one 77-token chunk.</summary>
    public static TensorRTShapeProfile SdxlBase { get; } = new();

    /// <summary>SDXL refiner: cross-attention 1280, five time_ids.</summary>
    public static TensorRTShapeProfile SdxlRefiner { get; } = new() { CrossAttentionDim = 1280, TimeIdsWidth = 5 };

    /// <summary>The smallest image side, in pixels.</summary>
    public int MinImageSize { get; init; } = 512;

    /// <summary>The image side the engine is tuned for.</summary>
    public int OptImageSize { get; init; } = 1024;

    /// <summary>The largest image side.</summary>
    public int MaxImageSize { get; init; } = 1024;

    /// <summary>The fewest images per request.</summary>
    public int MinBatch { get; init; } = 1;

    /// <summary>The images per request the engine is tuned for.</summary>
    public int OptBatch { get; init; } = 1;

    /// <summary>The most images per request.</summary>
    public int MaxBatch { get; init; } = 2;

    /// <summary>The most 77-token prompt chunks (long prompts send 77 × k tokens).</summary>
    public int MaxPromptChunks { get; init; } = 1;

    /// <summary>The UNet's <c>encoder_hidden_states</c> width (2048 base, 1280 refiner).</summary>
    public int CrossAttentionDim { get; init; } = 2048;

    /// <summary>The UNet's <c>text_embeds</c> width.</summary>
    public int PooledDim { get; init; } = 1280;

    /// <summary>The UNet's <c>time_ids</c> width (6 base, 5 refiner).</summary>
    public int TimeIdsWidth { get; init; } = 6;

    /// <summary>Throws when the ranges are not ordered or not positive.</summary>
    internal void Validate()
    {
        if (MinImageSize < 8 || MinImageSize > OptImageSize || OptImageSize > MaxImageSize || MaxImageSize > 16384
            || MinImageSize % 8 != 0 || OptImageSize % 8 != 0 || MaxImageSize % 8 != 0)
        {
            throw new ArgumentException($"TensorRT profile: image sizes must be multiples of 8 with 8 <= min <= opt <= max <= 16384; got {MinImageSize}/{OptImageSize}/{MaxImageSize}.");
        }

        if (MinBatch < 1 || MinBatch > OptBatch || OptBatch > MaxBatch || MaxBatch > 64 || MaxPromptChunks is < 1 or > 16)
        {
            throw new ArgumentException($"TensorRT profile: batches must satisfy 1 <= min <= opt <= max <= 64 and prompt chunks 1..16; got {MinBatch}/{OptBatch}/{MaxBatch}, {MaxPromptChunks} chunks.");
        }
    }

    /// <summary>The (min, opt, max) shape strings of one component, or <see langword="null"/> for a component it does not know.</summary>
    internal (string Min, string Opt, string Max)? For(string component)
    {
        Validate();
        string Shapes(int images, int rows, int side, int chunks) => component switch
        {
            "unet" => Join(("sample", [rows, 4, side / 8, side / 8]), ("encoder_hidden_states", [rows, 77 * chunks, CrossAttentionDim]),
                ("text_embeds", [rows, PooledDim]), ("time_ids", [rows, TimeIdsWidth])),
            "text_encoder" or "text_encoder_2" => Join(("input_ids", [images, 77])),
            "vae_decoder" => Join(("latent_sample", [1, 4, side / 8, side / 8])),
            "vae_encoder" => Join(("sample", [1, 3, side, side])),
            _ => string.Empty,
        };

        if (Shapes(1, 1, OptImageSize, 1).Length == 0)
        {
            return null;
        }

        // The UNet runs MinBatch rows without guidance and 2 × MaxBatch with it.
        return (Shapes(MinBatch, MinBatch, MinImageSize, 1), Shapes(OptBatch, 2 * OptBatch, OptImageSize, 1), Shapes(MaxBatch, 2 * MaxBatch, MaxImageSize, MaxPromptChunks));
    }

    private static string Join(params (string Name, int[] Dims)[] inputs) =>
        string.Join(',', inputs.Select(i => i.Name + ":" + string.Join('x', i.Dims.Select(d => d.ToString(CultureInfo.InvariantCulture)))));
}
