using System.Globalization;
using System.Text;
using System.Text.Json;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;
using Sdxl.Net.Runtime;

namespace Sdxl.Net.Imaging;

/// <summary>
/// The generation recipe stored in PNG text chunks: <c>parameters</c> in the format most Stable Diffusion tools read
/// (prompt, negative prompt, steps, sampler, CFG scale, seed, size, model) and <c>sdxl-net</c> with the exact request as JSON.
/// </summary>
public static class ImageRecipe
{
    /// <summary>The text chunk keyword of the widely used human-readable recipe.</summary>
    public const string ParametersKeyword = "parameters";

    /// <summary>The text chunk keyword of the exact request (JSON).</summary>
    public const string RequestKeyword = "sdxl-net";

    internal static void Attach(Image image, GenerationResult result, GeneratedImage generated)
    {
        var png = image.Metadata.GetPngMetadata();
        png.TextData.Add(new PngTextData(ParametersKeyword, FormatParameters(result, generated), string.Empty, string.Empty));
        png.TextData.Add(new PngTextData(RequestKeyword, ToJson(result, generated), string.Empty, string.Empty));
    }

    /// <summary>The <c>parameters</c> text: prompt, then "Negative prompt: …", then a line of "Key: value" pairs.</summary>
    public static string FormatParameters(GenerationResult result, GeneratedImage image)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(image);
        var r = result.Request;
        var sb = new StringBuilder(r.Prompt);
        if (r.NegativePrompt is not null)
        {
            sb.Append("\nNegative prompt: ").Append(r.NegativePrompt);
        }

        var (sampler, scheduleType) = A1111Sampler.For(result.Scheduler, result.Provenance?.Scheduler);
        sb.Append(CultureInfo.InvariantCulture, $"\nSteps: {r.Steps}, Sampler: {sampler}, ");
        if (scheduleType is not null)
        {
            sb.Append(CultureInfo.InvariantCulture, $"Schedule type: {scheduleType}, ");
        }

        sb.Append(CultureInfo.InvariantCulture, $"CFG scale: {r.GuidanceScale}, ");
        if (image.Seed is { } seed)
        {
            sb.Append(CultureInfo.InvariantCulture, $"Seed: {seed}, ");
        }

        sb.Append(CultureInfo.InvariantCulture, $"Size: {image.Width}x{image.Height}, Model: {result.Model}");
        if (r.GuidanceRescale > 0)
        {
            sb.Append(CultureInfo.InvariantCulture, $", CFG rescale: {r.GuidanceRescale}");
        }

        if (r.BatchSize > 1)
        {
            sb.Append(CultureInfo.InvariantCulture, $", Batch size: {r.BatchSize}, Batch pos: {image.Index}");
        }

        if (result.Loras.Count > 0)
        {
            sb.Append(", LoRAs: ").AppendJoin(" ", result.Loras.Select(l => string.Create(CultureInfo.InvariantCulture, $"{l.Name}:{l.Weight}")));
        }

        AppendPromptLanguage(sb, r, result);

        // AUTOMATIC1111's ControlNet entries: one quoted group per unit.
        foreach (var (unit, i) in ControlNetBlock(result).Select((u, i) => (u, i)))
        {
            sb.Append(CultureInfo.InvariantCulture, $", ControlNet {i}: \"Model: {unit.Net}, Weight: {unit.Scale}, Guidance Start: {unit.GuidanceStart}, Guidance End: {unit.GuidanceEnd}\"");
        }

        if (r.Image is not null)
        {
            sb.Append(CultureInfo.InvariantCulture, $", Denoising strength: {r.Strength ?? (r.Mask is not null ? 0.9999 : 0.3)}");
        }

        if (result.Provenance?.Refiner is { } refiner)
        {
            sb.Append(CultureInfo.InvariantCulture, $", Refiner: {refiner.Folder}, Refiner switch at: {refiner.HighNoiseFraction}");
        }

        sb.Append(", Version: Sdxl.Net");
        return sb.ToString();
    }

    /// <summary>The exact request as JSON (initial latents excluded), with the seed actually used.</summary>
    public static string ToJson(GenerationResult result, GeneratedImage image)
    {
        ArgumentNullException.ThrowIfNull(result);
        var r = result.Request;
        var recipe = new RecipeDocument
        {
            Prompt = r.Prompt,
            Prompt2 = r.Prompt2,
            NegativePrompt = r.NegativePrompt,
            NegativePrompt2 = r.NegativePrompt2,
            Width = image.Width,
            Height = image.Height,
            Steps = r.Steps,
            GuidanceScale = r.GuidanceScale,
            GuidanceRescale = r.GuidanceRescale,
            BatchSize = r.BatchSize,
            Seed = result.Seed,
            Seeds = r.Seeds?.ToArray(),
            Scheduler = result.Scheduler,
            HighNoiseFraction = r.HighNoiseFraction,
            Conditioning = r.Conditioning,
            Index = image.Index,
            Model = result.Model,
            InitialLatents = r.InitialLatents is not null,
            InputImage = r.Image is not null,
            Inpainting = r.Mask is not null,
            Strength = r.Strength,
            ControlNet = r.ControlImages is { Count: > 0 } ? new ControlNetRecipe { GuessMode = r.ControlNetGuessMode, Units = ControlNetBlock(result) } : null,
            Loras = RecipeLoras(result),
        };
        AddSettings(recipe, result);
        RecordPromptLanguage(recipe, r, result);

        // Few-step schedules.
        recipe.Eta = r.Eta;
        recipe.Timesteps = r.Timesteps?.ToArray();
        recipe.Sigmas = r.Sigmas?.ToArray();
        recipe.Preset = r.Preset;
        var json = JsonSerializer.Serialize(recipe, RecipeJson.Options);

        // The writer is bounded by what the reader accepts (the JSON is ASCII: every other character is escaped), so
        // every recipe written can be read back. Validated requests stay far below; only an unvalidated one gets here.
        if (json.Length > PngChunks.MaxTextBytes)
        {
            throw new InvalidOperationException($"The recipe is {json.Length} bytes; recipes are limited to {PngChunks.MaxTextBytes} bytes so that ReadRecipe accepts them.");
        }

        return json;
    }

    /// <summary>The recipe's sections beyond the request: one per concern (sampler, refiner, inputs, decoding).</summary>
    private static void AddSettings(RecipeDocument recipe, GenerationResult result)
    {
        var r = result.Request;
        var provenance = result.Provenance;
        recipe.SchedulerSettings = provenance?.Scheduler;

        // use_refiner only where a refiner was configured: true with the refiner section when it ran, false when the
        // request turned it off. A recipe without a refiner never claims one.
        recipe.Refiner = provenance?.Refiner;
        recipe.UseRefiner = provenance is { RefinerConfigured: true } ? provenance.Refiner is not null : null;
        recipe.VaeTiling = provenance?.VaeTiling;
        if (r.Image is not null || r.Mask is not null || r.InitialLatents is not null)
        {
            recipe.Inputs = new RecipeInputs(
                r.Image is { } image ? RecipeInputs.Digest(image) : null,
                r.Mask is { } mask ? RecipeInputs.Digest(mask) : null,
                r.InitialLatents is { } latents ? RecipeInputs.Digest(latents.Span) : null,
                r.ResizeMode,
                r.VaeSampling);
        }
    }

    /// <summary>Reads the exact request back from a PNG written by <see cref="PngFileSink"/>; <see langword="null"/> when it has none.</summary>
    /// <remarks>Inputs that are not stored (initial latents, input image and mask) must be supplied again; see <see cref="ReadRecipe"/>.</remarks>
    /// <exception cref="FormatException">The chunk exists but is not a valid recipe.</exception>
    public static GenerationRequest? ReadRequest(string pngPath) => ReadRecipe(pngPath)?.Request;

    /// <summary>Reads the recipe of a PNG written by <see cref="PngFileSink"/>, with what it needs besides the request; <see langword="null"/> when it has none.</summary>
    /// <exception cref="FormatException">The chunk exists but is not a valid recipe.</exception>
    public static StoredRecipe? ReadRecipe(string pngPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(pngPath);

        // The file may be untrusted: read a bounded number of bytes and walk the chunks ourselves, inflating only the
        // recipe chunk and only up to a limit, so a decompression bomb in a text chunk cannot exhaust memory.
        var info = FileAccessCheck.ResolveOrSelf(pngPath);
        if (!info.Exists)
        {
            throw new FileNotFoundException($"Image not found: '{pngPath}'.", pngPath);
        }

        if (info.Length > MaxRecipeFileBytes)
        {
            throw new FormatException($"'{pngPath}' is {info.Length} bytes; recipes are read from PNG files up to {MaxRecipeFileBytes} bytes.");
        }

        var bytes = File.ReadAllBytes(pngPath);
        if (!PngChunks.HasSignature(bytes))
        {
            throw new FormatException($"'{pngPath}' is not a PNG file; recipes are stored in PNG text chunks.");
        }

        var text = PngChunks.ReadText(bytes, RequestKeyword, $"'{pngPath}'");
        if (text is null)
        {
            return null;
        }

        RecipeDocument? doc;
        try
        {
            doc = JsonSerializer.Deserialize<RecipeDocument>(text, RecipeJson.Options);
        }
        catch (JsonException e)
        {
            throw new FormatException($"'{pngPath}': the '{RequestKeyword}' chunk is not a valid recipe: {e.Message}", e);
        }

        if (doc?.Prompt is null)
        {
            throw new FormatException($"'{pngPath}': the '{RequestKeyword}' chunk has no prompt.");
        }

        var inputs = doc.Inputs;
        return new StoredRecipe(ReadPromptLanguage(doc, pngPath, new GenerationRequest
        {
            Prompt = doc.Prompt,
            Prompt2 = doc.Prompt2,
            NegativePrompt = doc.NegativePrompt,
            NegativePrompt2 = doc.NegativePrompt2,
            Width = doc.Width,
            Height = doc.Height,
            Steps = doc.Steps,
            GuidanceScale = doc.GuidanceScale,
            GuidanceRescale = doc.GuidanceRescale,
            BatchSize = doc.BatchSize,
            Seed = doc.Seed,
            Seeds = doc.Seeds,
            Scheduler = doc.SchedulerSettings?.Name ?? doc.Scheduler,
            HighNoiseFraction = doc.HighNoiseFraction,
            UseRefiner = doc.UseRefiner ?? true,
            Conditioning = doc.Conditioning,
            Strength = doc.Strength,
            ControlNetGuessMode = doc.ControlNet?.GuessMode ?? false,

            // Few-step schedules.
            Eta = doc.Eta,
            Timesteps = doc.Timesteps,
            Sigmas = doc.Sigmas,
            Preset = doc.Preset,
            ResizeMode = inputs?.ResizeMode ?? ImageResizeMode.Stretch,
            VaeSampling = inputs?.VaeSampling ?? VaeSampling.Sample,
        }), doc.InitialLatents, doc.InputImage, doc.Inpainting)
        {
            Embeddings = doc.Embeddings ?? [],
            ControlNets = doc.ControlNet?.Units,
            Loras = doc.Loras?.Select(l => new Lora.AppliedLora(l.Name ?? string.Empty, l.Sha256 ?? string.Empty, l.Weight, l.TextEncoderWeight ?? l.Weight)).ToArray() ?? [],
            Scheduler = doc.SchedulerSettings,
            Refiner = doc.Refiner,
            Inputs = inputs,
            VaeTiling = doc.VaeTiling,
        };
    }

    /// <summary>The ControlNet units of a result: net name, effective scale, window and the control image's pixel hash.</summary>
    private static StoredControlNet[] ControlNetBlock(GenerationResult result)
    {
        var r = result.Request;
        if (r.ControlImages is not { Count: > 0 } images)
        {
            return [];
        }

        var units = new StoredControlNet[images.Count];
        for (int i = 0; i < units.Length; i++)
        {
            var c = images[i];
            units[i] = new StoredControlNet(
                result.ControlNets?[i] ?? c.ControlNet ?? string.Empty,
                c.Scale ?? ControlNet.ControlNetStage.DefaultScale(r),
                c.GuidanceStart,
                c.GuidanceEnd,
                ControlNet.ControlNetStage.PixelHash(c.Image));
        }

        return units;
    }

    // The prompt language (syntax, weighting, clip skip): A1111-style "Clip skip" in the parameters text, and fields
    // written to the JSON only when they differ from the defaults, so plain recipes stay as they were.
    private static void AppendPromptLanguage(StringBuilder sb, GenerationRequest r, GenerationResult result)
    {
        if (result.Embeddings.Count > 0)
        {
            sb.Append(", Embeddings: ").AppendJoin(", ", result.Embeddings.Select(e => e.Token));
        }

        if (r.PromptSyntax != Text.PromptSyntax.Plain)
        {
            sb.Append(CultureInfo.InvariantCulture, $", Prompt syntax: {r.PromptSyntax}");
            if (r.PromptWeighting != Text.PromptWeighting.Automatic1111)
            {
                sb.Append(CultureInfo.InvariantCulture, $", Prompt weighting: {r.PromptWeighting}");
            }
        }

        if (r.ClipSkip is { } clipSkip and > 0)
        {
            sb.Append(CultureInfo.InvariantCulture, $", Clip skip: {clipSkip}");
        }
    }

    private static void RecordPromptLanguage(RecipeDocument recipe, GenerationRequest r, GenerationResult result)
    {
        recipe.Embeddings = result.Embeddings.Count > 0 ? result.Embeddings.ToArray() : null;
        recipe.PromptSyntax = r.PromptSyntax == Text.PromptSyntax.Plain ? null : r.PromptSyntax.ToString();
        recipe.PromptWeighting = r.PromptWeighting == Text.PromptWeighting.Automatic1111 ? null : r.PromptWeighting.ToString();
        recipe.ClipSkip = r.ClipSkip;
    }

    private static GenerationRequest ReadPromptLanguage(RecipeDocument doc, string pngPath, GenerationRequest request)
    {
        var syntax = Text.PromptSyntax.Plain;
        var weighting = Text.PromptWeighting.Automatic1111;
        if ((doc.PromptSyntax is { } s && !Enum.TryParse(s, ignoreCase: false, out syntax))
            || (doc.PromptWeighting is { } w && !Enum.TryParse(w, ignoreCase: false, out weighting)))
        {
            throw new FormatException($"'{pngPath}': the '{RequestKeyword}' chunk names an unknown prompt syntax or weighting ('{doc.PromptSyntax}', '{doc.PromptWeighting}').");
        }

        return request with { PromptSyntax = syntax, PromptWeighting = weighting, ClipSkip = doc.ClipSkip };
    }

    /// <summary>The largest PNG a recipe is read from (256 MiB).</summary>
    private const long MaxRecipeFileBytes = 256L << 20;

    internal sealed class RecipeDocument
    {
        public string? Prompt { get; set; }
        public string? Prompt2 { get; set; }
        public string? NegativePrompt { get; set; }
        public string? NegativePrompt2 { get; set; }
        public int Width { get; set; }
        public int Height { get; set; }
        public int Steps { get; set; }
        public float GuidanceScale { get; set; }
        public float GuidanceRescale { get; set; }
        public int BatchSize { get; set; } = 1;
        public long? Seed { get; set; }
        public long[]? Seeds { get; set; }
        public string? Scheduler { get; set; }
        public double? HighNoiseFraction { get; set; }
        public bool? UseRefiner { get; set; }
        public Conditioning.MicroConditioning? Conditioning { get; set; }
        public int Index { get; set; }
        public string? Model { get; set; }
        public bool InitialLatents { get; set; }
        public bool InputImage { get; set; }
        public bool Inpainting { get; set; }
        public double? Strength { get; set; }
        public List<RecipeLora>? Loras { get; set; }
        public RecipeScheduler? SchedulerSettings { get; set; }
        public RecipeRefiner? Refiner { get; set; }
        public RecipeInputs? Inputs { get; set; }
        public TiledVaeOptions? VaeTiling { get; set; }

        // Few-step schedules.
        public float? Eta { get; set; }
        public double[]? Timesteps { get; set; }
        public double[]? Sigmas { get; set; }
        public string? Preset { get; set; }

        // The prompt language.
        public string? PromptSyntax { get; set; }
        public string? PromptWeighting { get; set; }
        public int? ClipSkip { get; set; }
        public Text.AppliedEmbedding[]? Embeddings { get; set; }

        public ControlNetRecipe? ControlNet { get; set; }
    }

    internal sealed class ControlNetRecipe
    {
        public bool GuessMode { get; set; }
        public StoredControlNet[]? Units { get; set; }
    }

    /// <summary>One adapter in the recipe: file name, SHA-256 and weights (the file itself is not stored).</summary>
    internal sealed class RecipeLora
    {
        public string? Name { get; set; }
        public string? Sha256 { get; set; }
        public double Weight { get; set; }
        public double? TextEncoderWeight { get; set; }
    }

    private static List<RecipeLora>? RecipeLoras(GenerationResult result) =>
        result.Loras.Count == 0 ? null : result.Loras.Select(l => new RecipeLora
        {
            Name = l.Name,
            Sha256 = l.Sha256,
            Weight = l.Weight,
            TextEncoderWeight = l.TextEncoderWeight == l.Weight ? null : l.TextEncoderWeight,
        }).ToList();

    private static class RecipeJson
    {
        public static readonly JsonSerializerOptions Options = new()
        {
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
            Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        };
    }
}

/// <summary>A recipe read back from a PNG.</summary>
/// <param name="Request">The request (without initial latents, input image or mask, which are not stored).</param>
/// <param name="UsedInitialLatents">Whether the generation started from given initial latents, which must be given again.</param>
/// <param name="UsedInputImage">Whether it was image-to-image or inpainting, whose input image must be given again.</param>
/// <param name="UsedMask">Whether it was inpainting, whose mask must be given again.</param>
public sealed record StoredRecipe(GenerationRequest Request, bool UsedInitialLatents, bool UsedInputImage, bool UsedMask)
{
    /// <summary>The LoRA adapters the image was made with (file names and hashes: the files must be supplied again).</summary>
    public IReadOnlyList<Lora.AppliedLora> Loras { get; init; } = [];

    /// <summary>The textual-inversion embeddings the generation used; a pipeline must be given the same files again.</summary>
    public IReadOnlyList<Text.AppliedEmbedding> Embeddings { get; init; } = [];

    /// <summary>The ControlNet units the image was made with (their control images are not stored and must be given again); <see langword="null"/> without ControlNet.</summary>
    public IReadOnlyList<StoredControlNet>? ControlNets { get; init; }
    /// <summary>The sampler and its configuration changes, or <see langword="null"/> in recipes written before they were stored.</summary>
    public RecipeScheduler? Scheduler { get; init; }

    /// <summary>The refiner that ran, or <see langword="null"/> when none did.</summary>
    public RecipeRefiner? Refiner { get; init; }

    /// <summary>Digests of the input image, mask and initial latents, and how the image was prepared; <see langword="null"/> for text-to-image.</summary>
    public RecipeInputs? Inputs { get; init; }

    /// <summary>The tiled VAE decode settings, or <see langword="null"/> when the VAE decoded in one piece.</summary>
    public TiledVaeOptions? VaeTiling { get; init; }
}

/// <summary>One ControlNet unit of a stored recipe.</summary>
/// <param name="Net">The ControlNet's name (by default its folder's name).</param>
/// <param name="Scale">The conditioning scale used.</param>
/// <param name="GuidanceStart">diffusers' control_guidance_start.</param>
/// <param name="GuidanceEnd">diffusers' control_guidance_end.</param>
/// <param name="ImageSha256">The SHA-256 of the control image's RGB pixels (row-major, 8 bits per channel), to check that the same image is given again.</param>
public sealed record StoredControlNet(string Net, double Scale, double GuidanceStart, double GuidanceEnd, string ImageSha256);
