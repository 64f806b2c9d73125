using Sdxl.Net.Conditioning;
using Sdxl.Net.Imaging;
using Sdxl.Net.Text;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Sdxl.Net;

/// <summary>
/// What to generate. Property names and defaults follow diffusers' <c>StableDiffusionXLPipeline.__call__</c>
/// arguments of the same meaning.
/// </summary>
public sealed record GenerationRequest
{
    /// <summary>The prompt (diffusers' <c>prompt</c>), read by the CLIP ViT-L encoder and, unless <see cref="Prompt2"/> is set, by the bigG encoder too.</summary>
    public required string Prompt { get; init; }

    /// <summary>The prompt for the second (bigG) encoder; <see langword="null"/> or empty uses <see cref="Prompt"/>.</summary>
    public string? Prompt2 { get; init; }

    /// <summary>
    /// The negative prompt. <see langword="null"/> (not given) makes diffusers use zero embeddings when the model sets
    /// <c>force_zeros_for_empty_prompt</c> (SDXL base does); an empty string is encoded like any prompt.
    /// </summary>
    public string? NegativePrompt { get; init; }

    /// <summary>The negative prompt for the second encoder; <see langword="null"/> or empty uses <see cref="NegativePrompt"/>.</summary>
    public string? NegativePrompt2 { get; init; }

    /// <summary>
    /// How the prompts are read: <see cref="PromptSyntax.Plain"/> (default, exactly diffusers) or
    /// <see cref="PromptSyntax.Weighted"/> (AUTOMATIC1111's weights, <c>BREAK</c> and prompts longer than 75 tokens).
    /// </summary>
    public PromptSyntax PromptSyntax { get; init; } = PromptSyntax.Plain;

    /// <summary>With <see cref="PromptSyntax.Weighted"/>: whose grammar and weighting rule apply (default AUTOMATIC1111's).</summary>
    public PromptWeighting PromptWeighting { get; init; } = PromptWeighting.Automatic1111;

    /// <summary>
    /// diffusers' <c>clip_skip</c>: both text encoders' states are taken from <c>hidden_states[-(ClipSkip + 2)]</c>;
    /// <see langword="null"/> or 0 is SDXL's default penultimate layer. Needs the export's <c>hidden_states.N</c> outputs.
    /// </summary>
    public int? ClipSkip { get; init; }

    /// <summary>Image width in pixels; must be a multiple of the model's pixel multiple. <see langword="null"/>: the model's default (1024 for SDXL).</summary>
    public int? Width { get; init; }

    /// <summary>Image height in pixels; must be a multiple of the model's pixel multiple. <see langword="null"/>: the model's default (1024 for SDXL).</summary>
    public int? Height { get; init; }

    /// <summary>Denoising steps (diffusers' <c>num_inference_steps</c>, default 50).</summary>
    public int Steps { get; init; } = 50;

    /// <summary>Classifier-free guidance scale (default 5.0); guidance is off at 1 or below.</summary>
    public float GuidanceScale { get; init; } = 5.0f;

    /// <summary>Guidance rescale φ in [0, 1] (default 0: off).</summary>
    public float GuidanceRescale { get; init; }

    /// <summary>Images to generate for the prompt (diffusers' <c>num_images_per_prompt</c>).</summary>
    public int BatchSize { get; init; } = 1;

    /// <summary>
    /// The seed of the run's torch-compatible generator (<c>torch.Generator("cpu").manual_seed(Seed)</c>);
    /// <see langword="null"/> picks a random seed, reported in the result.
    /// </summary>
    public long? Seed { get; init; }

    /// <summary>One seed per image (diffusers' list of generators); overrides <see cref="Seed"/>. Its length must equal <see cref="BatchSize"/>.</summary>
    public IReadOnlyList<long>? Seeds { get; init; }

    /// <summary>
    /// Initial noise [BatchSize, 4, Height/8, Width/8] in row-major order (diffusers' <c>latents=</c>); it is multiplied by
    /// the scheduler's initial noise sigma. <see langword="null"/> draws it from the seed.
    /// </summary>
    public ReadOnlyMemory<float>? InitialLatents { get; init; }

    /// <summary>Micro-conditioning values set for this request; they override the pipeline's providers.</summary>
    public MicroConditioning? Conditioning { get; init; }

    /// <summary>A scheduler name from the catalog (e.g. <c>euler-a</c>) to use instead of the pipeline's scheduler for this request.</summary>
    public string? Scheduler { get; init; }

    /// <summary>
    /// With a refiner configured: the fraction of the schedule the base model denoises before the refiner takes over
    /// (diffusers' <c>denoising_end</c>/<c>denoising_start</c>); <see langword="null"/> uses the refiner options' value.
    /// Without a refiner: stops the base model early (diffusers' <c>denoising_end</c>).
    /// </summary>
    public double? HighNoiseFraction { get; init; }

    /// <summary>Whether the configured refiner runs for this request (default true when one is configured).</summary>
    public bool UseRefiner { get; init; } = true;

    /// <summary>
    /// An input image for image-to-image (SDEdit) or, with <see cref="Mask"/>, inpainting. Its size is the generated size
    /// unless <see cref="Width"/>/<see cref="Height"/> are set, in which case it is resized per <see cref="ResizeMode"/>.
    /// Load untrusted files with <see cref="ImageInput.Load(string, ImageLoadLimits?)"/>.
    /// </summary>
    public Image<Rgb24>? Image { get; init; }

    /// <summary>The inpainting mask: white (≥ 50 % luma) is repainted, black is kept. Requires <see cref="Image"/>.</summary>
    public Image<Rgb24>? Mask { get; init; }

    /// <summary>
    /// How much of the schedule re-noises the input image, in (0, 1]; <see langword="null"/> uses diffusers' defaults
    /// (0.3 for image-to-image, 0.9999 for inpainting).
    /// </summary>
    public double? Strength { get; init; }

    /// <summary>How <see cref="Image"/> and <see cref="Mask"/> are brought to the generated size.</summary>
    public ImageResizeMode ResizeMode { get; init; } = ImageResizeMode.Stretch;

    /// <summary>
    /// How the VAE encoder's distribution becomes latents: a sample drawn from the run's generator (diffusers' default,
    /// <c>sample_mode="sample"</c>) or its mean (<c>sample_mode="argmax"</c>; draws nothing). Encoders that output
    /// <c>latent_sample</c> sample inside the graph and ignore this.
    /// </summary>
    public VaeSampling VaeSampling { get; init; } = VaeSampling.Sample;

    /// <summary>
    /// Control images for the pipeline's ControlNets (see <see cref="SdxlPipelineBuilder.AddControlNet(string, string?)"/>),
    /// each with its net, scale and guidance window; the residuals of several are summed. Text-to-image and
    /// image-to-image only.
    /// </summary>
    public IReadOnlyList<ControlNet.ControlImage>? ControlImages { get; init; }

    /// <summary>
    /// diffusers' <c>guess_mode</c>: with guidance the nets see only the positive prompt and their residuals are added to
    /// the conditional half only, scaled from 0.1 (first down block) to 1 (middle block).
    /// </summary>
    public bool ControlNetGuessMode { get; init; }

    /// <summary>
    /// Also return the final latents [BatchSize, 4, Height/8, Width/8] (before the VAE scaling) in
    /// <see cref="GenerationResult.Latents"/>, like diffusers' <c>output_type="latent"</c> (the images are still decoded).
    /// </summary>
    public bool ReturnLatents { get; init; }

    /// <summary>
    /// LoRA adapters for this request, applied on top of the pipeline's own (<see cref="SdxlPipelineBuilder.AddLora"/>)
    /// to the base model's UNet and text encoders (not the refiner). Requests with different sets run on different
    /// sessions; a new set gets sessions of its own (on the CPU an idle set's weights are rewritten in place), and the
    /// most recent idle set stays loaded.
    /// </summary>
    public IReadOnlyList<Lora.LoraReference>? Loras { get; init; }

    /// <summary>
    /// diffusers' <c>eta</c>: passed to schedulers whose <c>step</c> takes it (DDIM's η, TCD's γ); other schedulers
    /// ignore it, as diffusers does. <see langword="null"/>: the pipeline's default 0.0.
    /// </summary>
    public float? Eta { get; init; }

    /// <summary>
    /// A custom timestep schedule, descending (diffusers' <c>timesteps=</c>; euler, lcm and tcd take one). It sets the
    /// number of steps: <see cref="Steps"/> is ignored, as diffusers ignores <c>num_inference_steps</c>.
    /// </summary>
    public IReadOnlyList<double>? Timesteps { get; init; }

    /// <summary>
    /// A custom noise-level schedule including the final sigma, as diffusers' Euler takes it (<c>sigmas=</c>, e.g.
    /// <c>[14.6, 4.1, 1.2, 0.3, 0.0]</c> for 4 steps). It sets the number of steps (sigmas − 1).
    /// </summary>
    public IReadOnlyList<double>? Sigmas { get; init; }

    /// <summary>
    /// The name of the few-step preset the request's steps, guidance and scheduler came from
    /// (<see cref="Distilled.FewStepPresets"/>), recorded in recipes; it changes nothing by itself.
    /// </summary>
    public string? Preset { get; init; }

    /// <summary>Preview images reported with the step progress (and in <see cref="SdxlPipeline.GenerateStreamingAsync"/>); <see langword="null"/>: none, at no cost.</summary>
    public Previews.PreviewOptions? Preview { get; init; }

    /// <summary>
    /// Advanced: called on the generation's thread after every denoising step with the latents, which it may read and
    /// replace in place (diffusers' <c>callback_on_step_end</c>). Keep it fast; it runs inside the loop.
    /// </summary>
    public Previews.StepEndCallback? StepEnd { get; init; }
}

/// <summary>How the VAE encoder's posterior becomes latents.</summary>
public enum VaeSampling
{
    /// <summary>mean + std · randn, drawn from the generation's random source (diffusers' default).</summary>
    Sample,

    /// <summary>The posterior mean: deterministic, draws no random numbers.</summary>
    Mean,
}
