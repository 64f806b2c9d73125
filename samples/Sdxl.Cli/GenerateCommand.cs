using System.Globalization;
using Sdxl.Net;
using Sdxl.Net.Conditioning;
using Sdxl.Net.Imaging;
using Sdxl.Net.Runtime;

namespace Sdxl.Cli;

/// <summary><c>sdxl generate</c>: one text-to-image run with diffusers' argument meanings.</summary>
internal static class GenerateCommand
{
    /// <summary>Pixels per latent cell of SDXL's VAE.</summary>
    private const int LatentScale = 8;

    /// <summary>Runs <c>generate</c>, <c>img2img</c> (with <c>--image</c>) or <c>inpaint</c> (with <c>--image</c> and <c>--mask</c>).</summary>
    public static async Task<int> RunAsync(CliArguments options, string command, TextWriter stdout, TextWriter stderr, CancellationToken ct)
    {
        var model = CliApp.ModelPath(options);
        bool needsImage = command is "img2img" or "inpaint";
        var output = options.Required("output");
        var outputSink = OutputSinks.For(output);

        var outputDir = Path.GetDirectoryName(Path.GetFullPath(output))!;
        if (!Directory.Exists(outputDir))
        {
            throw new UsageException($"--output: directory does not exist: '{outputDir}'");
        }

        GenerationRequest? fromImage = null;
        RecipeReplay? replay = null;
        if (options.Optional("from-image") is { } recipePng)
        {
            if (!File.Exists(recipePng))
            {
                throw new UsageException($"--from-image: file not found: '{recipePng}'");
            }

            var recipe = ImageRecipe.ReadRecipe(recipePng) ?? throw new UsageException($"--from-image: '{recipePng}' carries no Sdxl.Net recipe");
            if (recipe.UsedInitialLatents && options.Optional("latents") is null)
            {
                throw new UsageException($"--from-image: '{recipePng}' was generated from given initial latents; pass the same --latents FILE");
            }

            if (recipe.UsedInputImage && !needsImage)
            {
                throw new UsageException($"--from-image: '{recipePng}' was made by {(recipe.UsedMask ? "inpaint" : "img2img")}; use that command with the same --image{(recipe.UsedMask ? " and --mask" : string.Empty)}");
            }

            if (recipe.ControlNets is { Count: > 0 } units && options.All("controlnet").Count == 0)
            {
                throw new UsageException($"--from-image: '{recipePng}' was made with ControlNet ({string.Join(", ", units.Select(u => u.Net))}); pass the same --controlnet and --control-image options");
            }

            fromImage = recipe.Request;
            replay = new RecipeReplay(recipePng, recipe);
            var missing = recipe.Embeddings.Where(e => !options.All("embedding").Any(given => EmbeddingArgument(given).Token == e.Token)).ToArray();
            if (missing.Length > 0)
            {
                throw new UsageException($"--from-image: '{recipePng}' used the embedding(s) {string.Join(", ", missing.Select(e => $"{e.Token} ({e.FileName})"))}; pass the same --embedding FILE:TOKEN");
            }
        }

        var prompt = options.Optional("prompt") ?? fromImage?.Prompt ?? throw new UsageException("--prompt is required");
        var width = options.Int("width", 1, 65536) ?? fromImage?.Width;
        var height = options.Int("height", 1, 65536) ?? fromImage?.Height;
        // Without --steps/--guidance (and no preset) the library's defaults apply (diffusers': 50 steps, guidance 5).
        var fewStep = FewStepOptions.Parse(options);
        var preview = PreviewWriter.Parse(options);
        var steps = options.Int("steps", 1, 1000) ?? fewStep.ListSteps ?? fewStep.Preset?.Steps ?? fromImage?.Steps ?? LibraryDefaults.Steps;
        var guidance = options.Double("guidance", 0, 100) ?? fewStep.Preset?.GuidanceScale ?? fromImage?.GuidanceScale ?? LibraryDefaults.GuidanceScale;
        var batch = options.Int("batch", 1, 64) ?? fromImage?.BatchSize ?? 1;
        var extension = Path.GetExtension(output).ToLowerInvariant();
        CheckOutputName(extension == ".png" ? PngFileSink.PathFor(output, batch - 1, batch) : output);
        var device = options.Optional("device") ?? "cpu";
        ExecutionProviderOptions provider;
        try
        {
            provider = ExecutionProviderOptions.Parse(device);
        }
        catch (FormatException e)
        {
            throw new UsageException($"--device: {e.Message}");
        }

        ReadOnlyMemory<float>? latents = null;
        if (options.Optional("latents") is { } latentsPath)
        {
            if (!File.Exists(latentsPath))
            {
                throw new UsageException($"--latents: file not found: '{latentsPath}'");
            }

            float[] data;
            int[] shape;
            try
            {
                (data, shape) = NpyFile.Read(latentsPath);
            }
            catch (FormatException e)
            {
                throw new UsageException($"--latents: {e.Message}");
            }

            // The array must be [batch, 4, H/8, W/8]; without --width/--height the size follows from it. (Checking the
            // value count alone would accept a transposed [1, 4, 16, 8] for a 64x128 image.)
            if (shape.Length != 4 || shape[0] != batch || shape[1] != 4 || shape[2] < 1 || shape[3] < 1
                || (height is { } h && shape[2] * LatentScale != h) || (width is { } w && shape[3] * LatentScale != w))
            {
                var expectedH = height is { } eh ? (eh / LatentScale).ToString(CultureInfo.InvariantCulture) : "H/8";
                var expectedW = width is { } ew ? (ew / LatentScale).ToString(CultureInfo.InvariantCulture) : "W/8";
                throw new UsageException($"--latents: expected a float32 array [{batch}, 4, {expectedH}, {expectedW}]; found shape [{string.Join(", ", shape)}] in '{latentsPath}'");
            }

            height ??= shape[2] * LatentScale;
            width ??= shape[3] * LatentScale;
            latents = data;
        }

        var aesthetic = options.Double("aesthetic-score", -1000, 1000);
        var negativeAesthetic = options.Double("negative-aesthetic-score", -1000, 1000);
        var conditioning = new MicroConditioning
        {
            OriginalSize = options.Size("original-size"),
            CropTopLeft = options.Crop("crop"),
            TargetSize = options.Size("target-size"),
            NegativeOriginalSize = options.Size("negative-original-size"),
            NegativeCropTopLeft = options.Crop("negative-crop"),
            NegativeTargetSize = options.Size("negative-target-size"),
            AestheticScore = aesthetic,
            NegativeAestheticScore = negativeAesthetic,
        };
        conditioning = (fromImage?.Conditioning ?? new MicroConditioning()).Merge(conditioning);

        var refinerDir = options.Optional("refiner") is { } refiner ? HubCommands.ResolveModel(refiner, "refiner") : null;

        replay?.CheckRefiner(refinerDir);
        var highNoise = options.Double("high-noise-fraction", 0, 1);
        if (highNoise is <= 0 or >= 1)
        {
            throw new UsageException($"--high-noise-fraction must be strictly between 0 and 1; got {highNoise.Value.ToString(CultureInfo.InvariantCulture)}");
        }


        SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24>? image = null;
        SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24>? mask = null;
        double? strength = options.Double("strength", 0, 1) ?? fromImage?.Strength;
        if (needsImage)
        {
            image = LoadImage(options.Required("image"), "--image");
            if (command == "inpaint")
            {
                mask = LoadImage(options.Required("mask"), "--mask");
            }

            replay?.CheckInput(image, "--image", replay.Recipe.Inputs?.ImageSha256);
            replay?.CheckInput(mask, "--mask", replay.Recipe.Inputs?.MaskSha256);
            if (strength is <= 0)
            {
                throw new UsageException("--strength must be greater than 0 and at most 1");
            }
        }
        else if (strength is not null || options.Optional("image") is not null || options.Optional("mask") is not null)
        {
            throw new UsageException($"--image, --mask and --strength belong to the img2img and inpaint commands, not {command}");
        }

        var vaeSampling = options.Optional("vae-sampling") switch
        {
            null => fromImage?.VaeSampling ?? VaeSampling.Sample,
            "sample" => VaeSampling.Sample,
            "mean" => VaeSampling.Mean,
            var other => throw new UsageException($"--vae-sampling must be sample or mean; got '{other}'"),
        };
        var resize = options.Optional("resize") switch
        {
            null => fromImage?.ResizeMode ?? ImageResizeMode.Stretch,
            "stretch" => ImageResizeMode.Stretch,
            "crop" => ImageResizeMode.CenterCrop,
            "pad" => ImageResizeMode.Pad,
            var other => throw new UsageException($"--resize must be stretch, crop or pad; got '{other}'"),
        };
        using var controlNets = ControlNetOptions.Parse(options);
        var scheduler = options.Optional("scheduler") ?? fewStep.Preset?.Scheduler ?? fromImage?.Scheduler;
        var seed = options.Long("seed", 0, long.MaxValue);
        long[]? seedList = null;
        if (options.Optional("seeds") is { } seedsText)
        {
            if (seed is not null)
            {
                throw new UsageException("give either --seed (one generator for the batch) or --seeds (one per image), not both");
            }

            var parts = seedsText.Split(',', StringSplitOptions.TrimEntries);
            seedList = new long[parts.Length];
            for (int i = 0; i < parts.Length; i++)
            {
                if (!long.TryParse(parts[i], System.Globalization.NumberStyles.None, CultureInfo.InvariantCulture, out seedList[i]))
                {
                    throw new UsageException($"--seeds must be non-negative integers separated by commas, one per image; got '{seedsText}'");
                }
            }
        }
        var spacing = options.Optional("timestep-spacing");
        if (spacing is not null and not ("leading" or "trailing" or "linspace"))
        {
            throw new UsageException($"--timestep-spacing must be leading, trailing or linspace; got '{spacing}'");
        }

        bool karras = options.Flag("karras");
        var memoryMode = options.Optional("memory-mode") switch
        {
            null or "keep" => MemoryMode.KeepLoaded,
            "per-phase" => MemoryMode.LoadPerPhase,
            var other => throw new UsageException($"--memory-mode must be keep or per-phase; got '{other}'"),
        };
        var loras = options.All("lora").Select(LoraCommand.ParseArgument).ToArray();
        bool vaeTiling = options.Flag("vae-tiling");
        bool cudaGraph = options.Flag("cuda-graph");
        bool prepack = !options.Flag("no-prepack");
        if (karras && scheduler is not null && !scheduler.EndsWith("-karras", StringComparison.Ordinal)
            && Sdxl.Net.Schedulers.SchedulerCatalog.Default.Names.Contains(scheduler + "-karras", StringComparer.OrdinalIgnoreCase))
        {
            // Record the Karras variant by its catalog name, so the PNG recipe selects it again.
            scheduler += "-karras";
        }
        var (syntax, weighting) = CliApp.PromptSyntaxOptions(options, fromImage);
        var request = new GenerationRequest
        {
            Prompt = prompt,
            PromptSyntax = syntax,
            PromptWeighting = weighting,
            ClipSkip = options.Int("clip-skip", 0, 64) ?? fromImage?.ClipSkip,
            Prompt2 = options.Optional("prompt-2") ?? fromImage?.Prompt2,
            NegativePrompt = options.Optional("negative-prompt") ?? fromImage?.NegativePrompt,
            NegativePrompt2 = options.Optional("negative-prompt-2") ?? fromImage?.NegativePrompt2,
            Width = width,
            Height = height,
            Steps = steps,
            GuidanceScale = (float)guidance,
            GuidanceRescale = (float)(options.Double("guidance-rescale", 0, 1) ?? fromImage?.GuidanceRescale ?? 0),
            BatchSize = batch,
            Seed = seedList is null ? seed ?? fromImage?.Seed : null,
            Seeds = seedList ?? (seed is null ? fromImage?.Seeds : null),
            InitialLatents = latents,
            Conditioning = conditioning,
            HighNoiseFraction = highNoise ?? fromImage?.HighNoiseFraction,
            UseRefiner = fromImage?.UseRefiner ?? true,
            Image = image,
            Mask = mask,
            Strength = strength,
            ResizeMode = resize,
            VaeSampling = vaeSampling,
            Eta = fewStep.Eta ?? fromImage?.Eta,
            Timesteps = fewStep.Timesteps ?? (fewStep.Sigmas is null ? fromImage?.Timesteps : null),
            Sigmas = fewStep.Sigmas ?? (fewStep.Timesteps is null ? fromImage?.Sigmas : null),
            Preset = fewStep.Preset?.Name ?? fromImage?.Preset,
            Preview = preview?.Options,
            ControlImages = controlNets.Images,
            ControlNetGuessMode = controlNets.GuessMode || (fromImage?.ControlNetGuessMode ?? false),
        };
        var embeddings = options.All("embedding").Select(EmbeddingArgument).ToArray();
        bool verbose = options.Flag("verbose");
        options.RejectUnknown();

        if (cudaGraph && provider.Kind == ExecutionProviderKind.Cpu)
        {
            throw new UsageException("--cuda-graph needs --device cuda[:N] or tensorrt[:N]");
        }

        replay?.CheckLatents(latents);
        var builder = SdxlPipeline.CreateBuilder().WithModel(model)
            .UseExecutionProvider(provider with { EnableCudaGraph = cudaGraph, PrepackWeights = prepack })
            .WithMemoryMode(memoryMode);
        if (vaeTiling)
        {
            builder.WithTiledVae();
        }

        foreach (var embedding in embeddings)
        {
            builder.AddEmbedding(embedding.Path, embedding.Token);
        }

        replay?.Apply(builder, vaeTiling);

        if (scheduler is not null)
        {
            builder.WithScheduler(scheduler);
        }

        if (spacing is not null)
        {
            builder.ConfigureScheduler(c => c.With("timestep_spacing", spacing));
        }

        if (karras)
        {
            builder.ConfigureScheduler(c => c.With("use_karras_sigmas", true));
        }

        if (refinerDir is not null)
        {
            builder.WithRefiner(refinerDir, replay?.RefinerOptions(highNoise, aesthetic, negativeAesthetic) ?? new RefinerOptions
            {
                HighNoiseFraction = highNoise ?? 0.8,
                AestheticScore = aesthetic ?? 6.0,
                NegativeAestheticScore = negativeAesthetic ?? 2.5,
            });
        }

        controlNets.AddTo(builder);
        // One generation: the adapters are merged into the pipeline's sessions when it is built (no second session set).
        foreach (var lora in loras)
        {
            builder.AddLora(lora.Path, lora.Weight);
        }

        builder.AddSink(outputSink);
        using var disposeImage = image;
        using var disposeMask = mask;
        using var pipeline = builder.Build(ct);
        var result = await ProgressDisplay.RunAsync(stderr, verbose, progress => pipeline.GenerateAsync(request, preview is { } p ? new PreviewWriter(progress, p.Directory) : progress, ct)).ConfigureAwait(false);
        foreach (var warning in result.Warnings)
        {
            stderr.WriteLine($"sdxl: warning: {warning}");
        }

        stderr.Flush();
        var files = OutputSinks.FilesWritten(output, result.Images.Count);
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"wrote {string.Join(", ", files)} ({result.Images.Count} image(s), {result.Scheduler}, seed {result.Seed?.ToString(CultureInfo.InvariantCulture) ?? "per-image"}, {result.Elapsed.TotalSeconds:0.00} s)"));
        return CliApp.Ok;
    }

    /// <summary>Refuses an output name the file system would refuse only after the whole generation (NAME_MAX, 255 bytes).</summary>
    private static void CheckOutputName(string path)
    {
        var name = Path.GetFileName(path);
        int bytes = System.Text.Encoding.UTF8.GetByteCount(name);
        if (bytes > 255)
        {
            throw new UsageException($"--output: the file name '{name}' is {bytes} bytes (with the batch suffix); file systems allow at most 255");
        }
    }

    /// <summary>
    /// Parses <c>FILE[:TOKEN]</c>: the token follows the last colon when that part names no path (so <c>C:\e.safetensors</c>
    /// stays a path); without one the trigger word is the file name, as in AUTOMATIC1111.
    /// </summary>
    internal static (string Path, string Token) EmbeddingArgument(string text)
    {
        int colon = text.LastIndexOf(':');
        bool hasToken = colon > 0 && colon < text.Length - 1 && text.AsSpan(colon + 1).IndexOfAny('/', '\\') < 0 && !File.Exists(text);
        var path = hasToken ? text[..colon] : text;
        var token = hasToken ? text[(colon + 1)..] : Path.GetFileNameWithoutExtension(path);
        if (!File.Exists(path))
        {
            throw new UsageException($"--embedding: file not found: '{path}'");
        }

        if (token.Length == 0 || token.Any(char.IsWhiteSpace))
        {
            throw new UsageException($"--embedding: the trigger word must be one word without spaces; got '{token}'");
        }

        return (path, token);
    }

    /// <summary>Loads an input image with the library's limits; a missing or undecodable file is a usage error naming <paramref name="flag"/>.</summary>
    internal static SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24> LoadImage(string path, string flag)
    {
        if (!File.Exists(path))
        {
            throw new UsageException($"{flag}: file not found: '{path}'");
        }

        try
        {
            return ImageInput.Load(path);
        }
        catch (InvalidDataException e)
        {
            throw new UsageException($"{flag}: {e.Message}");
        }
    }
}
