using System.Globalization;
using Sdxl.Net.Conditioning;

namespace Sdxl.Net;

/// <summary>
/// Checks a request before any model runs, with messages that say what was wrong (which value) and what is allowed.
/// </summary>
internal static class RequestValidation
{
    /// <summary>The largest side accepted (SDXL's buckets go to 2048; 4096 leaves room for upscaled work).</summary>
    public const int MaxSide = 4096;

    public const int MaxSteps = 1000;

    public const int MaxBatch = 64;

    /// <summary>The longest prompt accepted, in characters. CLIP reads 75 tokens; this only guards the tokenizer against absurd input.</summary>
    public const int MaxPromptLength = 100_000;

    /// <summary>The largest micro-conditioning size or crop value.</summary>
    public const int MaxConditioningValue = 65536;

    /// <summary>
    /// The most activation memory a request may need by <see cref="EstimateActivationBytes"/> (64 GiB): more than any
    /// single accelerator or workstation has, so a request over it would fail anyway, only later and less clearly.
    /// </summary>
    public const long MaxActivationBytes = 64L << 30;

    /// <summary>
    /// The largest |value| accepted in <see cref="GenerationRequest.InitialLatents"/>: initial latents are standard
    /// normal noise (|x| &lt; 10 in practice); 1e4 leaves room for scaled or hand-made noise while keeping the UNet's
    /// activations far from float16 and float32 overflow.
    /// </summary>
    public const float MaxInitialLatentMagnitude = 1e4f;

    public static void Check(GenerationRequest r, int width, int height, int multiple, int latentChannels, int vaeScale)
    {
        if (string.IsNullOrWhiteSpace(r.Prompt))
        {
            throw new ArgumentException("Prompt must not be empty.", nameof(r.Prompt));
        }

        CheckPromptText(nameof(r.Prompt), r.Prompt);
        CheckPromptText(nameof(r.Prompt2), r.Prompt2);
        CheckPromptText(nameof(r.NegativePrompt), r.NegativePrompt);
        CheckPromptText(nameof(r.NegativePrompt2), r.NegativePrompt2);
        CheckPromptOptions(r);
        CheckSide(nameof(r.Width), width, multiple);
        CheckSide(nameof(r.Height), height, multiple);
        if (r.Steps < 1 || r.Steps > MaxSteps)
        {
            throw new ArgumentOutOfRangeException(nameof(r.Steps), r.Steps, $"Steps must be between 1 and {MaxSteps}; got {r.Steps}.");
        }

        if (!float.IsFinite(r.GuidanceScale) || r.GuidanceScale < 0 || r.GuidanceScale > 100)
        {
            throw new ArgumentOutOfRangeException(nameof(r.GuidanceScale), r.GuidanceScale,
                $"GuidanceScale must be a finite number in [0, 100] (guidance is off at 1 or below); got {Format(r.GuidanceScale)}.");
        }

        if (!float.IsFinite(r.GuidanceRescale) || r.GuidanceRescale < 0 || r.GuidanceRescale > 1)
        {
            throw new ArgumentOutOfRangeException(nameof(r.GuidanceRescale), r.GuidanceRescale, $"GuidanceRescale must be in [0, 1]; got {Format(r.GuidanceRescale)}.");
        }

        if (r.BatchSize < 1 || r.BatchSize > MaxBatch)
        {
            throw new ArgumentOutOfRangeException(nameof(r.BatchSize), r.BatchSize, $"BatchSize must be between 1 and {MaxBatch}; got {r.BatchSize}.");
        }

        CheckSeeds(r);
        CheckMemory(r, width, height, vaeScale);

        if (r.HighNoiseFraction is { } fraction && (!(fraction > 0) || !(fraction < 1)))
        {
            throw new ArgumentOutOfRangeException(nameof(r.HighNoiseFraction), fraction,
                $"HighNoiseFraction (denoising_end) must be strictly between 0 and 1; got {Format(fraction)}.");
        }

        if (r.Strength is { } strength && (!(strength > 0) || strength > 1))
        {
            throw new ArgumentOutOfRangeException(nameof(r.Strength), strength, $"Strength must be in (0, 1]; got {Format(strength)}.");
        }

        if (r.InitialLatents is { } latents)
        {
            long expected = (long)r.BatchSize * latentChannels * (height / vaeScale) * (width / vaeScale);
            if (latents.Length != expected)
            {
                throw new ArgumentException(
                    $"InitialLatents holds {latents.Length} values; expected [{r.BatchSize}, {latentChannels}, {height / vaeScale}, {width / vaeScale}] = {expected} for {width}x{height} with BatchSize {r.BatchSize}.",
                    nameof(r.InitialLatents));
            }

            var span = latents.Span;
            for (int i = 0; i < span.Length; i++)
            {
                if (!float.IsFinite(span[i]))
                {
                    throw new ArgumentException($"InitialLatents contains a non-finite value ({Format(span[i])}) at index {i}; initial noise must be finite.", nameof(r.InitialLatents));
                }

                if (Math.Abs(span[i]) > MaxInitialLatentMagnitude)
                {
                    throw new ArgumentException(
                        $"InitialLatents[{i}] is {Format(span[i])}; values must lie within ±{Format(MaxInitialLatentMagnitude)} (initial noise is standard normal, |x| < 10).",
                        nameof(r.InitialLatents));
                }
            }
        }

        CheckImages(r);
        if (r.Conditioning is { } c)
        {
            CheckConditioning(c, "Conditioning");
        }
    }

    /// <summary>
    /// Checks micro-conditioning values, from the request or returned by a provider (<paramref name="source"/> names
    /// which, e.g. <c>Conditioning</c> or <c>the conditioning provider AspectRatioBucketProvider</c>).
    /// </summary>
    public static void CheckConditioning(MicroConditioning c, string source)
    {
        CheckSize(source, nameof(c.OriginalSize), c.OriginalSize);
        CheckSize(source, nameof(c.TargetSize), c.TargetSize);
        CheckSize(source, nameof(c.NegativeOriginalSize), c.NegativeOriginalSize);
        CheckSize(source, nameof(c.NegativeTargetSize), c.NegativeTargetSize);
        CheckCrop(source, nameof(c.CropTopLeft), c.CropTopLeft);
        CheckCrop(source, nameof(c.NegativeCropTopLeft), c.NegativeCropTopLeft);
        CheckScore(source, nameof(c.AestheticScore), c.AestheticScore);
        CheckScore(source, nameof(c.NegativeAestheticScore), c.NegativeAestheticScore);
    }

    /// <summary>
    /// A deliberately rough upper estimate of the activation memory one UNet evaluation needs, in bytes, for a
    /// SDXL-sized UNet: the self-attention score matrices of the highest-resolution transformer level (latent / 2 per
    /// side, 10 heads, float32) plus the feature maps (about 60 tensors of 320 channels at latent resolution), for the
    /// batch doubled by classifier-free guidance. Memory-efficient attention kernels need less; the estimate only has
    /// to separate plausible requests from absurd ones.
    /// </summary>
    public static long EstimateActivationBytes(int batch, bool guidance, int latentHeight, int latentWidth)
    {
        long samples = (long)batch * (guidance ? 2 : 1);
        long tokens = (long)Math.Max(1, latentHeight / 2) * Math.Max(1, latentWidth / 2);
        long attention = samples * 10 * tokens * tokens * sizeof(float);
        long features = samples * 60 * 320 * (long)latentHeight * latentWidth * sizeof(float);
        return attention + features;
    }

    private static void CheckMemory(GenerationRequest r, int width, int height, int vaeScale)
    {
        int lh = height / vaeScale, lw = width / vaeScale;
        long bytes = EstimateActivationBytes(r.BatchSize, r.GuidanceScale > 1, lh, lw);
        if (bytes > MaxActivationBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(r.BatchSize), r.BatchSize,
                $"A {width}x{height} request with BatchSize {r.BatchSize}{(r.GuidanceScale > 1 ? " and guidance (which doubles the UNet batch)" : string.Empty)} "
                + $"would need about {bytes >> 30} GiB of activation memory; at most {MaxActivationBytes >> 30} GiB is accepted. "
                + "Lower the size or the batch (generate several smaller batches).");
        }
    }

    private static void CheckSeeds(GenerationRequest r)
    {
        if (r.Seed is < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(r.Seed), r.Seed, $"Seed must be non-negative (torch.manual_seed takes 0 to 2^63 - 1); got {r.Seed}.");
        }

        if (r.Seeds is not { } seeds)
        {
            return;
        }

        if (seeds.Count != r.BatchSize)
        {
            throw new ArgumentException($"Seeds has {seeds.Count} entries; it must have one per image (BatchSize = {r.BatchSize}).", nameof(r.Seeds));
        }

        for (int i = 0; i < seeds.Count; i++)
        {
            if (seeds[i] < 0)
            {
                throw new ArgumentOutOfRangeException(nameof(r.Seeds), seeds[i], $"Seeds[{i}] is {seeds[i]}; seeds must be non-negative (torch.manual_seed takes 0 to 2^63 - 1).");
            }
        }
    }

    private static void CheckImages(GenerationRequest r)
    {
        if (r.Image is { } image && (image.Width <= 0 || image.Height <= 0))
        {
            throw new ArgumentException($"Image is {image.Width}x{image.Height}; it must have positive sides.", nameof(r.Image));
        }

        if (r.Mask is { } mask && r.Image is { } img && (mask.Width != img.Width || mask.Height != img.Height))
        {
            throw new ArgumentException(
                $"Mask is {mask.Width}x{mask.Height} but Image is {img.Width}x{img.Height}; the mask must have the image's size, so that it covers the same pixels.",
                nameof(r.Mask));
        }
    }

    private static void CheckPromptOptions(GenerationRequest r)
    {
        if (!Enum.IsDefined(r.PromptSyntax))
        {
            throw new ArgumentOutOfRangeException(nameof(r.PromptSyntax), r.PromptSyntax, "Unknown PromptSyntax: expected Plain or Weighted.");
        }

        if (!Enum.IsDefined(r.PromptWeighting))
        {
            throw new ArgumentOutOfRangeException(nameof(r.PromptWeighting), r.PromptWeighting, "Unknown PromptWeighting: expected Automatic1111, NoMeanRestore or ComfyUI.");
        }

        if (r.PromptWeighting != Text.PromptWeighting.Automatic1111 && r.PromptSyntax != Text.PromptSyntax.Weighted)
        {
            throw new ArgumentException($"PromptWeighting {r.PromptWeighting} applies to PromptSyntax.Weighted; the request's syntax is {r.PromptSyntax}.", nameof(r.PromptWeighting));
        }

        if (r.ClipSkip is < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(r.ClipSkip), r.ClipSkip, $"ClipSkip must be 0 or more (layers skipped before the penultimate one); got {r.ClipSkip}.");
        }
    }

    private static void CheckPromptText(string name, string? text)
    {
        if (text is null)
        {
            return;
        }

        if (text.Length > MaxPromptLength)
        {
            throw new ArgumentException($"{name} has {text.Length} characters; at most {MaxPromptLength} are accepted (CLIP reads only the first 75 tokens).", name);
        }

        // A lone UTF-16 surrogate has no UTF-8 form: the tokenizer would silently read U+FFFD instead.
        bool visible = false, control = false;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                visible = true;
                i++;
                continue;
            }

            if (char.IsSurrogate(c))
            {
                throw new ArgumentException($"{name} contains a lone UTF-16 surrogate (U+{(int)c:X4}) at index {i}; prompts must be valid Unicode text.", name);
            }

            if (char.IsControl(c) && !char.IsWhiteSpace(c))
            {
                control = true;
            }
            else if (!char.IsWhiteSpace(c))
            {
                visible = true;
            }
        }

        // Text made only of control characters (NULs, escapes) and spaces is no prompt: CLIP would read nothing.
        if (control && !visible)
        {
            throw new ArgumentException($"{name} consists only of control characters (such as NUL) and whitespace; give printable text.", name);
        }
    }

    private static void CheckSide(string name, int value, int multiple)
    {
        if (value < multiple || value > MaxSide || value % multiple != 0)
        {
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be a multiple of {multiple} between {multiple} and {MaxSide} pixels; got {value}.");
        }
    }

    private static void CheckSize(string source, string name, ImageSize? size)
    {
        if (size is { } s && (s.Width <= 0 || s.Height <= 0 || s.Width > MaxConditioningValue || s.Height > MaxConditioningValue))
        {
            throw new ArgumentOutOfRangeException(name, s, $"{source}.{name} must have sides from 1 to {MaxConditioningValue} pixels; got {s}.");
        }
    }

    private static void CheckCrop(string source, string name, CropCoordinates? crop)
    {
        if (crop is { } c && (c.Top < 0 || c.Left < 0 || c.Top > MaxConditioningValue || c.Left > MaxConditioningValue))
        {
            throw new ArgumentOutOfRangeException(name, c, $"{source}.{name} must be TOP,LEFT with values from 0 to {MaxConditioningValue}; got {c}.");
        }
    }

    private static void CheckScore(string source, string name, double? score)
    {
        if (score is { } s && !double.IsFinite(s))
        {
            throw new ArgumentOutOfRangeException(name, s, $"{source}.{name} must be a finite number; got {Format(s)}.");
        }
    }

    private static string Format(double value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Format(float value) => value.ToString(CultureInfo.InvariantCulture);
}
