using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.AI;
using Sdxl.Net.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Sdxl.Net.Extensions.AI;

/// <summary>
/// An <see cref="IImageGenerator"/> over an <see cref="SdxlPipeline"/>, so SDXL plugs into Microsoft.Extensions.AI
/// middleware (logging, telemetry, caching) and into code written against the abstraction.
/// </summary>
/// <remarks>
/// <para>Mapping: <see cref="ImageGenerationRequest.Prompt"/> → <see cref="GenerationRequest.Prompt"/>;
/// <see cref="ImageGenerationOptions.ImageSize"/> → width and height; <see cref="ImageGenerationOptions.Count"/> →
/// batch size; one image in <see cref="ImageGenerationRequest.OriginalImages"/> (a <see cref="DataContent"/> with
/// PNG, JPEG, WebP or BMP bytes) → image-to-image. SDXL settings travel in
/// <see cref="ImageGenerationOptions.AdditionalProperties"/> under the keys of <see cref="PropertyNames"/>.</para>
/// <para>The response holds one <c>image/png</c> <see cref="DataContent"/> per image, each carrying the generation
/// recipe; <see cref="ImageGenerationResponse.RawRepresentation"/> is the <see cref="GenerationResult"/>.</para>
/// <para>The generator does not own the pipeline unless created with <c>ownsPipeline: true</c>.</para>
/// </remarks>
public sealed class SdxlImageGenerator : IImageGenerator
{
    /// <summary>The provider name reported in <see cref="ImageGeneratorMetadata"/>.</summary>
    public const string ProviderName = "sdxl-net";

    private readonly SdxlPipeline _pipeline;
    private readonly SdxlImageGeneratorOptions _options;
    private readonly bool _ownsPipeline;
    private readonly ImageGeneratorMetadata _metadata;

    /// <summary>Creates a generator over <paramref name="pipeline"/>.</summary>
    /// <param name="pipeline">The pipeline that generates.</param>
    /// <param name="options">Defaults and limits; <see langword="null"/> uses <see cref="SdxlImageGeneratorOptions"/>' defaults.</param>
    /// <param name="ownsPipeline">Whether disposing the generator disposes the pipeline.</param>
    public SdxlImageGenerator(SdxlPipeline pipeline, SdxlImageGeneratorOptions? options = null, bool ownsPipeline = false)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        _pipeline = pipeline;
        _options = options ?? new SdxlImageGeneratorOptions();
        ArgumentNullException.ThrowIfNull(_options.Defaults, "options.Defaults");
        ArgumentNullException.ThrowIfNull(_options.InputImageLimits, "options.InputImageLimits");
        _ownsPipeline = ownsPipeline;
        _metadata = new ImageGeneratorMetadata(ProviderName, providerUri: null, _options.ModelId);
    }

    /// <summary>The keys of <see cref="ImageGenerationOptions.AdditionalProperties"/> the generator reads.</summary>
    public static class PropertyNames
    {
        /// <summary><c>negative_prompt</c> (string) → <see cref="GenerationRequest.NegativePrompt"/>.</summary>
        public const string NegativePrompt = "negative_prompt";

        /// <summary><c>prompt_2</c> (string) → <see cref="GenerationRequest.Prompt2"/>.</summary>
        public const string Prompt2 = "prompt_2";

        /// <summary><c>negative_prompt_2</c> (string) → <see cref="GenerationRequest.NegativePrompt2"/>.</summary>
        public const string NegativePrompt2 = "negative_prompt_2";

        /// <summary><c>steps</c> (integer) → <see cref="GenerationRequest.Steps"/>.</summary>
        public const string Steps = "steps";

        /// <summary><c>guidance_scale</c> (number) → <see cref="GenerationRequest.GuidanceScale"/>.</summary>
        public const string GuidanceScale = "guidance_scale";

        /// <summary><c>guidance_rescale</c> (number) → <see cref="GenerationRequest.GuidanceRescale"/>.</summary>
        public const string GuidanceRescale = "guidance_rescale";

        /// <summary><c>seed</c> (integer) → <see cref="GenerationRequest.Seed"/>.</summary>
        public const string Seed = "seed";

        /// <summary><c>scheduler</c> (string, a catalog name such as <c>euler-a</c>) → <see cref="GenerationRequest.Scheduler"/>.</summary>
        public const string Scheduler = "scheduler";

        /// <summary><c>strength</c> (number in (0, 1]; image-to-image) → <see cref="GenerationRequest.Strength"/>.</summary>
        public const string Strength = "strength";

        /// <summary><c>use_refiner</c> (boolean) → <see cref="GenerationRequest.UseRefiner"/>.</summary>
        public const string UseRefiner = "use_refiner";

        internal static readonly string[] All = [NegativePrompt, Prompt2, NegativePrompt2, Steps, GuidanceScale, GuidanceRescale, Seed, Scheduler, Strength, UseRefiner];
    }

    /// <summary>The pipeline this generator runs.</summary>
    public SdxlPipeline Pipeline => _pipeline;

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The request or an option is invalid; the message names it and what is allowed.</exception>
    /// <exception cref="NotSupportedException">An option asks for something SDXL cannot do here (URI output, several input images, …).</exception>
    public async Task<ImageGenerationResponse> GenerateAsync(ImageGenerationRequest request, ImageGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        Image<Rgb24>? input = null;
        try
        {
            input = LoadOriginalImage(request);
            var generation = CreateRequest(request, options, input);
            var result = await _pipeline.GenerateAsync(generation, cancellationToken).ConfigureAwait(false);
            var buffers = new MemoryStream[result.Images.Count];
            await new StreamImageSink((_, image, _) => ValueTask.FromResult<Stream>(buffers[image.Index] = new MemoryStream()), leaveOpen: true)
                .WriteAsync(result, cancellationToken).ConfigureAwait(false);
            var contents = new List<AIContent>(buffers.Length);
            for (int i = 0; i < buffers.Length; i++)
            {
                contents.Add(new DataContent(buffers[i].ToArray(), "image/png") { Name = $"image-{i}.png" });
            }

            return new ImageGenerationResponse(contents) { RawRepresentation = result };
        }
        finally
        {
            input?.Dispose();
        }
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        return serviceKey is not null ? null
            : serviceType == typeof(ImageGeneratorMetadata) ? _metadata
            : serviceType == typeof(SdxlImageGeneratorOptions) ? _options
            : serviceType.IsInstanceOfType(_pipeline) ? _pipeline
            : serviceType.IsInstanceOfType(this) ? this
            : null;
    }

    /// <summary>Disposes the pipeline when the generator owns it.</summary>
    public void Dispose()
    {
        if (_ownsPipeline)
        {
            _pipeline.Dispose();
        }
    }

    /// <summary>Builds the pipeline request for an abstraction-level request (exposed to tests).</summary>
    internal GenerationRequest CreateRequest(ImageGenerationRequest request, ImageGenerationOptions? options, Image<Rgb24>? input)
    {
        if (string.IsNullOrWhiteSpace(request.Prompt))
        {
            throw new ArgumentException("ImageGenerationRequest.Prompt is required: SDXL generates from a text prompt.", nameof(request));
        }

        var r = _options.Defaults with { Prompt = request.Prompt, Image = input };
        if (options is null)
        {
            return r;
        }

        if (options.ResponseFormat is { } format && format != ImageGenerationResponseFormat.Data)
        {
            throw new NotSupportedException($"ResponseFormat {format} is not supported: images are generated locally and returned as data (ImageGenerationResponseFormat.Data).");
        }

        if (options.MediaType is { } mediaType && !string.Equals(mediaType, "image/png", StringComparison.OrdinalIgnoreCase))
        {
            throw new NotSupportedException($"MediaType '{mediaType}' is not supported: the generator returns image/png.");
        }

        if (options.StreamingCount is > 0)
        {
            throw new NotSupportedException("StreamingCount is not supported: the generator returns finished images only.");
        }

        if (options.ImageSize is { } size)
        {
            if (size.Width <= 0 || size.Height <= 0)
            {
                throw new ArgumentException($"ImageSize must be positive; got {size.Width}x{size.Height}.", nameof(options));
            }

            r = r with { Width = size.Width, Height = size.Height };
        }

        if (options.Count is { } count)
        {
            if (count < 1)
            {
                throw new ArgumentException($"Count must be at least 1; got {count}.", nameof(options));
            }

            r = r with { BatchSize = count };
        }

        return options.AdditionalProperties is { Count: > 0 } properties ? ApplyProperties(r, properties) : r;
    }

    private GenerationRequest ApplyProperties(GenerationRequest r, AdditionalPropertiesDictionary properties)
    {
        foreach (var (key, value) in properties)
        {
            r = key switch
            {
                PropertyNames.NegativePrompt => r with { NegativePrompt = ReadString(key, value) },
                PropertyNames.Prompt2 => r with { Prompt2 = ReadString(key, value) },
                PropertyNames.NegativePrompt2 => r with { NegativePrompt2 = ReadString(key, value) },
                PropertyNames.Scheduler => r with { Scheduler = ReadString(key, value) },
                PropertyNames.Steps => r with { Steps = checked((int)ReadInteger(key, value, 1, int.MaxValue)) },
                PropertyNames.Seed => r with { Seed = ReadInteger(key, value, long.MinValue, long.MaxValue) },
                PropertyNames.GuidanceScale => r with { GuidanceScale = (float)ReadNumber(key, value) },
                PropertyNames.GuidanceRescale => r with { GuidanceRescale = (float)ReadNumber(key, value) },
                PropertyNames.Strength => r with { Strength = ReadNumber(key, value) },
                PropertyNames.UseRefiner => r with { UseRefiner = ReadBoolean(key, value) },
                _ when _options.IgnoreUnknownProperties => r,
                _ => throw new ArgumentException(
                    $"Unknown additional property '{key}'. Known: {string.Join(", ", PropertyNames.All)} (or set SdxlImageGeneratorOptions.IgnoreUnknownProperties).",
                    nameof(ImageGenerationOptions.AdditionalProperties)),
            };
        }

        return r;
    }

    private Image<Rgb24>? LoadOriginalImage(ImageGenerationRequest request)
    {
        if (request.OriginalImages is null)
        {
            return null;
        }

        var images = request.OriginalImages.ToList();
        if (images.Count == 0)
        {
            return null;
        }

        if (images.Count > 1)
        {
            throw new NotSupportedException($"OriginalImages has {images.Count} images; SDXL image-to-image takes exactly one.");
        }

        if (images[0] is not DataContent data || data.Uri is not null && !data.Uri.StartsWith("data:", StringComparison.OrdinalIgnoreCase))
        {
            throw new NotSupportedException(
                $"OriginalImages must hold a DataContent with the image bytes; got {images[0].GetType().Name}. Download remote images first.");
        }

        if (!data.HasTopLevelMediaType("image"))
        {
            throw new ArgumentException($"OriginalImages[0] has media type '{data.MediaType}'; expected an image (PNG, JPEG, WebP or BMP).", nameof(request));
        }

        using var stream = new MemoryStream(data.Data.ToArray(), writable: false);
        return ImageInput.Load(stream, _options.InputImageLimits, "OriginalImages[0]");
    }

    private static string ReadString(string key, object? value) => value switch
    {
        string s => s,
        JsonElement { ValueKind: JsonValueKind.String } e => e.GetString()!,
        _ => throw WrongType(key, value, "a string"),
    };

    private static bool ReadBoolean(string key, object? value) => value switch
    {
        bool b => b,
        JsonElement { ValueKind: JsonValueKind.True } => true,
        JsonElement { ValueKind: JsonValueKind.False } => false,
        _ => throw WrongType(key, value, "a boolean"),
    };

    private static double ReadNumber(string key, object? value)
    {
        double number = value switch
        {
            double d => d,
            float f => f,
            decimal m => (double)m,
            int or long or short or byte or sbyte or uint or ulong or ushort => Convert.ToDouble(value, CultureInfo.InvariantCulture),
            JsonElement { ValueKind: JsonValueKind.Number } e => e.GetDouble(),
            _ => throw WrongType(key, value, "a number"),
        };
        if (!double.IsFinite(number))
        {
            throw new ArgumentException($"Additional property '{key}' must be a finite number; got {number}.", nameof(ImageGenerationOptions.AdditionalProperties));
        }

        return number;
    }

    private static long ReadInteger(string key, object? value, long min, long max)
    {
        long integer;
        switch (value)
        {
            case int or long or short or byte or sbyte or uint or ushort:
                integer = Convert.ToInt64(value, CultureInfo.InvariantCulture);
                break;
            case ulong u when u <= long.MaxValue:
                integer = (long)u;
                break;
            case double or float or decimal when Convert.ToDecimal(value, CultureInfo.InvariantCulture) is var d && decimal.Truncate(d) == d && d >= long.MinValue && d <= long.MaxValue:
                integer = (long)d;
                break;
            case JsonElement { ValueKind: JsonValueKind.Number } e when e.TryGetInt64(out var parsed):
                integer = parsed;
                break;
            default:
                throw WrongType(key, value, "an integer");
        }

        if (integer < min || integer > max)
        {
            throw new ArgumentOutOfRangeException(nameof(ImageGenerationOptions.AdditionalProperties), integer, $"Additional property '{key}' must be between {min} and {max}; got {integer}.");
        }

        return integer;
    }

    private static ArgumentException WrongType(string key, object? value, string expected) => new(
        $"Additional property '{key}' must be {expected}; got {(value is null ? "null" : $"{value.GetType().Name} '{value}'")}.",
        nameof(ImageGenerationOptions.AdditionalProperties));
}
