using Microsoft.ML.OnnxRuntime;
using Sdxl.Net.Denoising;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace Sdxl.Net.Previews;

/// <summary>Makes the preview images of one denoising run from the latents after a step, per <see cref="PreviewOptions"/>.</summary>
internal sealed class PreviewRenderer
{
    private readonly PreviewOptions _options;
    private readonly TaesdPreviewDecoder? _taesd;
    private float[]? _scratch;
    private float[]? _planar;

    private PreviewRenderer(PreviewOptions options, TaesdPreviewDecoder? taesd)
    {
        _options = options;
        _taesd = taesd;
    }

    /// <summary>The largest <see cref="PreviewOptions.MaxSize"/> accepted.</summary>
    public const int MaxPreviewSize = 16384;

    /// <summary>Throws when the options cannot work, before anything runs.</summary>
    /// <exception cref="ArgumentException">A value is out of range, or the TAESD folder is missing.</exception>
    public static void Validate(PreviewOptions? options)
    {
        if (options is null)
        {
            return;
        }

        if (options.EveryNSteps < 1)
        {
            throw new ArgumentException($"Preview.EveryNSteps must be at least 1; got {options.EveryNSteps}.", nameof(GenerationRequest.Preview));
        }

        if (options.MaxSize is < 1 or > MaxPreviewSize)
        {
            throw new ArgumentException($"Preview.MaxSize must be from 1 to {MaxPreviewSize} pixels; got {options.MaxSize}.", nameof(GenerationRequest.Preview));
        }

        if (!Enum.IsDefined(options.Kind))
        {
            throw new ArgumentException($"Preview.Kind {(int)options.Kind} is not a preview kind; use LatentRgb or Taesd.", nameof(GenerationRequest.Preview));
        }

        if (options.Kind == PreviewKind.Taesd && (options.TaesdDirectory is not { Length: > 0 } dir || !Directory.Exists(dir)))
        {
            throw new ArgumentException(
                $"Preview.Kind Taesd needs Preview.TaesdDirectory, the folder of the TAESD-XL ONNX decoder; {(options.TaesdDirectory is null ? "none was given" : $"'{options.TaesdDirectory}' does not exist")}.",
                nameof(GenerationRequest.Preview));
        }
    }

    /// <summary>A renderer for one run; opens (or reuses) the TAESD decoder when the options ask for it.</summary>
    public static PreviewRenderer Create(PreviewOptions options, PreviewDecoderCache decoders) =>
        new(options, options.Kind == PreviewKind.Taesd ? decoders.Get(options.TaesdDirectory!) : null);

    /// <summary>Whether a preview is due after <paramref name="finishedSteps"/> steps: exactly every N-th step.</summary>
    public bool IsDue(int finishedSteps) => finishedSteps % _options.EveryNSteps == 0;

    /// <summary>One preview per image of the batch from the latents after a step.</summary>
    public IReadOnlyList<PreviewImage> Render(in DenoisingStepEnd step, RunOptions runOptions)
    {
        int h = step.LatentHeight, w = step.LatentWidth, plane = h * w;
        int per = step.Latents.Length / step.Batch;
        int channels = per / plane;
        var previews = new PreviewImage[step.Batch];
        for (int b = 0; b < step.Batch; b++)
        {
            var latents = step.Latents.Slice(b * per, per);
            int width, height;
            byte[] rgb;
            if (_taesd is null)
            {
                if (channels != LatentRgbPreview.Channels)
                {
                    throw new InvalidOperationException($"Latent RGB previews need {LatentRgbPreview.Channels}-channel latents; these have {channels}.");
                }

                (width, height) = (w, h);
                rgb = new byte[3 * plane];
                LatentRgbPreview.Render(latents, h, w, rgb);
            }
            else
            {
                (width, height) = (w * TaesdPreviewDecoder.Scale, h * TaesdPreviewDecoder.Scale);
                int pixels = width * height;
                _scratch ??= new float[per];
                _planar ??= new float[3 * pixels];
                _taesd.Decode(latents, channels, h, w, _scratch, _planar, runOptions);
                rgb = new byte[3 * pixels];
                for (int p = 0; p < pixels; p++)
                {
                    rgb[3 * p] = LatentRgbPreview.ToByte(_planar[p]);
                    rgb[(3 * p) + 1] = LatentRgbPreview.ToByte(_planar[pixels + p]);
                    rgb[(3 * p) + 2] = LatentRgbPreview.ToByte(_planar[(2 * pixels) + p]);
                }
            }

            previews[b] = Fit(new PreviewImage(b, step.Index + 1, width, height, rgb));
        }

        return previews;
    }

    /// <summary>The size a preview of <paramref name="width"/> × <paramref name="height"/> gets under <paramref name="maxSize"/>.</summary>
    public static (int Width, int Height) FittedSize(int width, int height, int maxSize)
    {
        int longest = Math.Max(width, height);
        if (longest <= maxSize)
        {
            return (width, height);
        }

        double scale = (double)maxSize / longest;
        return (Math.Max(1, (int)Math.Round(width * scale)), Math.Max(1, (int)Math.Round(height * scale)));
    }

    private PreviewImage Fit(PreviewImage preview)
    {
        var (width, height) = FittedSize(preview.Width, preview.Height, _options.MaxSize);
        if (width == preview.Width && height == preview.Height)
        {
            return preview;
        }

        using var image = preview.ToImage();
        image.Mutate(x => x.Resize(width, height));
        var rgb = new byte[3 * width * height];
        image.CopyPixelDataTo(rgb);
        return new PreviewImage(preview.Index, preview.Step, width, height, rgb);
    }
}
