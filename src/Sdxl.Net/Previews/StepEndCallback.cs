using Sdxl.Net.Denoising;

namespace Sdxl.Net.Previews;

/// <summary>
/// Advanced: called after every denoising step with the latents, which it may read and replace in place (diffusers'
/// <c>callback_on_step_end</c>). It runs on the generation's thread inside the loop.
/// </summary>
/// <param name="state">The step and its latents; valid only during the call.</param>
public delegate void StepEndCallback(StepEndState state);

/// <summary>The state after one denoising step, as a <see cref="StepEndCallback"/> sees it.</summary>
public readonly ref struct StepEndState
{
    internal StepEndState(in DenoisingStepEnd step, GenerationPhase phase)
    {
        Phase = phase;
        Step = step.Index + 1;
        TotalSteps = step.Count;
        Timestep = step.Timestep;
        Latents = step.Latents;
        BatchSize = step.Batch;
        LatentHeight = step.LatentHeight;
        LatentWidth = step.LatentWidth;
    }

    /// <summary>The loop: <see cref="GenerationPhase.Denoising"/> (base model) or <see cref="GenerationPhase.Refining"/>.</summary>
    public GenerationPhase Phase { get; }

    /// <summary>Steps finished in this loop (1 after the first).</summary>
    public int Step { get; }

    /// <summary>Steps of this loop.</summary>
    public int TotalSteps { get; }

    /// <summary>The timestep of the finished step.</summary>
    public float Timestep { get; }

    /// <summary>
    /// The latents [BatchSize, channels, LatentHeight, LatentWidth] after the step, as the UNet sees them (scaled by the VAE's
    /// scaling factor). Writing to them changes what the next step starts from; NaN or infinite values fail the generation.
    /// </summary>
    public Span<float> Latents { get; }

    /// <summary>The number of images.</summary>
    public int BatchSize { get; }

    /// <summary>The latent height (image height / 8).</summary>
    public int LatentHeight { get; }

    /// <summary>The latent width (image width / 8).</summary>
    public int LatentWidth { get; }
}

/// <summary>Adapts a public <see cref="StepEndCallback"/> to the step-observer seam.</summary>
internal sealed class StepEndCallbackObserver(StepEndCallback callback, GenerationPhase phase) : IDenoisingObserver
{
    /// <inheritdoc />
    public void OnStepEnd(in DenoisingStepEnd step) => callback(new StepEndState(step, phase));
}
