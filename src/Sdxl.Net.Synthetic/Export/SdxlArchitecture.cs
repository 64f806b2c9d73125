namespace Sdxl.Net.Synthetic.Export;

/// <summary>The shape of one CLIP text encoder (transformers' <c>CLIPTextConfig</c>).</summary>
/// <param name="Hidden">hidden_size (768 for CLIP ViT-L, 1280 for OpenCLIP bigG).</param>
/// <param name="Layers">num_hidden_layers (12, 32).</param>
/// <param name="Heads">num_attention_heads (12, 20).</param>
/// <param name="Intermediate">intermediate_size (3072, 5120).</param>
/// <param name="QuickGelu">hidden_act: quick_gelu (ViT-L) or gelu (bigG).</param>
/// <param name="Projection">projection_dim of CLIPTextModelWithProjection, or <see langword="null"/> for CLIPTextModel.</param>
public sealed record ClipTextArchitecture(int Hidden, int Layers, int Heads, int Intermediate, bool QuickGelu, int? Projection);

/// <summary>
/// The real SDXL component structure (diffusers' UNet2DConditionModel and AutoencoderKL, transformers' CLIP text
/// models) with every size a parameter: <see cref="Base"/> and <see cref="Refiner"/> are stabilityai's SDXL 1.0
/// configurations; <see cref="Miniature"/> keeps the structure at a size tests can run.
/// </summary>
public sealed record SdxlArchitecture
{
    /// <summary>CLIP ViT-L/14's text encoder.</summary>
    public static ClipTextArchitecture ClipL { get; } = new(768, 12, 12, 3072, QuickGelu: true, Projection: null);

    /// <summary>OpenCLIP ViT-bigG/14's text encoder with its projection.</summary>
    public static ClipTextArchitecture ClipBigG { get; } = new(1280, 32, 20, 5120, QuickGelu: false, Projection: 1280);

    /// <summary>stabilityai/stable-diffusion-xl-base-1.0.</summary>
    public static SdxlArchitecture Base { get; } = new()
    {
        TextEncoder = ClipL,
        TextEncoder2 = ClipBigG,
        UnetBlockChannels = [320, 640, 1280],
        UnetTransformerDepth = [0, 2, 10],
        UnetMidTransformerDepth = 10,
    };

    /// <summary>stabilityai/stable-diffusion-xl-refiner-1.0.</summary>
    public static SdxlArchitecture Refiner { get; } = new()
    {
        TextEncoder = null,
        TextEncoder2 = ClipBigG,
        UnetBlockChannels = [384, 768, 1536, 1536],
        UnetTransformerDepth = [0, 4, 4, 0],
        UnetMidTransformerDepth = 4,
    };

    /// <summary>The base structure (two resnets per level, transformer stacks, multi-head attention) at test size.</summary>
    public static SdxlArchitecture Miniature { get; } = new()
    {
        TextEncoder = new ClipTextArchitecture(32, 2, 2, 64, QuickGelu: true, Projection: null),
        TextEncoder2 = new ClipTextArchitecture(64, 2, 4, 128, QuickGelu: false, Projection: 64),
        UnetBlockChannels = [32, 64, 128],
        UnetTransformerDepth = [0, 1, 2],
        UnetMidTransformerDepth = 2,
        UnetHeadDim = 16,
        NormGroups = 8,
        AdditionTimeEmbedDim = 16,
        VaeBlockChannels = [16, 32, 32, 32],
        SampleSize = 16,
    };

    /// <summary>The first text encoder (CLIP ViT-L), or <see langword="null"/> for a refiner.</summary>
    public ClipTextArchitecture? TextEncoder { get; init; }

    /// <summary>The second text encoder (OpenCLIP bigG with projection).</summary>
    public required ClipTextArchitecture TextEncoder2 { get; init; }

    /// <summary>block_out_channels of the UNet.</summary>
    public required int[] UnetBlockChannels { get; init; }

    /// <summary>transformer_layers_per_block per level; 0 means a level without attention (DownBlock2D/UpBlock2D).</summary>
    public required int[] UnetTransformerDepth { get; init; }

    /// <summary>The transformer depth of the middle block.</summary>
    public required int UnetMidTransformerDepth { get; init; }

    /// <summary>layers_per_block (2 in SDXL; the up blocks have one more).</summary>
    public int UnetLayersPerBlock { get; init; } = 2;

    /// <summary>The width of each attention head (64 in SDXL).</summary>
    public int UnetHeadDim { get; init; } = 64;

    /// <summary>norm_num_groups of UNet and VAE (32).</summary>
    public int NormGroups { get; init; } = 32;

    /// <summary>addition_time_embed_dim: the sinusoidal width of each time_ids value (256).</summary>
    public int AdditionTimeEmbedDim { get; init; } = 256;

    /// <summary>block_out_channels of the VAE.</summary>
    public int[] VaeBlockChannels { get; init; } = [128, 256, 512, 512];

    /// <summary>layers_per_block of the VAE (the decoder's up blocks have one more).</summary>
    public int VaeLayersPerBlock { get; init; } = 2;

    /// <summary>The UNet's sample_size: the default latent size (128 → 1024 × 1024 images).</summary>
    public int SampleSize { get; init; } = 128;

    /// <summary>Whether this is a refiner (no first text encoder; aesthetic-score micro-conditioning).</summary>
    public bool IsRefiner => TextEncoder is null;

    /// <summary>The width of encoder_hidden_states: both encoders' hidden states, or bigG's alone.</summary>
    public int CrossAttentionDim => (TextEncoder?.Hidden ?? 0) + TextEncoder2.Hidden;

    /// <summary>The number of time_ids: 6 (sizes and crop), 5 for the refiner (aesthetic score).</summary>
    public int TimeIdsWidth => IsRefiner ? 5 : 6;

    /// <summary>The width of the pooled text embedding.</summary>
    public int PooledDim => TextEncoder2.Projection ?? TextEncoder2.Hidden;

    /// <summary>The UNet's time embedding width (4 × the first level).</summary>
    public int TimeEmbedDim => 4 * UnetBlockChannels[0];

    /// <summary>Throws when the sizes cannot describe a model.</summary>
    internal void Validate()
    {
        if (UnetBlockChannels.Length is < 1 or > 5 || UnetTransformerDepth.Length != UnetBlockChannels.Length)
        {
            throw new ArgumentException("UnetBlockChannels needs 1 to 5 levels and UnetTransformerDepth one entry per level.");
        }

        foreach (var c in UnetBlockChannels)
        {
            if (c <= 0 || c % NormGroups != 0 || c % UnetHeadDim != 0)
            {
                throw new ArgumentException($"UNet channel width {c} must be a positive multiple of NormGroups ({NormGroups}) and UnetHeadDim ({UnetHeadDim}).");
            }
        }

        foreach (var c in VaeBlockChannels)
        {
            if (c <= 0 || c % NormGroups != 0)
            {
                throw new ArgumentException($"VAE channel width {c} must be a positive multiple of NormGroups ({NormGroups}).");
            }
        }

        foreach (var t in new[] { TextEncoder, TextEncoder2 })
        {
            if (t is not null && (t.Hidden % t.Heads != 0 || t.Layers < 1))
            {
                throw new ArgumentException($"A text encoder's hidden size {t.Hidden} must be a multiple of its {t.Heads} heads, with at least one layer.");
            }
        }
    }
}
