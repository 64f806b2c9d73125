namespace Sdxl.Net.Text;

/// <summary>How a prompt's text is read.</summary>
public enum PromptSyntax
{
    /// <summary>
    /// Plain text, exactly as diffusers: brackets are ordinary characters, the prompt is cut after CLIP's 75 tokens,
    /// an absent negative prompt gives zero embeddings (when the model sets <c>force_zeros_for_empty_prompt</c>).
    /// </summary>
    Plain,

    /// <summary>
    /// AUTOMATIC1111's prompt language: <c>(x)</c>, <c>[x]</c>, <c>(x:1.3)</c>, <c>BREAK</c>, prompts of any length
    /// encoded in 75-token chunks, and an empty or absent negative prompt giving zero embeddings. How the weights are
    /// read and applied is chosen by <see cref="PromptWeighting"/>.
    /// </summary>
    Weighted,
}

/// <summary>How <see cref="PromptSyntax.Weighted"/> prompts are parsed and how their weights change the embeddings.</summary>
public enum PromptWeighting
{
    /// <summary>
    /// AUTOMATIC1111 (its default "Original" emphasis): <c>(x)</c> ×1.1, <c>[x]</c> ÷1.1, <c>(x:w)</c> ×w, nesting
    /// multiplies, <c>BREAK</c> starts a new chunk; each token's hidden state is multiplied by its weight and each
    /// chunk's mean (per text encoder, over all 77 positions) is then restored.
    /// </summary>
    Automatic1111,

    /// <summary>
    /// AUTOMATIC1111's grammar with the weights multiplied in and no mean restore (A1111's "No norm" emphasis; what
    /// compel does for <c>(x)1.3</c>-style weights): stronger and less stable than <see cref="Automatic1111"/>.
    /// </summary>
    NoMeanRestore,

    /// <summary>
    /// ComfyUI's reading: only round brackets weigh (<c>(x)</c> ×1.1, <c>(x:w)</c> sets the weight to w instead of
    /// multiplying), square brackets and <c>BREAK</c> are text, and a weight w moves a token's hidden state away
    /// from the empty prompt's: <c>empty + w · (h − empty)</c>.
    /// </summary>
    ComfyUI,
}
