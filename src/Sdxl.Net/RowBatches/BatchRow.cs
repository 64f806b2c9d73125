namespace Sdxl.Net;

/// <summary>
/// One row group of a batched run (<see cref="SdxlPipeline.GenerateBatchAsync"/>): a request with its own prompt,
/// guidance scale, seed and random stream, its own progress reports and its own cancellation.
/// </summary>
/// <param name="Request">The request; its <see cref="GenerationRequest.BatchSize"/> images stay together as in a lone run.</param>
public sealed record BatchRow(GenerationRequest Request)
{
    /// <summary>Progress of this row (denoising steps, decoding, completion).</summary>
    public IProgress<GenerationProgress>? Progress { get; init; }

    /// <summary>
    /// Cancels this row only: it leaves the batch before the next denoising step and its outcome is
    /// <see cref="OperationCanceledException"/>; the other rows continue unchanged.
    /// </summary>
    public CancellationToken CancellationToken { get; init; }
}

/// <summary>What became of one row of a batched run: a result, or the exception that ended the row.</summary>
/// <param name="Result">The generated images, when the row completed.</param>
/// <param name="Error">
/// <see cref="OperationCanceledException"/> when the row was cancelled, <see cref="SdxlNumericException"/> when its
/// latents or images were not finite; <see langword="null"/> when it completed.
/// </param>
public sealed record BatchRowOutcome(GenerationResult? Result, Exception? Error)
{
    /// <summary>Whether the row was cancelled.</summary>
    public bool IsCancelled => Error is OperationCanceledException;
}

/// <summary>
/// What requests must share to run as one UNet batch (<see cref="SdxlPipeline.GetBatchShape"/>): size, steps,
/// scheduler, classifier-free guidance on or off, and the denoising end. Prompts, guidance scales, guidance rescale,
/// seeds, micro-conditioning and image counts may differ per row.
/// </summary>
/// <param name="Width">Image width in pixels.</param>
/// <param name="Height">Image height in pixels.</param>
/// <param name="Steps">Denoising steps.</param>
/// <param name="Scheduler">The scheduler name (catalog name, or the pipeline's default scheduler's).</param>
/// <param name="Guidance">Whether classifier-free guidance is on (guidance scale above 1).</param>
/// <param name="HighNoiseFraction">The base model's denoising end, when the request stops early.</param>
public sealed record BatchShape(int Width, int Height, int Steps, string Scheduler, bool Guidance, double? HighNoiseFraction)
{
    /// <inheritdoc/>
    public override string ToString() =>
        FormattableString.Invariant($"{Width}x{Height}, {Steps} steps, {Scheduler}, CFG {(Guidance ? "on" : "off")}{(HighNoiseFraction is { } f ? $", end {f}" : string.Empty)}");
}
