namespace Sdxl.Net;

/// <summary>Checks a request before any model runs, with messages that say what was wrong and what is allowed.</summary>
internal static class RequestValidation
{
    /// <summary>The largest side accepted (SDXL's buckets go to 2048; 4096 leaves room for upscaled work).</summary>
    public const int MaxSide = 4096;

    public const int MaxSteps = 1000;

    public const int MaxBatch = 64;

    public static void Check(GenerationRequest r, int width, int height, int multiple, int latentChannels, int vaeScale)
    {
        if (string.IsNullOrWhiteSpace(r.Prompt))
        {
            throw new ArgumentException("Prompt must not be empty.", nameof(r.Prompt));
        }

        CheckSide(nameof(r.Width), width, multiple);
        CheckSide(nameof(r.Height), height, multiple);
        if (r.Steps < 1 || r.Steps > MaxSteps)
        {
            throw new ArgumentOutOfRangeException(nameof(r.Steps), r.Steps, $"Steps must be between 1 and {MaxSteps}.");
        }

        if (!float.IsFinite(r.GuidanceScale) || r.GuidanceScale < 0 || r.GuidanceScale > 100)
        {
            throw new ArgumentOutOfRangeException(nameof(r.GuidanceScale), r.GuidanceScale, "GuidanceScale must be a finite number in [0, 100] (guidance is off at 1 or below).");
        }

        if (!float.IsFinite(r.GuidanceRescale) || r.GuidanceRescale < 0 || r.GuidanceRescale > 1)
        {
            throw new ArgumentOutOfRangeException(nameof(r.GuidanceRescale), r.GuidanceRescale, "GuidanceRescale must be in [0, 1].");
        }

        if (r.BatchSize < 1 || r.BatchSize > MaxBatch)
        {
            throw new ArgumentOutOfRangeException(nameof(r.BatchSize), r.BatchSize, $"BatchSize must be between 1 and {MaxBatch}.");
        }

        if (r.Seeds is { } seeds && seeds.Count != r.BatchSize)
        {
            throw new ArgumentException($"Seeds has {seeds.Count} entries; it must have one per image (BatchSize = {r.BatchSize}).", nameof(r.Seeds));
        }

        if (r.Seed is < 0 || (r.Seeds?.Any(s => s < 0) ?? false))
        {
            throw new ArgumentOutOfRangeException(nameof(r.Seed), "Seeds must be non-negative (torch.manual_seed semantics).");
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

            foreach (var v in latents.Span)
            {
                if (!float.IsFinite(v))
                {
                    throw new ArgumentException("InitialLatents contains NaN or infinite values.", nameof(r.InitialLatents));
                }
            }
        }

        if (r.Conditioning is { } c)
        {
            CheckSize("OriginalSize", c.OriginalSize);
            CheckSize("TargetSize", c.TargetSize);
            CheckSize("NegativeOriginalSize", c.NegativeOriginalSize);
            CheckSize("NegativeTargetSize", c.NegativeTargetSize);
            CheckCrop("CropTopLeft", c.CropTopLeft);
            CheckCrop("NegativeCropTopLeft", c.NegativeCropTopLeft);
            if (c.AestheticScore is { } a && !double.IsFinite(a) || c.NegativeAestheticScore is { } na && !double.IsFinite(na))
            {
                throw new ArgumentException("Aesthetic scores must be finite numbers.", nameof(r.Conditioning));
            }
        }
    }

    private static void CheckSide(string name, int value, int multiple)
    {
        if (value < multiple || value > MaxSide || value % multiple != 0)
        {
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be a multiple of {multiple} between {multiple} and {MaxSide} pixels; got {value}.");
        }
    }

    private static void CheckSize(string name, Conditioning.ImageSize? size)
    {
        if (size is { } s && (s.Width <= 0 || s.Height <= 0 || s.Width > 65536 || s.Height > 65536))
        {
            throw new ArgumentOutOfRangeException(name, s, $"{name} must have positive sides up to 65536; got {s}.");
        }
    }

    private static void CheckCrop(string name, Conditioning.CropCoordinates? crop)
    {
        if (crop is { } c && (c.Top < 0 || c.Left < 0 || c.Top > 65536 || c.Left > 65536))
        {
            throw new ArgumentOutOfRangeException(name, c, $"{name} must be non-negative; got {c}.");
        }
    }
}
