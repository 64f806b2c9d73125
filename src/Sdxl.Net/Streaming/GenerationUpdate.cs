namespace Sdxl.Net.Streaming;

/// <summary>One item of <see cref="SdxlPipeline.GenerateStreamingAsync"/>: a progress report, or the final result.</summary>
public sealed class GenerationUpdate
{
    internal GenerationUpdate(GenerationProgress progress) => Progress = progress;

    internal GenerationUpdate(GenerationResult result) => Result = result;

    /// <summary>The progress report (phase changes and every denoising step, with its timestep, elapsed time and any due preview); <see langword="null"/> on the final update.</summary>
    public GenerationProgress? Progress { get; }

    /// <summary>The generation's result, on the final update only.</summary>
    public GenerationResult? Result { get; }

    /// <summary>Whether this is the last update (it carries <see cref="Result"/>).</summary>
    public bool IsFinal => Result is not null;
}
