using Sdxl.Net.Runtime;
using Sdxl.Net.Schedulers;
using Sdxl.Net.Text;

namespace Sdxl.Net.Models;

/// <summary>
/// An SDXL model folder in the Hugging Face / optimum layout (<c>model_index.json</c>, <c>tokenizer/</c>,
/// <c>tokenizer_2/</c>, <c>text_encoder/</c>, <c>text_encoder_2/</c>, <c>unet/</c>, <c>vae_decoder/</c>, optional
/// <c>vae_encoder/</c>, <c>scheduler/</c>), opened with every session created and every signature checked.
/// A refiner folder has no <c>tokenizer/</c> and <c>text_encoder/</c>.
/// </summary>
internal sealed class SdxlModelFolder : IDisposable
{
    private readonly List<IDisposable> _owned = [];
    private SessionResidency? _residency;
    private Func<string, SessionCustomization?> _customize = _ => null;
    private bool _isView;

    private SdxlModelFolder(string directory) => Directory = directory;

    public string Directory { get; }

    public ClipTokenizer? Tokenizer { get; private set; }

    public ClipTokenizer Tokenizer2 { get; private set; } = null!;

    public TextEncoderModel? TextEncoder { get; private set; }

    public TextEncoderModel TextEncoder2 { get; private set; } = null!;

    public UNetModel UNet { get; private set; } = null!;

    /// <summary>
    /// OnnxStack's ControlNet-enabled UNet (<c>controlnet/model.onnx</c> beside a plain <c>unet/</c>), once
    /// <see cref="LoadControlNetUNet"/> found one; <see langword="null"/> otherwise.
    /// </summary>
    public UNetModel? ControlNetUNet { get; private set; }

    /// <summary>unet/config.json (empty when absent).</summary>
    public JsonConfig UNetConfig { get; private set; } = JsonConfig.Empty;

    public VaeDecoderModel VaeDecoder { get; private set; } = null!;

    public VaeEncoderModel? VaeEncoder { get; private set; }

    public SchedulerConfig SchedulerConfig { get; private set; } = SchedulerConfig.SdxlBase;

    /// <summary>The textual-inversion embeddings whose rows the text encoder sessions were opened with, or <see langword="null"/>.</summary>
    public TextualInversions? Embeddings { get; private set; }

    /// <summary>model_index.json <c>force_zeros_for_empty_prompt</c> (diffusers default true).</summary>
    public bool ForceZerosForEmptyPrompt { get; private set; } = true;

    /// <summary>model_index.json <c>requires_aesthetics_score</c> (true for the SDXL refiner).</summary>
    public bool RequiresAestheticsScore { get; private set; }

    /// <summary>Whether this is a refiner-style folder (bigG text encoder only).</summary>
    public bool IsRefiner => TextEncoder is null;

    /// <summary>The VAE's <c>scaling_factor</c> (0.13025 for SDXL).</summary>
    public float VaeScalingFactor { get; private set; } = 0.13025f;

    /// <summary>The latent ⇄ VAE mapping (scaling factor, optional per-channel mean and std).</summary>
    public VaeLatentScaling VaeLatents { get; private set; } = new(0.13025f, null, null);

    /// <summary>VAE config <c>force_upcast</c>.</summary>
    public bool VaeForceUpcast { get; private set; } = true;

    /// <summary>Pixels per latent cell (2^(VAE levels − 1), 8 for SDXL).</summary>
    public int VaeScaleFactor { get; private set; } = 8;

    /// <summary>The VAE's first block_out_channels entry: the width of its full-resolution feature maps (128 in SDXL).</summary>
    public int VaeFirstChannels { get; private set; } = 128;

    /// <summary>Width and height must be multiples of this: VAE factor × 2^(UNet down levels − 1).</summary>
    public int PixelMultiple { get; private set; } = 32;

    /// <summary>The default image side: UNet <c>sample_size</c> × VAE factor (1024 for SDXL).</summary>
    public int DefaultImageSize { get; private set; } = 1024;

    /// <summary>The number of micro-conditioning values the UNet takes: 6 (sizes and crop) or 5 (refiner: with aesthetic score).</summary>
    public int TimeIdsWidth { get; private set; } = 6;

    /// <summary>Latent channels (4).</summary>
    public int LatentChannels { get; private set; } = 4;

    /// <summary>The UNet's input channels (4, or 9 for inpainting UNets).</summary>
    public int UNetInChannels { get; private set; } = 4;

    /// <summary>
    /// The width of the UNet's guidance embedding input <c>timestep_cond</c> (<c>time_cond_proj_dim</c>) when it is
    /// guidance-distilled (LCM-SDXL); <see langword="null"/> for a UNet that uses classifier-free guidance.
    /// </summary>
    public int? GuidanceEmbeddingDim { get; private set; }

    /// <summary>The components whose sessions are open now, in folder order (all of them unless per-phase loading).</summary>
    public IReadOnlyList<string> LoadedComponents
    {
        get
        {
            var loaded = new List<string>();
            if (TextEncoder?.IsLoaded == true)
            {
                loaded.Add("text_encoder");
            }

            if (TextEncoder2.IsLoaded)
            {
                loaded.Add("text_encoder_2");
            }

            if (UNet.IsLoaded)
            {
                loaded.Add("unet");
            }

            if (VaeDecoder.IsLoaded)
            {
                loaded.Add("vae_decoder");
            }

            if (VaeEncoder?.IsLoaded == true)
            {
                loaded.Add("vae_encoder");
            }

            return loaded;
        }
    }

    /// <summary>Opens the folder: configs validated, tokenizers read, every session created and checked.</summary>
    /// <param name="directory">The folder.</param>
    /// <param name="options">The execution provider.</param>
    /// <param name="loadVaeEncoder">Whether to open <c>vae_encoder/</c> when present.</param>
    /// <param name="customize">The weights overlay of a component (by folder name), or <see langword="null"/>.</param>
    /// <param name="cancellationToken">Checked between components (one session's creation is not interruptible).</param>
    public static SdxlModelFolder Open(string directory, ExecutionProviderOptions options, bool loadVaeEncoder = true, Func<string, SessionCustomization?>? customize = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (!System.IO.Directory.Exists(directory))
        {
            throw new SdxlModelException($"Model folder not found: '{directory}'. Expected an SDXL ONNX folder as written by `optimum-cli export onnx --task stable-diffusion-xl`.");
        }

        var folder = new SdxlModelFolder(Path.GetFullPath(directory));
        try
        {
            folder.Load(options, loadVaeEncoder, customize ?? (_ => null), cancellationToken);
            return folder;
        }
        catch
        {
            folder.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Records the embeddings this folder's text encoders were opened with (their customization) and takes ownership:
    /// they are disposed after every session, whose initializer memory they are.
    /// </summary>
    public void AttachEmbeddings(TextualInversions? embeddings)
    {
        if (embeddings is not null)
        {
            Embeddings = embeddings;
            _owned.Insert(0, embeddings);
        }
    }

    /// <summary>
    /// Opens OnnxStack's ControlNet-enabled UNet, <c>controlnet/model.onnx</c>, when the folder has one (a pipeline with
    /// ControlNets calls this; other pipelines never load it). It shares the UNet's residency, not its weights overlay:
    /// an overlay maps initializers of <c>unet/model.onnx</c>, whose generated names (<c>onnx::MatMul_N</c>) need not
    /// denote the same tensors in another export, so LoRA adapters are refused with such a UNet (see SdxlPipeline).
    /// </summary>
    public void LoadControlNetUNet(ExecutionProviderOptions options)
    {
        if (ControlNetUNet is null && File.Exists(Sub("controlnet", "model.onnx")))
        {
            ControlNetUNet = Own(new UNetModel(Sub("controlnet", "model.onnx"), options, _residency));
        }
    }

    public void Dispose()
    {
        if (_isView)
        {
            return;
        }

        for (int i = _owned.Count - 1; i >= 0; i--)
        {
            _owned[i].Dispose();
        }

        _owned.Clear();
    }

    private string Sub(params string[] parts) => Path.Combine([Directory, .. parts]);

    private T Own<T>(T item) where T : IDisposable
    {
        _owned.Add(item);
        return item;
    }

    /// <summary>
    /// This folder with other sessions of its text encoders and UNet (e.g. with a weights overlay); the view shares
    /// everything else and disposes nothing.
    /// </summary>
    public SdxlModelFolder WithComponents(TextEncoderModel? textEncoder, TextEncoderModel? textEncoder2, UNetModel? unet)
    {
        var view = (SdxlModelFolder)MemberwiseClone();
        view._isView = true;
        view.TextEncoder = textEncoder ?? TextEncoder;
        view.TextEncoder2 = textEncoder2 ?? TextEncoder2;
        view.UNet = unet ?? UNet;
        return view;
    }

    private void Load(ExecutionProviderOptions options, bool loadVaeEncoder, Func<string, SessionCustomization?> customize, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var index = JsonConfig.Load(Sub("model_index.json"), "model_index.json", required: true);
        ForceZerosForEmptyPrompt = index.GetBoolean("force_zeros_for_empty_prompt", true);
        RequiresAestheticsScore = index.GetBoolean("requires_aesthetics_score", false);

        var schedulerPath = Sub("scheduler", "scheduler_config.json");
        if (File.Exists(schedulerPath))
        {
            try
            {
                SchedulerConfig = SchedulerConfig.Load(schedulerPath);
            }
            catch (FormatException e)
            {
                throw new SdxlModelException($"scheduler: {e.Message}", e);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new SdxlModelException($"scheduler: cannot read '{schedulerPath}': {FileAccessCheck.Reason(e)}.", e);
            }

            ModelConfigValidation.CheckScheduler(SchedulerConfig, schedulerPath);
        }

        var vaeConfigPath = File.Exists(Sub("vae_decoder", "config.json")) ? Sub("vae_decoder", "config.json") : Sub("vae", "config.json");
        var vae = JsonConfig.Load(vaeConfigPath, "vae_decoder", required: false);
        VaeScaleFactor = ModelConfigValidation.CheckVae(vae, LatentChannels);
        VaeScalingFactor = (float)vae.GetDouble("scaling_factor", 0.13025);
        VaeLatents = new VaeLatentScaling(VaeScalingFactor, ToSingle(vae.GetDoubleArray("latents_mean")), ToSingle(vae.GetDoubleArray("latents_std")));
        VaeForceUpcast = vae.GetBoolean("force_upcast", true);
        if (vae.GetInt32Array("block_out_channels") is { Length: > 0 } vaeBlocks)
        {
            VaeFirstChannels = vaeBlocks[0];
        }

        var unetConfig = JsonConfig.Load(Sub("unet", "config.json"), "unet", required: false);
        UNetConfig = unetConfig;
        int downLevels = ModelConfigValidation.CheckUNet(unetConfig);
        long pixelMultiple = (long)VaeScaleFactor << (downLevels - 1);
        int sampleSize = unetConfig.GetInt32("sample_size", 128);
        ModelConfigValidation.CheckSizes(unetConfig, vae, pixelMultiple, sampleSize, VaeScaleFactor);
        PixelMultiple = (int)pixelMultiple;
        DefaultImageSize = sampleSize * VaeScaleFactor;

        // Refuse, before any session exists, a folder whose sessions cannot fit in memory.
        var components = new List<string> { "text_encoder", "text_encoder_2", "unet", "vae_decoder" };
        if (loadVaeEncoder)
        {
            components.Add("vae_encoder");
        }

        MemoryGuard.CheckLoad(Directory, components, options);

        // Per-phase loading: every session is still opened here, its signature read and checked, then closed.
        var residency = options.MemoryMode == MemoryMode.LoadPerPhase ? new SessionResidency() : null;
        _residency = residency;
        _customize = customize;

        // A base folder names text_encoder in model_index.json and has tokenizer/; either one means the first encoder
        // is required, so its absence is reported as a missing file rather than as a base/refiner width mismatch.
        bool hasTextEncoder1 = System.IO.Directory.Exists(Sub("text_encoder")) || System.IO.Directory.Exists(Sub("tokenizer")) || index.HasComponent("text_encoder");
        if (hasTextEncoder1)
        {
            Tokenizer = LoadTokenizer("tokenizer");
            ct.ThrowIfCancellationRequested();
            TextEncoder = Own(new TextEncoderModel("text_encoder", ModelFile("text_encoder"), options, requirePooled: false, residency, customize("text_encoder")));
        }

        ct.ThrowIfCancellationRequested();
        Tokenizer2 = LoadTokenizer("tokenizer_2");
        TextEncoder2 = Own(new TextEncoderModel("text_encoder_2", ModelFile("text_encoder_2"), options, requirePooled: true, residency, customize("text_encoder_2")));
        ct.ThrowIfCancellationRequested();
        UNet = Own(new UNetModel(ModelFile("unet"), options, residency, customize("unet")));
        ct.ThrowIfCancellationRequested();
        VaeDecoder = Own(new VaeDecoderModel(ModelFile("vae_decoder"), options, residency));
        if (vae.Path is not null)
        {
            VaeDecoder.CheckScaleFactor(VaeScaleFactor, LatentChannels, vae.Path);
        }

        if (loadVaeEncoder && File.Exists(Sub("vae_encoder", "model.onnx")))
        {
            ct.ThrowIfCancellationRequested();
            VaeEncoder = Own(new VaeEncoderModel(ModelFile("vae_encoder"), options, residency));
        }

        CheckComponentsFit(unetConfig);
        int configuredCondDim = unetConfig.GetInt32("time_cond_proj_dim", -1);
        GuidanceEmbeddingDim = Distilled.GuidanceEmbedding.DimensionOf(UNet, configuredCondDim > 0 ? configuredCondDim : null);
    }

    private void CheckComponentsFit(JsonConfig unetConfig)
    {
        // Text widths must add up to the UNet's cross-attention width.
        int te1 = TextEncoder?.HiddenSize ?? 0;
        int te2 = TextEncoder2.HiddenSize;
        int cross = UNet.CrossAttentionDim > 0 ? UNet.CrossAttentionDim : unetConfig.GetInt32("cross_attention_dim", -1);
        if (te1 >= 0 && te2 > 0 && cross > 0 && te1 + te2 != cross)
        {
            var parts = TextEncoder is null ? $"text_encoder_2 ({te2})" : $"text_encoder ({te1}) + text_encoder_2 ({te2}) = {te1 + te2}";
            throw new SdxlModelException($"The components do not fit together: the text encoders' hidden widths {parts} must equal the UNet's encoder_hidden_states width {cross}. Is the UNet from another model (base vs refiner)?");
        }

        int pooled = TextEncoder2.PooledSize;
        if (pooled > 0 && UNet.TextEmbedsDim > 0 && pooled != UNet.TextEmbedsDim)
        {
            throw new SdxlModelException($"The components do not fit together: text_encoder_2's text_embeds width {pooled} differs from the UNet's text_embeds input width {UNet.TextEmbedsDim}.");
        }

        int timeIds = UNet.TimeIdsWidth;
        if (timeIds < 0)
        {
            // Dynamic width: derive it from the add-embedding input size when the config has it.
            int addDim = unetConfig.GetInt32("addition_time_embed_dim", -1);
            int projection = unetConfig.GetInt32("projection_class_embeddings_input_dim", -1);
            int pooledWidth = pooled > 0 ? pooled : UNet.TextEmbedsDim;
            timeIds = addDim > 0 && projection > 0 && pooledWidth > 0 ? (projection - pooledWidth) / addDim : (RequiresAestheticsScore ? 5 : 6);
        }

        if (timeIds is not (5 or 6))
        {
            throw new SdxlModelException($"unet: time_ids width must be 6 (original size, crop, target size) or 5 (refiner: original size, crop, aesthetic score); found {timeIds}.");
        }

        if ((timeIds == 5) != RequiresAestheticsScore && System.IO.File.Exists(Sub("model_index.json")))
        {
            // The UNet is the authority: refiner exports take 5 values whatever model_index.json says.
            RequiresAestheticsScore = timeIds == 5;
        }

        TimeIdsWidth = timeIds;
        UNetInChannels = UNet.InChannels > 0 ? UNet.InChannels : unetConfig.GetInt32("in_channels", 4);
        if (UNetInChannels is not (4 or 9))
        {
            throw new SdxlModelException($"unet: expected 4 latent channels (or 9 for an inpainting UNet); found {UNetInChannels}.");
        }
    }

    private string ModelFile(string component)
    {
        var path = Sub(component, "model.onnx");
        if (System.IO.Directory.Exists(path))
        {
            throw new SdxlModelException($"{component}: '{path}' is a directory, not a model file.");
        }

        if (!File.Exists(path) && new FileInfo(path).LinkTarget is null)
        {
            throw new SdxlModelException($"{component}: model file not found: '{path}'. Expected an SDXL ONNX folder as written by `optimum-cli export onnx --task stable-diffusion-xl`.");
        }

        return path;
    }

    private ClipTokenizer LoadTokenizer(string component)
    {
        var dir = Sub(component);
        if (!System.IO.Directory.Exists(dir))
        {
            throw new SdxlModelException($"{component}: folder not found: '{dir}' (it must hold vocab.json and merges.txt).");
        }

        try
        {
            return ClipTokenizer.FromDirectory(dir);
        }
        catch (Exception e) when (e is IOException or FormatException or InvalidDataException or ArgumentException or System.Text.Json.JsonException)
        {
            throw new SdxlModelException($"{component}: cannot read the tokenizer in '{dir}': {e.Message}", e);
        }
    }

    private static float[]? ToSingle(double[]? values)
    {
        if (values is null)
        {
            return null;
        }

        var result = new float[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            result[i] = (float)values[i];
        }

        return result;
    }
}
