using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Sdxl.Net;

/// <summary>One generated image: float pixels in [0, 1], channel-planar RGB [3, Height, Width].</summary>
public sealed class GeneratedImage
{
    internal GeneratedImage(int index, int width, int height, float[] pixels, long? seed)
    {
        Index = index;
        Width = width;
        Height = height;
        Pixels = pixels;
        Seed = seed;
    }

    /// <summary>The image's index in its batch.</summary>
    public int Index { get; }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>The image's seed when it has its own generator (per-image seeds), else the run's seed.</summary>
    public long? Seed { get; }

    /// <summary>
    /// RGB planes [3, Height, Width] in [0, 1], before 8-bit quantization
    /// (diffusers' <c>(decoded / 2 + 0.5).clamp(0, 1)</c>).
    /// </summary>
    public ReadOnlyMemory<float> Pixels { get; }

    /// <summary>Converts to an 8-bit ImageSharp image (rounding like diffusers' <c>(x * 255).round()</c>).</summary>
    public Image<Rgb24> ToImage()
    {
        var image = new Image<Rgb24>(Width, Height);
        int plane = Width * Height;
        image.ProcessPixelRows(accessor =>
        {
            var p = Pixels.Span;
            for (int y = 0; y < accessor.Height; y++)
            {
                var row = accessor.GetRowSpan(y);
                int o = y * Width;
                for (int x = 0; x < row.Length; x++)
                {
                    row[x] = new Rgb24(ToByte(p[o + x]), ToByte(p[plane + o + x]), ToByte(p[(2 * plane) + o + x]));
                }
            }
        });
        return image;
    }

    private static byte ToByte(float v) => (byte)Math.Clamp(MathF.Round(v * 255f, MidpointRounding.ToEven), 0f, 255f);
}

/// <summary>The outcome of one generation.</summary>
public sealed class GenerationResult
{
    internal GenerationResult(GenerationRequest request, IReadOnlyList<GeneratedImage> images, long? seed, string scheduler,
        IReadOnlyList<string> warnings, TimeSpan elapsed, string model)
    {
        Request = request;
        Images = images;
        Seed = seed;
        Scheduler = scheduler;
        Warnings = warnings;
        Elapsed = elapsed;
        Model = model;
    }

    /// <summary>The request, as given.</summary>
    public GenerationRequest Request { get; }

    /// <summary>The generated images, in batch order.</summary>
    public IReadOnlyList<GeneratedImage> Images { get; }

    /// <summary>The seed actually used (the drawn one when the request gave none); <see langword="null"/> when the request gave initial latents or per-image seeds.</summary>
    public long? Seed { get; }

    /// <summary>The scheduler that ran.</summary>
    public string Scheduler { get; }

    /// <summary>Things the caller should know, e.g. that a prompt was truncated to 77 tokens.</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>Wall time of the generation.</summary>
    public TimeSpan Elapsed { get; }

    /// <summary>The model folder's name.</summary>
    public string Model { get; }

    /// <summary>The final latents [N, 4, h, w], when the request asked for them (<see cref="GenerationRequest.ReturnLatents"/>).</summary>
    public ReadOnlyMemory<float>? Latents { get; init; }

    /// <summary>The names of the ControlNets that read <see cref="GenerationRequest.ControlImages"/>, in the same order; <see langword="null"/> without control images.</summary>
    public IReadOnlyList<string>? ControlNets { get; init; }

    /// <summary>The LoRA adapters applied (the pipeline's and the request's), with their file hashes.</summary>
    public IReadOnlyList<Lora.AppliedLora> Loras { get; init; } = [];

    /// <summary>The textual-inversion embeddings the pipeline's text encoders carry.</summary>
    public IReadOnlyList<Text.AppliedEmbedding> Embeddings { get; init; } = [];

    /// <summary>What the pipeline decided beyond the request (sampler configuration, refiner, VAE tiling), for recipes.</summary>
    internal Imaging.GenerationProvenance? Provenance { get; init; }
}
