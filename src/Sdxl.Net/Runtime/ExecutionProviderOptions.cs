namespace Sdxl.Net.Runtime;

/// <summary>The ONNX Runtime execution provider that runs the models.</summary>
public enum ExecutionProviderKind
{
    /// <summary>The CPU provider: always available, reproducible, slow for real SDXL sizes.</summary>
    Cpu,

    /// <summary>NVIDIA CUDA (needs CUDA 13 and cuDNN 9 libraries on the library path).</summary>
    Cuda,

    /// <summary>NVIDIA TensorRT (needs TensorRT 10 libraries; falls back to CUDA for unsupported nodes).</summary>
    TensorRT,
}

/// <summary>
/// How the ONNX sessions are created: which execution provider, on which device, with which threads and caches.
/// </summary>
/// <remarks>Plain data, applied by the runtime layer when the pipeline is built.</remarks>
public sealed record ExecutionProviderOptions
{
    /// <summary>The provider to use.</summary>
    public ExecutionProviderKind Kind { get; init; } = ExecutionProviderKind.Cpu;

    /// <summary>The GPU index for CUDA and TensorRT.</summary>
    public int DeviceId { get; init; }

    /// <summary>Intra-op threads for the CPU provider; 0 lets ONNX Runtime choose.</summary>
    public int IntraOpThreads { get; init; }

    /// <summary>
    /// The most intra-op threads accepted (256): more than any machine's useful parallelism for one model run;
    /// thousands of threads make ONNX Runtime spend minutes per image on scheduling alone.
    /// </summary>
    public const int MaxIntraOpThreads = 256;

    /// <summary>Whether the CPU memory arena is enabled (faster; holds on to memory between runs).</summary>
    public bool EnableCpuMemoryArena { get; init; } = true;

    /// <summary>
    /// Whether ONNX Runtime prepacks weights when a session is created (re-lays them out for its CPU kernels; on by
    /// default). Off, a session starts about 3× faster and its weights stay memory-mapped from the file (page cache,
    /// shared between processes that load the same folder) instead of copied, at some cost per UNet step: measured on
    /// a full-size SDXL UNet on 2 vCPUs, creation 48 s → 16 s and a 512² step 25 s → 29 s (docs/benchmarks.md). Worth
    /// turning off with <see cref="MemoryMode.LoadPerPhase"/> (sessions are created in every generation) for few-step
    /// models, and for several processes on one machine.
    /// </summary>
    public bool PrepackWeights { get; init; } = true;

    /// <summary>CUDA: run an exhaustive cuDNN convolution algorithm search on first use (slower start, faster steps).</summary>
    public bool CudnnExhaustiveSearch { get; init; }

    /// <summary>CUDA: the most GPU memory, in bytes, the provider's arena may take; 0 means no limit.</summary>
    public long GpuMemoryLimitBytes { get; init; }

    /// <summary>
    /// TensorRT: build fp16 engines. Off by default: it also runs the VAE in fp16, which overflows with the original
    /// SDXL VAE (NaN images); enable it together with an fp16-fixed VAE.
    /// </summary>
    public bool TensorRTFp16 { get; init; }

    /// <summary>TensorRT: where built engines are cached (strongly recommended: building takes minutes).</summary>
    public string? TensorRTEngineCachePath { get; init; }

    /// <summary>TensorRT: where timing caches are kept.</summary>
    public string? TensorRTTimingCachePath { get; init; }

    /// <summary>
    /// TensorRT: the shape ranges engines are built for, so one engine serves every size and batch in them instead of
    /// being rebuilt per shape; <see langword="null"/> builds for the shapes first seen.
    /// </summary>
    public TensorRTShapeProfile? TensorRTProfile { get; init; }

    /// <summary>
    /// CUDA / TensorRT: capture the UNet's kernels in a CUDA graph on its first runs and replay it on later steps,
    /// removing per-kernel launch overhead (most useful for small batches and sizes, where launches dominate).
    /// </summary>
    /// <remarks>
    /// Constraints (ONNX Runtime's): every UNet node must run on the GPU provider (no CPU fallback nodes); the input
    /// shapes of a captured graph never change, so each distinct (batch, size, guidance on/off) combination is its
    /// own graph, captured on first use and kept for the pipeline's lifetime (GPU memory for each); inputs and outputs
    /// live in device buffers the pipeline keeps per shape, so generations of the same shape run one at a time. Only
    /// the UNet uses a graph. Untested on hardware in this repository's CI: check with the gpu-check script first.
    /// </remarks>
    public bool EnableCudaGraph { get; init; }

    /// <summary>Whether all sessions stay loaded, or each phase loads its own and releases the others.</summary>
    public MemoryMode MemoryMode { get; init; } = MemoryMode.KeepLoaded;

    /// <summary>
    /// Providers to try, in order, when <see cref="Kind"/> cannot be initialised (for example CUDA libraries missing).
    /// Empty means: fail with a clear error instead of silently running elsewhere.
    /// </summary>
    public IReadOnlyList<ExecutionProviderKind> Fallbacks { get; init; } = [];

    /// <summary>The CPU provider with ONNX Runtime's default threading.</summary>
    public static ExecutionProviderOptions Cpu { get; } = new();

    /// <summary>Parses a device string of the CLI form <c>cpu</c>, <c>cuda</c>, <c>cuda:1</c>, <c>tensorrt</c> or <c>tensorrt:0</c>.</summary>
    /// <exception cref="FormatException">The text is not one of those forms.</exception>
    public static ExecutionProviderOptions Parse(string device)
    {
        ArgumentNullException.ThrowIfNull(device);
        var parts = device.Trim().ToLowerInvariant().Split(':');
        var kind = parts[0] switch
        {
            "cpu" => ExecutionProviderKind.Cpu,
            "cuda" => ExecutionProviderKind.Cuda,
            "tensorrt" or "trt" => ExecutionProviderKind.TensorRT,
            _ => throw new FormatException($"Unknown device '{device}': expected cpu, cuda[:N] or tensorrt[:N]."),
        };
        int id = 0;
        if (parts.Length > 2 || (parts.Length == 2 && (kind == ExecutionProviderKind.Cpu || !int.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out id))))
        {
            throw new FormatException($"Invalid device '{device}': expected cpu, cuda[:N] or tensorrt[:N] with N a GPU index.");
        }

        return new ExecutionProviderOptions { Kind = kind, DeviceId = id };
    }
}
