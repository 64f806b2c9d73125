using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Sdxl.Net.Conditioning;
using Sdxl.Net.Hub;
using Sdxl.Net.Imaging;
using Sdxl.Net.Randomness;
using Sdxl.Net.Runtime;
using Sdxl.Net.Schedulers;

namespace Sdxl.Net;

/// <summary>
/// Configures and builds an <see cref="SdxlPipeline"/>. Options are validated and every model session is created in
/// <see cref="Build()"/>, so a broken folder fails there, naming the file and the expected signature.
/// </summary>
/// <example>
/// <code>
/// using var pipeline = SdxlPipeline.CreateBuilder().WithModel("sdxl-base-onnx").UseCuda().Build();
/// var result = await pipeline.GenerateAsync(new GenerationRequest { Prompt = "a lighthouse at dawn", Seed = 42 });
/// </code>
/// </example>
public sealed class SdxlPipelineBuilder
{
    private readonly List<IMicroConditioningProvider> _conditioning = [];
    private readonly List<IImageSink> _sinks = [];
    private readonly List<ControlNet.ControlNetRegistration> _controlNets = [];
    private readonly List<Lora.LoraReference> _loras = [];
    private readonly List<Text.EmbeddingReference> _embeddings = [];
    private string? _modelDirectory;
    private string? _refinerDirectory;
    private RefinerOptions? _refinerOptions;
    private ExecutionProviderOptions _provider = ExecutionProviderOptions.Cpu;
    private Func<SchedulerConfig, IScheduler>? _scheduler;
    private string? _schedulerName;
    private SchedulerCatalog _catalog = SchedulerCatalog.Default;
    private Func<SchedulerConfig, SchedulerConfig>? _configureScheduler;
    private Func<long, IRandomSource> _randomSource = seed => new TorchCpuGenerator(unchecked((ulong)seed));
    private ILoggerFactory _loggerFactory = NullLoggerFactory.Instance;
    private MemoryMode? _memoryMode;
    private TiledVaeOptions? _tiledVae;
    private HubDownloadOptions? _hubOptions;
    private bool _allowDownload;

    internal SdxlPipelineBuilder()
    {
    }

    /// <summary>
    /// The SDXL model folder (optimum/diffusers ONNX layout), or a Hugging Face repository id (<c>org/name</c>) that is
    /// in the Hugging Face cache (see <see cref="SdxlModelHub"/>); a repository id is never downloaded here.
    /// </summary>
    public SdxlPipelineBuilder WithModel(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        _modelDirectory = directory;
        return this;
    }

    /// <summary>
    /// A model from the Hugging Face Hub (<c>org/name</c>), resolved in <see cref="Build()"/> from the cache with
    /// <paramref name="options"/> (revision, variant, cache folder), and, when <paramref name="allowDownload"/>,
    /// downloaded there if missing. A refiner given as a repository id is resolved the same way, at its <c>main</c> revision.
    /// </summary>
    public SdxlPipelineBuilder WithModel(string repoId, HubDownloadOptions options, bool allowDownload = false)
    {
        ArgumentNullException.ThrowIfNull(options);
        WithModel(repoId);
        _hubOptions = options;
        _allowDownload = allowDownload;
        return this;
    }

    /// <summary>Adds the SDXL refiner (a folder with tokenizer_2, text_encoder_2, unet and vae_decoder), loaded on first use.</summary>
    public SdxlPipelineBuilder WithRefiner(string directory, RefinerOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        _refinerDirectory = directory;
        _refinerOptions = options ?? new RefinerOptions();
        return this;
    }

    /// <summary>
    /// Adds a ControlNet: a folder with an ONNX <c>model.onnx</c> in OnnxStack's SDXL form (and optionally its
    /// diffusers <c>config.json</c>). The model folder must have a ControlNet-enabled UNet: its <c>unet/</c> takes the
    /// residual inputs, or OnnxStack's <c>controlnet/model.onnx</c> sits beside <c>unet/</c>. See docs/controlnet.md.
    /// </summary>
    /// <param name="directory">The ControlNet folder.</param>
    /// <param name="name">The name requests use in <see cref="ControlNet.ControlImage.ControlNet"/>; by default the folder's name.</param>
    /// <exception cref="ArgumentException">Another ControlNet already has this name.</exception>
    public SdxlPipelineBuilder AddControlNet(string directory, string? name = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        name ??= Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory)));
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (_controlNets.Exists(c => c.Name == name))
        {
            throw new ArgumentException($"A ControlNet named '{name}' was already added; give this one another name.", nameof(name));
        }

        _controlNets.Add(new ControlNet.ControlNetRegistration(name, directory));
        return this;
    }

    /// <summary>Runs on the CPU provider.</summary>
    /// <param name="intraOpThreads">Threads per model run, 1 to <see cref="ExecutionProviderOptions.MaxIntraOpThreads"/>; 0 lets ONNX Runtime choose.</param>
    public SdxlPipelineBuilder UseCpu(int intraOpThreads = 0)
    {
        if (intraOpThreads is < 0 or > ExecutionProviderOptions.MaxIntraOpThreads)
        {
            throw new ArgumentOutOfRangeException(nameof(intraOpThreads), intraOpThreads,
                $"intraOpThreads must be 0 (ONNX Runtime's choice: one per physical core) or from 1 to {ExecutionProviderOptions.MaxIntraOpThreads}; got {intraOpThreads}.");
        }

        _provider = new ExecutionProviderOptions { Kind = ExecutionProviderKind.Cpu, IntraOpThreads = intraOpThreads };
        return this;
    }

    /// <summary>Runs on the CUDA provider.</summary>
    public SdxlPipelineBuilder UseCuda(int deviceId = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(deviceId);
        _provider = new ExecutionProviderOptions { Kind = ExecutionProviderKind.Cuda, DeviceId = deviceId };
        return this;
    }

    /// <summary>Runs on the TensorRT provider (with CUDA for the nodes TensorRT does not take).</summary>
    public SdxlPipelineBuilder UseTensorRT(int deviceId = 0, string? engineCachePath = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(deviceId);
        _provider = new ExecutionProviderOptions { Kind = ExecutionProviderKind.TensorRT, DeviceId = deviceId, TensorRTEngineCachePath = engineCachePath };
        return this;
    }

    /// <summary>Uses fully specified execution provider options.</summary>
    public SdxlPipelineBuilder UseExecutionProvider(ExecutionProviderOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _provider = options;
        return this;
    }

    /// <summary>
    /// Chooses whether every model stays loaded (<see cref="MemoryMode.KeepLoaded"/>, the default) or each phase loads
    /// its models and releases the previous phase's (<see cref="MemoryMode.LoadPerPhase"/>: lower peak memory, slower).
    /// Overrides the mode of the execution provider options, whichever is set first.
    /// </summary>
    public SdxlPipelineBuilder WithMemoryMode(MemoryMode mode)
    {
        if (!Enum.IsDefined(mode))
        {
            throw new ArgumentOutOfRangeException(nameof(mode), mode, "Unknown memory mode: expected KeepLoaded or LoadPerPhase.");
        }

        _memoryMode = mode;
        return this;
    }

    /// <summary>
    /// Decodes images larger than one tile in overlapping tiles (see <see cref="TiledVaeOptions"/>); smaller images
    /// are still decoded whole.
    /// </summary>
    public SdxlPipelineBuilder WithTiledVae(TiledVaeOptions? options = null)
    {
        options ??= new TiledVaeOptions();
        options.Validate();
        _tiledVae = options;
        return this;
    }

    /// <summary>Uses a scheduler by catalog name (e.g. <c>euler</c>, <c>dpmpp-2m-karras</c>), configured from the model's scheduler_config.json.</summary>
    public SdxlPipelineBuilder WithScheduler(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        _schedulerName = name;
        _scheduler = null;
        return this;
    }

    /// <summary>Uses a scheduler instance (for example a custom implementation of <see cref="IScheduler"/>).</summary>
    public SdxlPipelineBuilder WithScheduler(IScheduler scheduler)
    {
        ArgumentNullException.ThrowIfNull(scheduler);
        _scheduler = _ => scheduler;
        _schedulerName = null;
        return this;
    }

    /// <summary>Uses a scheduler created from each model folder's scheduler configuration (base and refiner).</summary>
    public SdxlPipelineBuilder WithScheduler(Func<SchedulerConfig, IScheduler> factory)
    {
        ArgumentNullException.ThrowIfNull(factory);
        _scheduler = factory;
        _schedulerName = null;
        return this;
    }

    /// <summary>
    /// Changes each model folder's scheduler configuration before a scheduler is created from it, e.g.
    /// <c>c =&gt; c.With("timestep_spacing", "trailing")</c> for SDXL-Turbo-style models.
    /// </summary>
    public SdxlPipelineBuilder ConfigureScheduler(Func<SchedulerConfig, SchedulerConfig> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        var previous = _configureScheduler;
        _configureScheduler = previous is null ? configure : c => configure(previous(c));
        return this;
    }

    /// <summary>Uses a scheduler catalog with custom entries, for names given here or in requests.</summary>
    public SdxlPipelineBuilder WithSchedulerCatalog(SchedulerCatalog catalog)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        _catalog = catalog;
        return this;
    }

    /// <summary>
    /// Creates each generation's random source from its seed. The default is <see cref="TorchCpuGenerator"/> with the
    /// AVX2 kernel, which reproduces <c>torch.Generator("cpu").manual_seed(seed)</c> on x86-64 PyTorch builds.
    /// </summary>
    public SdxlPipelineBuilder WithRandomSource(Func<long, IRandomSource> factory)
    {
        ArgumentNullException.ThrowIfNull(factory);
        _randomSource = factory;
        return this;
    }

    /// <summary>
    /// Uses the torch-compatible generator with the given normal-sampling kernel: <see cref="TorchNormalKernel.Scalar"/>
    /// matches PyTorch builds without AVX2 (ARM, Apple silicon, <c>ATEN_CPU_CAPABILITY=default</c>).
    /// </summary>
    public SdxlPipelineBuilder WithTorchKernel(TorchNormalKernel kernel) =>
        WithRandomSource(seed => new TorchCpuGenerator(unchecked((ulong)seed), kernel));

    /// <summary>Adds a micro-conditioning provider; providers run in the order added.</summary>
    public SdxlPipelineBuilder AddConditioning(IMicroConditioningProvider provider)
    {
        ArgumentNullException.ThrowIfNull(provider);
        _conditioning.Add(provider);
        return this;
    }

    /// <summary>Adds a sink that receives every result.</summary>
    public SdxlPipelineBuilder AddSink(IImageSink sink)
    {
        ArgumentNullException.ThrowIfNull(sink);
        _sinks.Add(sink);
        return this;
    }

    /// <summary>
    /// Applies a LoRA adapter (kohya/sd-scripts, diffusers/PEFT or LoCon <c>.safetensors</c>) to every generation: its
    /// weights are merged into the UNet and text-encoder sessions when the pipeline is built.
    /// </summary>
    /// <param name="path">The adapter file.</param>
    /// <param name="weight">The UNet scale (1 = as trained; 0 = no effect; negative inverts).</param>
    /// <param name="textEncoderWeight">The text encoders' scale; <see langword="null"/> uses <paramref name="weight"/>.</param>
    public SdxlPipelineBuilder AddLora(string path, double weight = 1.0, double? textEncoderWeight = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!double.IsFinite(weight) || textEncoderWeight is { } te && !double.IsFinite(te))
        {
            throw new ArgumentOutOfRangeException(nameof(weight), "LoRA weights must be finite numbers.");
        }

        _loras.Add(new Lora.LoraReference(path, weight) { TextEncoderWeight = textEncoderWeight });
        return this;
    }

    /// <summary>
    /// Adds an SDXL textual-inversion embedding (a <c>.safetensors</c> file with <c>clip_l</c> and <c>clip_g</c>
    /// vectors): wherever <paramref name="token"/> appears in a prompt it stands for the file's N vectors. The text
    /// encoders' token tables are extended when the pipeline is built.
    /// </summary>
    /// <param name="path">The embedding file.</param>
    /// <param name="token">The trigger word; <see langword="null"/> uses the file name without extension (as AUTOMATIC1111 does).</param>
    public SdxlPipelineBuilder AddEmbedding(string path, string? token = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        token ??= Path.GetFileNameWithoutExtension(path);
        if (string.IsNullOrWhiteSpace(token) || token.Any(char.IsWhiteSpace))
        {
            throw new ArgumentException($"The embedding trigger word must be one word without spaces; got '{token}'.", nameof(token));
        }

        _embeddings.Add(new Text.EmbeddingReference(path, token));
        return this;
    }

    /// <summary>Logs model loading, provider selection and per-phase timings.</summary>
    public SdxlPipelineBuilder WithLogging(ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(loggerFactory);
        _loggerFactory = loggerFactory;
        return this;
    }

    /// <summary>Validates the configuration, opens every model and returns the pipeline.</summary>
    /// <exception cref="InvalidOperationException">No model folder was given.</exception>
    /// <exception cref="SdxlModelException">A model folder is missing, corrupt or does not fit.</exception>
    public SdxlPipeline Build() => Build(CancellationToken.None);

    /// <summary>
    /// Validates the configuration, opens every model and returns the pipeline; <paramref name="cancellationToken"/>
    /// is checked between the components (creating one ONNX session cannot be interrupted).
    /// </summary>
    /// <exception cref="InvalidOperationException">No model folder was given.</exception>
    /// <exception cref="SdxlModelException">A model folder is missing, corrupt or does not fit.</exception>
    /// <exception cref="OperationCanceledException">Cancelled; every session opened so far is released.</exception>
    public SdxlPipeline Build(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (_modelDirectory is null)
        {
            throw new InvalidOperationException("No model folder: call WithModel(directory) before Build().");
        }

        if (_refinerOptions is { } r && (!(r.HighNoiseFraction > 0) || !(r.HighNoiseFraction < 1)))
        {
            throw new ArgumentOutOfRangeException(nameof(RefinerOptions.HighNoiseFraction), r.HighNoiseFraction, "The refiner's high-noise fraction must be in (0, 1).");
        }

        if (_refinerOptions is { } options)
        {
            Models.ModelConfigValidation.CheckAestheticScores(options);
        }

        if (_schedulerName is { } wanted && !_catalog.Names.Contains(wanted, StringComparer.OrdinalIgnoreCase))
        {
            throw new ArgumentException($"Unknown scheduler '{wanted}'. Known schedulers: {string.Join(", ", _catalog.Names)}.", "name");
        }

        if (_provider.IntraOpThreads is < 0 or > ExecutionProviderOptions.MaxIntraOpThreads)
        {
            throw new ArgumentOutOfRangeException(nameof(ExecutionProviderOptions.IntraOpThreads), _provider.IntraOpThreads,
                $"IntraOpThreads must be 0 (ONNX Runtime's choice: one per physical core) or from 1 to {ExecutionProviderOptions.MaxIntraOpThreads}; got {_provider.IntraOpThreads}.");
        }

        var catalog = _catalog;
        var configure = _configureScheduler ?? (c => c);
        Func<SchedulerConfig, IScheduler> create = _scheduler ?? (_schedulerName is { } name
            ? config => catalog.Create(name, config)
            : config => catalog.FromConfig(config));
        Func<SchedulerConfig, IScheduler> scheduler = config => create(configure(config));

        var modelDirectory = SdxlModelHub.ResolveModelArgument(_modelDirectory, _hubOptions, _allowDownload);
        var refinerDirectory = _refinerDirectory is null ? null : SdxlModelHub.ResolveModelArgument(_refinerDirectory, _hubOptions is null ? null : _hubOptions with { Revision = "main" }, _allowDownload);
        if (refinerDirectory is not null && !File.Exists(Path.Combine(refinerDirectory, "unet", "model.onnx")))
        {
            throw new SdxlModelException($"Refiner folder '{refinerDirectory}' has no unet/model.onnx; expected an SDXL refiner ONNX export (tokenizer_2, text_encoder_2, unet, vae_decoder).");
        }

        var provider = _memoryMode is { } mode ? _provider with { MemoryMode = mode } : _provider;
        if (provider.EnableCudaGraph && provider.MemoryMode == MemoryMode.LoadPerPhase)
        {
            throw new InvalidOperationException("CUDA graphs keep the UNet's device buffers for the pipeline's lifetime, so they cannot be combined with MemoryMode.LoadPerPhase.");
        }

        return new SdxlPipeline(new SdxlPipelineSettings(
            modelDirectory, refinerDirectory, _refinerOptions, provider, scheduler, configure, _schedulerName, _catalog,
            _conditioning.ToArray(), _sinks.ToArray(), _loggerFactory, _randomSource, _tiledVae) { Embeddings = _embeddings.ToArray(), ControlNets = _controlNets.ToArray(), Loras = _loras.ToArray() }, cancellationToken);
    }
}

internal sealed record SdxlPipelineSettings(
    string ModelDirectory,
    string? RefinerDirectory,
    RefinerOptions? RefinerOptions,
    ExecutionProviderOptions Provider,
    Func<SchedulerConfig, IScheduler> SchedulerFactory,
    Func<SchedulerConfig, SchedulerConfig> ConfigureScheduler,
    string? SchedulerName,
    SchedulerCatalog Catalog,
    IMicroConditioningProvider[] Conditioning,
    IImageSink[] Sinks,
    ILoggerFactory LoggerFactory,
    Func<long, IRandomSource> RandomSourceFactory,
    TiledVaeOptions? TiledVae = null)
{
    /// <summary>The pipeline's own LoRA adapters, merged into the base sessions.</summary>
    public IReadOnlyList<Lora.LoraReference> Loras { get; init; } = [];

    /// <summary>The textual-inversion embeddings added to the text encoders.</summary>
    public IReadOnlyList<Text.EmbeddingReference> Embeddings { get; init; } = [];

    /// <summary>The ControlNets added with AddControlNet.</summary>
    public IReadOnlyList<ControlNet.ControlNetRegistration> ControlNets { get; init; } = [];
}
