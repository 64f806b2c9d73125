using Sdxl.Net;
using Sdxl.Net.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Sdxl.Cli;

/// <summary>
/// <c>--from-image</c>: what a PNG's recipe needs besides the request (the same refiner, image, mask and latents, the
/// sampler's configuration changes, the VAE tiling), checked before anything runs so a regeneration is either the
/// same picture or a clear refusal.
/// </summary>
internal sealed class RecipeReplay(string png, StoredRecipe recipe)
{
    public StoredRecipe Recipe => recipe;

    /// <summary>Refuses a refiner folder that is missing or not the one the recipe names.</summary>
    public void CheckRefiner(string? refinerDir)
    {
        if (recipe.Refiner is not { } refiner)
        {
            return;
        }

        if (refinerDir is null)
        {
            throw new UsageException($"--from-image: '{png}' was refined with '{refiner.Folder}' (high-noise fraction {refiner.HighNoiseFraction}); pass --refiner DIR with that folder");
        }

        var given = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(refinerDir)));
        if (!string.Equals(given, refiner.Folder, StringComparison.Ordinal))
        {
            throw new UsageException($"--from-image: '{png}' was refined with '{refiner.Folder}', not '{given}'");
        }
    }

    /// <summary>Refuses an input image or mask whose pixels differ from those the recipe was made from.</summary>
    public void CheckInput(Image<Rgb24>? image, string flag, string? expectedSha256)
    {
        if (expectedSha256 is null || image is null)
        {
            return;
        }

        var actual = RecipeInputs.Digest(image);
        if (!string.Equals(actual, expectedSha256, StringComparison.OrdinalIgnoreCase))
        {
            throw new UsageException($"--from-image: {flag} differs from the one '{png}' was made from (pixel SHA-256 {actual[..12]}…, recipe {expectedSha256[..Math.Min(12, expectedSha256.Length)]}…)");
        }
    }

    /// <summary>Refuses initial latents that differ from the recipe's.</summary>
    public void CheckLatents(ReadOnlyMemory<float>? latents)
    {
        if (recipe.Inputs?.InitialLatentsSha256 is { } expected && latents is { } given
            && !string.Equals(RecipeInputs.Digest(given.Span), expected, StringComparison.OrdinalIgnoreCase))
        {
            throw new UsageException($"--from-image: --latents differs from the latents '{png}' was made from");
        }
    }

    /// <summary>The recipe's refiner settings under the flags given now.</summary>
    public RefinerOptions RefinerOptions(double? highNoise, double? aesthetic, double? negativeAesthetic) => new()
    {
        HighNoiseFraction = highNoise ?? recipe.Refiner?.HighNoiseFraction ?? 0.8,
        AestheticScore = aesthetic ?? recipe.Refiner?.AestheticScore ?? 6.0,
        NegativeAestheticScore = negativeAesthetic ?? recipe.Refiner?.NegativeAestheticScore ?? 2.5,
        UseRefinerVae = recipe.Refiner?.UseRefinerVae ?? true,
    };

    /// <summary>Replays the recipe's scheduler configuration changes and VAE tiling on the builder (flags given now are applied after, and win).</summary>
    public void Apply(SdxlPipelineBuilder builder, bool vaeTilingFlag)
    {
        if (recipe.Scheduler is { ConfigChanges.Count: > 0 } scheduler)
        {
            builder.ConfigureScheduler(scheduler.ApplyTo);
        }

        if (recipe.VaeTiling is { } tiling && !vaeTilingFlag)
        {
            builder.WithTiledVae(tiling);
        }
    }
}
