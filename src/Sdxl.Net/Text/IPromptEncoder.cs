using Microsoft.ML.OnnxRuntime;
using Sdxl.Net.Models;

namespace Sdxl.Net.Text;

/// <summary>The prompt texts and options of one request, as the prompt encoders read them.</summary>
/// <param name="Prompt">The prompt.</param>
/// <param name="Prompt2">The second encoder's prompt (<see langword="null"/>/empty: <paramref name="Prompt"/>).</param>
/// <param name="NegativePrompt">The negative prompt (<see langword="null"/>: not given).</param>
/// <param name="NegativePrompt2">The second encoder's negative prompt.</param>
/// <param name="ClipSkip">diffusers' <c>clip_skip</c> (0: the penultimate layer).</param>
/// <param name="Weighting">How weighted prompts are parsed and applied.</param>
internal sealed record PromptTexts(string Prompt, string? Prompt2, string? NegativePrompt, string? NegativePrompt2, int ClipSkip = 0,
    PromptWeighting Weighting = PromptWeighting.Automatic1111)
{
    public static PromptTexts From(GenerationRequest r) =>
        new(r.Prompt, r.Prompt2, r.NegativePrompt, r.NegativePrompt2, r.ClipSkip ?? 0, r.PromptWeighting);
}

/// <summary>
/// The "prompt encoder" seam: turns a request's prompt and negative prompt into the token embeddings [1, 77·k, D] and
/// pooled embeddings [1, P] that condition the UNet. Both rows come back with the same sequence length (CFG batches
/// them together).
/// </summary>
internal interface IPromptEncoder
{
    /// <summary>Encodes the prompt and, when <paramref name="cfg"/>, the negative prompt (otherwise the positive is returned twice).</summary>
    /// <param name="model">The model folder whose tokenizers and text encoders to use (base or refiner).</param>
    /// <param name="texts">The texts and options.</param>
    /// <param name="cfg">Whether classifier-free guidance needs a negative row.</param>
    /// <param name="notes">Receives truncation notes.</param>
    /// <param name="runOptions">ONNX run options (terminated on cancellation).</param>
    (PromptEmbedding Positive, PromptEmbedding Negative) EncodePair(
        SdxlModelFolder model, PromptTexts texts, bool cfg, List<TruncationNote> notes, RunOptions? runOptions);
}

/// <summary>Picks the prompt encoder of a <see cref="PromptSyntax"/>.</summary>
internal static class PromptEncoders
{
    public static IPromptEncoder For(PromptSyntax syntax) => syntax switch
    {
        PromptSyntax.Plain => PromptEncoder.Instance,
        PromptSyntax.Weighted => WeightedPromptEncoder.Instance,
        _ => throw new ArgumentOutOfRangeException(nameof(syntax), syntax, "Unknown prompt syntax: expected Plain or Weighted."),
    };
}
