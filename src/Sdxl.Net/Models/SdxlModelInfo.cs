using Microsoft.ML.OnnxRuntime.Tensors;
using Sdxl.Net.Runtime;

namespace Sdxl.Net.Models;

/// <summary>What Sdxl.Net recognised in a model folder: components, ONNX signatures and format variant.</summary>
public sealed class SdxlModelInfo
{
    private SdxlModelInfo()
    {
    }

    /// <summary>The folder.</summary>
    public required string Directory { get; init; }

    /// <summary>Whether it is a refiner (no CLIP ViT-L encoder, aesthetic-score conditioning).</summary>
    public required bool IsRefiner { get; init; }

    /// <summary>Width and height must be multiples of this.</summary>
    public required int PixelMultiple { get; init; }

    /// <summary>The default image side.</summary>
    public required int DefaultImageSize { get; init; }

    /// <summary>Micro-conditioning values per row (6 base, 5 refiner).</summary>
    public required int TimeIdsWidth { get; init; }

    /// <summary>UNet input channels (4, or 9 for inpainting).</summary>
    public required int UNetInChannels { get; init; }

    /// <summary>The scheduler class of scheduler_config.json.</summary>
    public required string? SchedulerClass { get; init; }

    /// <summary>The VAE scaling factor.</summary>
    public required float VaeScalingFactor { get; init; }

    /// <summary>model_index.json force_zeros_for_empty_prompt.</summary>
    public required bool ForceZerosForEmptyPrompt { get; init; }

    /// <summary>
    /// The width of the UNet's guidance embedding (<c>timestep_cond</c>, <c>time_cond_proj_dim</c>) when it is a
    /// guidance-distilled LCM UNet, which runs without classifier-free guidance; otherwise <see langword="null"/>.
    /// </summary>
    public int? GuidanceEmbeddingDim { get; init; }

    /// <summary>Each component's ONNX signature, by folder name.</summary>
    public required IReadOnlyDictionary<string, string> Signatures { get; init; }

    /// <summary>A description of the export format variant (timestep form, float type, VAE encoder output).</summary>
    public required string Variant { get; init; }

    /// <summary>Opens the folder (creating CPU sessions, as a pipeline would) and describes it.</summary>
    /// <exception cref="SdxlModelException">The folder is not a usable SDXL model.</exception>
    public static SdxlModelInfo Inspect(string directory)
    {
        using var folder = SdxlModelFolder.Open(directory, ExecutionProviderOptions.Cpu);
        var signatures = new Dictionary<string, string>(StringComparer.Ordinal);
        if (folder.TextEncoder is { } te1)
        {
            signatures["text_encoder"] = te1.Signature;
        }

        signatures["text_encoder_2"] = folder.TextEncoder2.Signature;
        signatures["unet"] = folder.UNet.Signature;
        signatures["vae_decoder"] = folder.VaeDecoder.Signature;
        if (folder.VaeEncoder is { } enc)
        {
            signatures["vae_encoder"] = enc.Signature;
        }

        var ts = folder.UNet.TimestepSpec;
        var timestep = ts.Rank == 0 ? $"{TensorSpec.TypeName(ts.ElementType)} scalar timestep (optimum ≥ 1.24)"
            : ts.ElementType is TensorElementType.Int64 or TensorElementType.Int32 ? $"{TensorSpec.TypeName(ts.ElementType)}[1] timestep (optimum < 1.23 / 2023 exports)"
            : $"{TensorSpec.TypeName(ts.ElementType)}[1] timestep (Olive)";
        var vae = folder.VaeEncoder is null ? "no vae_encoder" : folder.VaeEncoder.OutputsParameters ? "vae_encoder → latent_parameters (optimum ≥ 1.23)" : "vae_encoder → latent_sample (older optimum / Olive)";
        var variant = $"{(folder.IsRefiner ? "refiner" : "base")}; UNet I/O {TensorSpec.TypeName(folder.UNet.FloatType)}; {timestep}; {vae}";
        if (folder.GuidanceEmbeddingDim is { } condDim)
        {
            variant += $"; LCM UNet (guidance embedding timestep_cond [B, {condDim}], no CFG)";
        }

        return new SdxlModelInfo
        {
            Directory = folder.Directory,
            IsRefiner = folder.IsRefiner,
            PixelMultiple = folder.PixelMultiple,
            DefaultImageSize = folder.DefaultImageSize,
            TimeIdsWidth = folder.TimeIdsWidth,
            UNetInChannels = folder.UNetInChannels,
            SchedulerClass = folder.SchedulerConfig.ClassName,
            VaeScalingFactor = folder.VaeScalingFactor,
            ForceZerosForEmptyPrompt = folder.ForceZerosForEmptyPrompt,
            Signatures = signatures,
            Variant = variant,
            GuidanceEmbeddingDim = folder.GuidanceEmbeddingDim,
        };
    }
}
