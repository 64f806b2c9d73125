using Sdxl.Net.Serving;

namespace Sdxl.Net.Orleans;

/// <summary>Settings of the Sdxl.Net grains on a silo.</summary>
public sealed class SdxlClusterOptions
{
    /// <summary>Jobs the cluster queue holds; beyond it submissions are refused with a retry estimate.</summary>
    public int MaxQueueLength { get; set; } = 64;

    /// <summary>The model folder of this silo's GPU workers (required with <see cref="Devices"/>).</summary>
    public string? ModelDirectory { get; set; }

    /// <summary>
    /// This silo's devices (<c>cpu</c>, <c>cuda:0</c>, ...): one GPU-worker grain each. Empty: the silo hosts no workers
    /// and declares no GPU in its metadata (a gateway or control silo).
    /// </summary>
    public IReadOnlyList<string> Devices { get; set; } = [];

    /// <summary>Batching of each device's local server (<see cref="ServingOptions.MaxBatchSize"/>, <see cref="ServingOptions.MaxBatchDelay"/>).</summary>
    public ServingOptions Serving { get; set; } = new();

    /// <summary>Further settings for each device's pipeline.</summary>
    public Action<SdxlPipelineBuilder>? ConfigurePipeline { get; set; }

    /// <summary>How often an idle worker asks the queue for work.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMilliseconds(20);

    /// <summary>How often a running job checks that its worker's silo is alive.</summary>
    public TimeSpan WorkerCheckInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How many times a job is queued again after losing its worker before it fails (retriable).</summary>
    public int MaxRequeues { get; set; } = 3;

    /// <summary>
    /// Whether the job and queue grains may live on GPU silos. Off (the default): they are placed only on control
    /// silos (no <see cref="Devices"/>), and a GPU silo that does not see one yet waits for it rather than take the queue
    /// itself, so that losing a GPU worker never loses queue state. Turn it on for a cluster made of GPU silos alone.
    /// </summary>
    public bool AllowControlGrainsOnGpuSilos { get; set; }
}
