using Sdxl.Net.Runtime;

namespace Sdxl.Net.DependencyInjection;

/// <summary>
/// Pipeline settings in a form that binds from configuration (appsettings.json section <c>"Sdxl"</c>, environment
/// variables, …). <see cref="Validate"/> reports every problem at once.
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

    /// <summary>Returns every problem with these options (empty when valid).</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(ModelPath))
        {
            errors.Add("Sdxl:ModelPath is required: the folder of an SDXL ONNX export.");
        }
        else if (!Directory.Exists(ModelPath))
        {
            errors.Add($"Sdxl:ModelPath '{ModelPath}' does not exist.");
        }

        if (RefinerPath is not null && !Directory.Exists(RefinerPath))
        {
            errors.Add($"Sdxl:RefinerPath '{RefinerPath}' does not exist.");
        }

        foreach (var path in ControlNetPaths ?? [])
        {
            if (string.IsNullOrWhiteSpace(path) || !Directory.Exists(path))
            {
                errors.Add($"Sdxl:ControlNetPaths entry '{path}' does not exist.");
            }
        }

        if (!(HighNoiseFraction > 0 && HighNoiseFraction < 1))
        {
            errors.Add($"Sdxl:HighNoiseFraction must be in (0, 1); got {HighNoiseFraction}.");
        }

        if (IntraOpThreads < 0)
        {
            errors.Add($"Sdxl:IntraOpThreads must be 0 or more; got {IntraOpThreads}.");
        }

        try
        {
            var device = ExecutionProviderOptions.Parse(Device ?? string.Empty);
            if (EnableCudaGraph && device.Kind == ExecutionProviderKind.Cpu)
            {
                errors.Add("Sdxl:EnableCudaGraph needs a cuda or tensorrt Device.");
            }
        }
        catch (FormatException e)
        {
            errors.Add($"Sdxl:Device: {e.Message}");
        }

        if (EnableCudaGraph && MemoryMode == MemoryMode.LoadPerPhase)
        {
            errors.Add("Sdxl:EnableCudaGraph cannot be combined with MemoryMode LoadPerPhase.");
        }

        return errors;
    }

    internal void ApplyTo(SdxlPipelineBuilder builder)
    {
        var errors = Validate();
        if (errors.Count > 0)
        {
            throw new SdxlOptionsException(errors);
        }

        var provider = ExecutionProviderOptions.Parse(Device) with
        {
            IntraOpThreads = IntraOpThreads,
            TensorRTEngineCachePath = TensorRTEngineCachePath,
            EnableCudaGraph = EnableCudaGraph,
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

/// <summary>Invalid <see cref="SdxlOptions"/>; the message lists every problem.</summary>
public sealed class SdxlOptionsException : Exception
{
    /// <summary>Creates the exception from the list of problems.</summary>
    public SdxlOptionsException(IReadOnlyList<string> errors)
        : base("Invalid Sdxl.Net options: " + string.Join(" ", errors)) => Errors = errors;

    /// <summary>The problems found.</summary>
    public IReadOnlyList<string> Errors { get; }
}
