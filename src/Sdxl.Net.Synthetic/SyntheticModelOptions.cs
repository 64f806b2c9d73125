namespace Sdxl.Net.Synthetic;

/// <summary>
/// Describes a random-weight SDXL-shaped model folder: which signature variant each ONNX model has and how large the
/// networks are. The defaults give a tiny optimum-style (current) SDXL base folder of well under 3 MB.
/// </summary>
public sealed record SyntheticModelOptions
{
    /// <summary>
    /// A UNet of about 50 million parameters (three levels, 160/320/640 channels, 32-latent sample size) for
    /// 256 × 256 benchmarks; text encoders and VAE stay small.
    /// </summary>
    public static SyntheticModelOptions Small { get; } = new()
    {
        TextHidden1 = 128,
        TextHidden2 = 256,
        ProjectionDim = 256,
        TextLayers = 4,
        UnetChannels = 160,
        UnetDownLevels = 3,
        SampleSize = 32,
    };

    /// <summary>
    /// Writes a refiner folder: no <c>text_encoder</c> or <c>tokenizer</c>, a UNet conditioned on text_encoder_2 alone
    /// with five <c>time_ids</c> (aesthetic score instead of target size), and a StableDiffusionXLImg2ImgPipeline
    /// <c>model_index.json</c> with <c>requires_aesthetics_score</c> true and <c>force_zeros_for_empty_prompt</c> false.
    /// </summary>
    public bool Refiner { get; init; }

    /// <summary>
    /// Makes every float graph input and output float16 (token ids stay integers). The arithmetic inside stays float32,
    /// wrapped in Cast nodes at the boundaries.
    /// </summary>
    public bool Float16 { get; init; }

    /// <summary>The signature of the UNet <c>timestep</c> input.</summary>
    public TimestepInput Timestep { get; init; } = TimestepInput.FloatScalar;

    /// <summary>Gives <c>text_encoder</c> int32 <c>input_ids</c> (Olive, OnnxStack) instead of int64.</summary>
    public bool TextEncoderInt32Ids { get; init; }

    /// <summary>What the VAE encoder returns.</summary>
    public VaeEncoderOutput VaeEncoder { get; init; } = VaeEncoderOutput.LatentParameters;

    /// <summary>Whether to write <c>vae_encoder/</c> at all (text-to-image-only exports lack it).</summary>
    public bool IncludeVaeEncoder { get; init; } = true;

    /// <summary>
    /// The UNet's <c>sample</c> channels: 4, or 9 for an inpainting UNet (latents, mask and masked-image latents
    /// concatenated), whose <c>model_index.json</c> names StableDiffusionXLInpaintPipeline.
    /// </summary>
    public int UnetInChannels { get; init; } = 4;

    /// <summary>Fixes the token axis of the UNet's <c>encoder_hidden_states</c> (as static-shape exports do); <see langword="null"/>: dynamic.</summary>
    public int? UnetSequenceLength { get; init; }

    /// <summary>
    /// Stores the UNet weights in <c>unet/model.onnx_data</c> as ONNX external data, as real exports over 2 GB do.
    /// </summary>
    public bool UnetExternalData { get; init; }

    /// <summary>
    /// Gives the UNet and text encoders the node and initializer names a torch/optimum export of diffusers'
    /// UNet2DConditionModel and transformers' CLIP carries: weight-consuming nodes named by module path
    /// (<c>/down_blocks.1/attentions.0/transformer_blocks.0/attn2/to_q/MatMul</c>,
    /// <c>/text_model/encoder/layers.0/self_attn/out_proj/MatMul</c>), MatMul weights renamed <c>onnx::MatMul_N</c>,
    /// 2-D linears as Gemm with transB, convolutions keeping <c>{module}.weight</c>. The outputs are unchanged.
    /// </summary>
    public bool DiffusersModuleNames { get; init; }

    /// <summary>The hidden width of <c>text_encoder</c> (768 in SDXL).</summary>
    public int TextHidden1 { get; init; } = 32;

    /// <summary>The hidden width of <c>text_encoder_2</c> (1280 in SDXL).</summary>
    public int TextHidden2 { get; init; } = 64;

    /// <summary>The width of <c>text_encoder_2</c>'s projected <c>text_embeds</c> (1280 in SDXL).</summary>
    public int ProjectionDim { get; init; } = 48;

    /// <summary>
    /// The number of layers of each text encoder; the encoders return <c>hidden_states.0</c> (the embeddings) through
    /// <c>hidden_states.{TextLayers}</c>.
    /// </summary>
    public int TextLayers { get; init; } = 3;

    /// <summary>The channel width of the UNet's first level; deeper levels double it, up to four times.</summary>
    public int UnetChannels { get; init; } = 32;

    /// <summary>
    /// The number of UNet levels (the length of <c>block_out_channels</c>). Latent sizes must be multiples of
    /// 2^(levels − 1), so image sizes must be multiples of 8 × 2^(levels − 1).
    /// </summary>
    public int UnetDownLevels { get; init; } = 2;

    /// <summary>
    /// The UNet config's <c>sample_size</c>: the default latent size a pipeline uses when no size is given (8 means
    /// 64 × 64 images; SDXL has 128). Must be a multiple of 2^(<see cref="UnetDownLevels"/> − 1).
    /// </summary>
    public int SampleSize { get; init; } = 8;

    /// <summary>
    /// The number of token ids the text encoders accept (49408 for CLIP), so a real CLIP vocabulary can replace the
    /// small one written with the folder. It must be at least the size of that small vocabulary
    /// (<see cref="SyntheticSdxlModel.MinimumVocabSize"/>).
    /// </summary>
    public int VocabSize { get; init; } = 49408;

    /// <summary>Whether and where the folder has a ControlNet-enabled UNet (see <see cref="SyntheticSdxlModel.WriteControlNet"/>).</summary>
    public ControlNetUNetLayout ControlNetUNet { get; init; } = ControlNetUNetLayout.None;

    /// <summary>
    /// Makes the UNet guidance-distilled like LCM-SDXL: it takes <c>timestep_cond</c> [B, dim] and adds a bias-free
    /// projection of it to the sinusoidal time projection before <c>time_embedding.linear_1</c> (diffusers'
    /// <c>cond_proj</c>); <c>unet/config.json</c> gets <c>time_cond_proj_dim</c>. <see langword="null"/>: a plain UNet.
    /// </summary>
    public int? TimeCondProjDim { get; init; }

    /// <summary>The seed of the random weights: equal options write byte-identical folders.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>The width of each UNet level, as written to <c>block_out_channels</c>.</summary>
    internal int[] UnetBlockChannels()
    {
        var channels = new int[UnetDownLevels];
        for (var level = 0; level < channels.Length; level++)
        {
            channels[level] = UnetChannels * Math.Min(1 << level, 4);
        }

        return channels;
    }

    /// <summary>The number of <c>time_ids</c> values the UNet takes: 5 for the refiner, 6 otherwise.</summary>
    internal int TimeIdsWidth => Refiner ? 5 : 6;

    /// <summary>The width of <c>encoder_hidden_states</c>: both encoders concatenated, or text_encoder_2 alone.</summary>
    internal int CrossAttentionDim => Refiner ? TextHidden2 : TextHidden1 + TextHidden2;

    /// <summary>Throws when the options cannot describe a model.</summary>
    internal void Validate()
    {
        RequireAtLeast(TextHidden1, 1, nameof(TextHidden1));
        RequireAtLeast(TextHidden2, 1, nameof(TextHidden2));
        RequireAtLeast(ProjectionDim, 1, nameof(ProjectionDim));
        RequireAtLeast(TextLayers, 1, nameof(TextLayers));
        RequireAtLeast(UnetInChannels, 1, nameof(UnetInChannels));
        RequireAtLeast(UnetChannels, UnetGraph.NormGroups, nameof(UnetChannels));
        if (UnetChannels % UnetGraph.NormGroups != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(UnetChannels), UnetChannels,
                $"UnetChannels must be a multiple of {UnetGraph.NormGroups} (the group-norm group count).");
        }

        if (UnetDownLevels is < 1 or > 5)
        {
            throw new ArgumentOutOfRangeException(nameof(UnetDownLevels), UnetDownLevels, "UnetDownLevels must be between 1 and 5.");
        }

        var latentMultiple = 1 << (UnetDownLevels - 1);
        if (SampleSize < latentMultiple || SampleSize % latentMultiple != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(SampleSize), SampleSize,
                $"SampleSize must be a positive multiple of {latentMultiple} (2^(UnetDownLevels - 1)).");
        }

        if (VocabSize < SyntheticSdxlModel.MinimumVocabSize)
        {
            throw new ArgumentOutOfRangeException(nameof(VocabSize), VocabSize,
                $"VocabSize must be at least {SyntheticSdxlModel.MinimumVocabSize}, the size of the vocabulary written with the model.");
        }

        if (TimeCondProjDim is { } condDim)
        {
            RequireAtLeast(condDim, 1, nameof(TimeCondProjDim));
        }

        if (!Enum.IsDefined(Timestep))
        {
            throw new ArgumentOutOfRangeException(nameof(Timestep), Timestep, "Unknown timestep signature.");
        }

        if (!Enum.IsDefined(ControlNetUNet))
        {
            throw new ArgumentOutOfRangeException(nameof(ControlNetUNet), ControlNetUNet, "Unknown ControlNet UNet layout.");
        }

        if (!Enum.IsDefined(VaeEncoder))
        {
            throw new ArgumentOutOfRangeException(nameof(VaeEncoder), VaeEncoder, "Unknown VAE encoder output.");
        }
    }

    private static void RequireAtLeast(int value, int minimum, string name)
    {
        if (value < minimum)
        {
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be at least {minimum}.");
        }
    }
}

/// <summary>Where a synthetic model folder's ControlNet-enabled UNet is.</summary>
public enum ControlNetUNetLayout
{
    /// <summary>No ControlNet-enabled UNet: a plain <c>unet/</c>.</summary>
    None,

    /// <summary><c>unet/model.onnx</c> itself takes the residual inputs.</summary>
    UNetTakesResiduals,

    /// <summary>OnnxStack's layout: a plain <c>unet/</c> and the same UNet with residual inputs at <c>controlnet/model.onnx</c>.</summary>
    OnnxStackFolder,
}

/// <summary>Describes a random-weight ControlNet folder for a synthetic model of given <see cref="SyntheticModelOptions"/>.</summary>
public sealed record SyntheticControlNetOptions
{
    /// <summary>The seed of its weights: nets with different seeds give different residuals.</summary>
    public int Seed { get; init; } = 11;

    /// <summary>Whether <c>conditioning_scale</c> is float64 [1] (OnnxStack's export) or float32 [1].</summary>
    public bool DoubleScale { get; init; } = true;

    /// <summary>Whether <c>timestep</c> is 1-D [batch] (OnnxStack's export) or a scalar.</summary>
    public bool VectorTimestep { get; init; } = true;

    /// <summary>Whether to write a diffusers <c>config.json</c> (without it, loaders must learn the residual shapes otherwise).</summary>
    public bool WriteConfig { get; init; } = true;
}
