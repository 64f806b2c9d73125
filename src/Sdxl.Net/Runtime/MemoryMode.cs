namespace Sdxl.Net.Runtime;

/// <summary>How long the ONNX sessions of a model folder stay in memory.</summary>
public enum MemoryMode
{
    /// <summary>Every session is created at build time and kept until the pipeline is disposed (fastest).</summary>
    KeepLoaded,

    /// <summary>
    /// Sessions are opened at build time only to check their signatures, then closed; each phase (prompt encoding,
    /// denoising, VAE decoding, VAE encoding) creates its sessions when it starts and the next phase releases them.
    /// Peak memory is that of the largest phase (the UNet) instead of the sum of all models, at the cost of creating
    /// sessions on every generation (seconds per phase for real SDXL models; more with TensorRT without an engine cache).
    /// </summary>
    LoadPerPhase,
}
