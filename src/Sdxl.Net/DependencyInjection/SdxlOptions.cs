using Sdxl.Net.Runtime;

namespace Sdxl.Net.DependencyInjection;

/// <summary>
/// Pipeline settings in a form that binds from configuration (appsettings.json section <c>"Sdxl"</c>, environment
/// variables, …), validated through <c>Microsoft.Extensions.Options</c> (<see cref="SdxlOptionsValidator"/>, checked
/// at host start); relative paths are resolved against the host's content root.
/// </summary>
public sealed class SdxlOptions
{
    /// <summary>The SDXL model folder (required).</summary>
    public string? ModelPath { get; set; }

    /// <summary>The refiner folder, or <see langword="null"/> for none.</summary>
    public string? RefinerPath { get; set; }

    /// <summary>The refiner's share of the schedule is 1 − this (default 0.8).</summary>
    public double HighNoiseFraction { get; set; } = 0.8;

    /// <summary>Device: <c>cpu</c>, <c>cuda</c>, <c>cuda:N</c>, <c>tensorrt</c> or <c>tensorrt:N</c>.</summary>
    public string Device { get; set; } = "cpu";

    /// <summary>A scheduler catalog name, or <see langword="null"/> for the model's scheduler_config.json class.</summary>
    public string? Scheduler { get; set; }

    /// <summary>CPU threads per model run (0: ONNX Runtime's choice).</summary>
    public int IntraOpThreads { get; set; }

    /// <summary>
    /// Let ONNX Runtime prepack weights when it creates a session (default <see langword="true"/>: faster steps,
    /// slower start); see <see cref="ExecutionProviderOptions.PrepackWeights"/>.
    /// </summary>
    public bool PrepackWeights { get; set; } = true;

    /// <summary>TensorRT engine cache folder.</summary>
    public string? TensorRTEngineCachePath { get; set; }

    /// <summary>Keep every session loaded (fastest) or load them per phase (smallest peak memory).</summary>
    public MemoryMode MemoryMode { get; set; } = MemoryMode.KeepLoaded;

    /// <summary>Decode large images in overlapping VAE tiles.</summary>
    public bool TiledVae { get; set; }

    /// <summary>Capture the UNet in a CUDA graph (CUDA/TensorRT, fixed shapes).</summary>
    public bool EnableCudaGraph { get; set; }

    /// <summary>
    /// ControlNet folders to add (each named by its folder name, see <see cref="SdxlPipelineBuilder.AddControlNet(string, string?)"/>);
    /// the model folder must have a ControlNet-enabled UNet.
    /// </summary>
    public IList<string> ControlNetPaths { get; set; } = [];

    /// <summary>
    /// Builds the pipeline when the host starts (an <c>IHostedService</c>), so a bad model folder stops the start-up
    /// and the first request does not wait for the models to load. Default: built on first resolution.
    /// </summary>
    public bool BuildOnStart { get; set; }

    /// <summary>Returns every problem with these options (empty when valid); relative paths are taken from the working directory.</summary>
    public IReadOnlyList<string> Validate() => SdxlOptionsValidator.Problems(this, contentRoot: null);

    /// <summary>A copy whose relative paths are resolved against <paramref name="contentRoot"/> (the host's content root), or the working directory when <see langword="null"/>.</summary>
    internal SdxlOptions WithPathsFrom(string? contentRoot)
    {
        var copy = (SdxlOptions)MemberwiseClone();
        copy.ModelPath = Resolve(ModelPath, contentRoot);
        copy.RefinerPath = Resolve(RefinerPath, contentRoot);
        copy.TensorRTEngineCachePath = Resolve(TensorRTEngineCachePath, contentRoot);
        copy.ControlNetPaths = (ControlNetPaths ?? []).Select(p => Resolve(p, contentRoot)!).ToList();
        return copy;
    }

    private static string? Resolve(string? path, string? contentRoot) =>
        string.IsNullOrWhiteSpace(path) || Path.IsPathRooted(path) ? path : Path.GetFullPath(path, contentRoot ?? Directory.GetCurrentDirectory());

    /// <summary>Configures <paramref name="builder"/> from these (validated, path-resolved) options.</summary>
    internal void ApplyTo(SdxlPipelineBuilder builder)
    {
        var provider = ExecutionProviderOptions.Parse(Device) with
        {
            IntraOpThreads = IntraOpThreads,
            TensorRTEngineCachePath = TensorRTEngineCachePath,
            EnableCudaGraph = EnableCudaGraph,
            PrepackWeights = PrepackWeights,
        };
        builder.WithModel(ModelPath!).UseExecutionProvider(provider).WithMemoryMode(MemoryMode);
        if (TiledVae)
        {
            builder.WithTiledVae();
        }
        if (RefinerPath is not null)
        {
            builder.WithRefiner(RefinerPath, new RefinerOptions { HighNoiseFraction = HighNoiseFraction });
        }

        if (Scheduler is not null)
        {
            builder.WithScheduler(Scheduler);
        }

        foreach (var path in ControlNetPaths ?? [])
        {
            builder.AddControlNet(path);
        }
    }
}
