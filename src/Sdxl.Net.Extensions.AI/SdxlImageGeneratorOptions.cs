using Sdxl.Net.Imaging;

namespace Sdxl.Net.Extensions.AI;

/// <summary>Settings of an <see cref="SdxlImageGenerator"/>.</summary>
public sealed class SdxlImageGeneratorOptions
{
    /// <summary>
    /// The request every generation starts from: steps, guidance, negative prompt, scheduler, … The prompt, size,
    /// count, input image and the <see cref="SdxlImageGenerator.PropertyNames"/> of a call override it.
    /// </summary>
    public GenerationRequest Defaults { get; set; } = new() { Prompt = string.Empty };

    /// <summary>The limits applied before decoding an input (<c>OriginalImages</c>) image.</summary>
    public ImageLoadLimits InputImageLimits { get; set; } = ImageLoadLimits.Default;

    /// <summary>
    /// Whether additional properties the generator does not know are ignored (default <see langword="false"/>: they are
    /// rejected, so a misspelt <c>"step"</c> fails loudly instead of silently using the default).
    /// </summary>
    public bool IgnoreUnknownProperties { get; set; }

    /// <summary>The model id reported by <see cref="Microsoft.Extensions.AI.ImageGeneratorMetadata.DefaultModelId"/>; <see langword="null"/>: none.</summary>
    public string? ModelId { get; set; }
}
