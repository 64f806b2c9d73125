using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Sdxl.Net.Schedulers;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Sdxl.Net.Imaging;

// The parts of a recipe beyond the request, one record per concern, so new concerns (adapters, prompt syntax, …) are
// added as records of their own next to these.

/// <summary>The sampler that ran: its catalog name, its class, and the configuration changes made on top of the model folder's <c>scheduler_config.json</c>.</summary>
/// <param name="Name">The catalog name asked for (e.g. <c>euler-karras</c>), or the scheduler's own name.</param>
/// <param name="ClassName">The scheduler class that ran (e.g. <c>EulerDiscreteScheduler</c>).</param>
/// <param name="ConfigChanges">Keys that <c>ConfigureScheduler</c> (the CLI's <c>--karras</c>, <c>--timestep-spacing</c>, …) changed in the folder's configuration, with their values; a removed key maps to <see langword="null"/>.</param>
public sealed record RecipeScheduler(string Name, string ClassName, IReadOnlyDictionary<string, JsonNode?> ConfigChanges)
{
    /// <summary>Applies <see cref="ConfigChanges"/> to a model folder's scheduler configuration.</summary>
    public SchedulerConfig ApplyTo(SchedulerConfig folderConfig)
    {
        ArgumentNullException.ThrowIfNull(folderConfig);
        foreach (var (key, value) in ConfigChanges)
        {
            folderConfig = folderConfig.With(key, value);
        }

        return folderConfig;
    }
}

/// <summary>The refiner stage that ran (absent from a recipe when none ran).</summary>
/// <param name="Folder">The refiner folder's name (not its path).</param>
/// <param name="HighNoiseFraction">The base model's share of the schedule.</param>
/// <param name="AestheticScore">The refiner's aesthetic score.</param>
/// <param name="NegativeAestheticScore">The refiner's negative aesthetic score.</param>
/// <param name="UseRefinerVae">Whether the refiner folder's VAE decoded the image.</param>
public sealed record RecipeRefiner(string Folder, double HighNoiseFraction, double AestheticScore, double NegativeAestheticScore, bool UseRefinerVae);

/// <summary>The inputs besides text a generation read, as SHA-256 digests, and how the input image was prepared.</summary>
/// <param name="ImageSha256">SHA-256 of the input image's RGB24 pixels (rows top to bottom, after decoding), or <see langword="null"/>.</param>
/// <param name="MaskSha256">SHA-256 of the mask's RGB24 pixels, or <see langword="null"/>.</param>
/// <param name="InitialLatentsSha256">SHA-256 of the initial latents' float32 values (little-endian), or <see langword="null"/>.</param>
/// <param name="ResizeMode">How the input image was fitted to the size.</param>
/// <param name="VaeSampling">How the VAE's latent distribution was turned into latents.</param>
public sealed record RecipeInputs(string? ImageSha256, string? MaskSha256, string? InitialLatentsSha256, ImageResizeMode ResizeMode, VaeSampling VaeSampling)
{
    /// <summary>SHA-256 (lower-case hex) of an image's RGB24 pixels and size: what <see cref="ImageSha256"/> and <see cref="MaskSha256"/> hold.</summary>
    public static string Digest(Image<Rgb24> image)
    {
        ArgumentNullException.ThrowIfNull(image);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> size = stackalloc byte[8];
        BitConverter.TryWriteBytes(size, image.Width);
        BitConverter.TryWriteBytes(size[4..], image.Height);
        sha.AppendData(size);
        image.ProcessPixelRows(rows =>
        {
            for (int y = 0; y < rows.Height; y++)
            {
                sha.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(rows.GetRowSpan(y)));
            }
        });
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>SHA-256 (lower-case hex) of float32 values: what <see cref="InitialLatentsSha256"/> holds.</summary>
    public static string Digest(ReadOnlySpan<float> values) =>
        Convert.ToHexStringLower(SHA256.HashData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values)));
}

/// <summary>What the pipeline, not the request, decided about a generation: recorded in recipes.</summary>
internal sealed record GenerationProvenance(RecipeScheduler Scheduler, RecipeRefiner? Refiner, bool RefinerConfigured, TiledVaeOptions? VaeTiling)
{
    /// <summary>The provenance of a run with <paramref name="scheduler"/> (asked for as <paramref name="schedulerName"/>).</summary>
    public static GenerationProvenance Create(string schedulerName, IScheduler scheduler, SchedulerConfig folderConfig,
        Func<SchedulerConfig, SchedulerConfig> configure, string? refinerDirectory, RefinerOptions? refinerOptions,
        double? highNoiseFraction, bool refined, TiledVaeOptions? vaeTiling)
    {
        var changes = configure(folderConfig).ChangesFrom(folderConfig);
        var refiner = refined && refinerDirectory is not null && refinerOptions is not null
            ? new RecipeRefiner(Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(refinerDirectory))),
                highNoiseFraction ?? refinerOptions.HighNoiseFraction, refinerOptions.AestheticScore, refinerOptions.NegativeAestheticScore,
                refinerOptions.UseRefinerVae)
            : null;
        return new GenerationProvenance(new RecipeScheduler(schedulerName, scheduler.GetType().Name, changes), refiner,
            refinerDirectory is not null, vaeTiling);
    }
}
