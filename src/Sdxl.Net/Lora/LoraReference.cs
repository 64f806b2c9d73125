namespace Sdxl.Net.Lora;

/// <summary>A LoRA adapter to apply: a <c>.safetensors</c> file and its weights.</summary>
/// <remarks>
/// Formats are recognised from the tensor keys: kohya/sd-scripts (diffusers or SGM module names, LoCon convolutions)
/// and diffusers/PEFT. The adapted weights are <c>W + weight · (alpha / rank) · up · down</c>, summed over adapters.
/// </remarks>
/// <param name="Path">The adapter file.</param>
/// <param name="Weight">The scale of the UNet modules (1 = as trained, 0 = no effect, negative values invert).</param>
public sealed record LoraReference(string Path, double Weight = 1.0)
{
    /// <summary>The scale of the text-encoder modules; <see langword="null"/> uses <see cref="Weight"/>.</summary>
    public double? TextEncoderWeight { get; init; }

    /// <summary>The text encoders' effective weight.</summary>
    internal double EffectiveTextEncoderWeight => TextEncoderWeight ?? Weight;
}

/// <summary>A LoRA adapter that was applied to a generation, as recorded in results and PNG recipes.</summary>
/// <param name="Name">The file name (without folder).</param>
/// <param name="Sha256">The file's SHA-256, lowercase hex.</param>
/// <param name="Weight">The UNet weight.</param>
/// <param name="TextEncoderWeight">The text-encoder weight.</param>
public sealed record AppliedLora(string Name, string Sha256, double Weight, double TextEncoderWeight);
