namespace Sdxl.Net;

/// <summary>The phase a generation is in.</summary>
public enum GenerationPhase
{
    /// <summary>Loading models (the refiner loads on first use).</summary>
    LoadingModels,

    /// <summary>Tokenizing and encoding the prompts.</summary>
    EncodingPrompts,

    /// <summary>Encoding the input image (image-to-image, inpainting).</summary>
    EncodingImage,

    /// <summary>The base model's denoising loop.</summary>
    Denoising,

    /// <summary>The refiner's denoising loop.</summary>
    Refining,

    /// <summary>Decoding latents to pixels.</summary>
    Decoding,

    /// <summary>Writing images to the sinks.</summary>
    Writing,

    /// <summary>Done.</summary>
    Completed,
}

/// <summary>A progress report of one generation.</summary>
/// <param name="Phase">The current phase.</param>
/// <param name="Step">Steps finished in the current denoising phase (0 before the first).</param>
/// <param name="TotalSteps">Steps of the current denoising phase (0 outside the loops).</param>
/// <param name="Elapsed">Time since the generation started.</param>
/// <param name="EstimatedRemaining">Estimated time to the end of the current denoising phase, when known.</param>
public sealed record GenerationProgress(GenerationPhase Phase, int Step, int TotalSteps, TimeSpan Elapsed, TimeSpan? EstimatedRemaining)
{
    /// <summary>The timestep of the step just finished (denoising reports only).</summary>
    public float? Timestep { get; init; }

    /// <summary>
    /// Preview images of the batch after this step, when the request asked for previews
    /// (<see cref="GenerationRequest.Preview"/>) and this step is due; otherwise <see langword="null"/>.
    /// </summary>
    public IReadOnlyList<Previews.PreviewImage>? Previews { get; init; }

    /// <summary>The first image's preview, when this report carries previews.</summary>
    public Previews.PreviewImage? Preview => Previews is { Count: > 0 } p ? p[0] : null;
}
