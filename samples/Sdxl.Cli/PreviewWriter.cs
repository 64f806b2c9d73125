using System.Globalization;
using Sdxl.Net;
using Sdxl.Net.Previews;
using SixLabors.ImageSharp;

namespace Sdxl.Cli;

/// <summary>
/// <c>--preview-every N --preview-dir DIR [--preview-kind latent|taesd] [--taesd DIR] [--preview-size PX]</c>: writes the
/// previews the pipeline reports as PNG files (<c>step_004.png</c>, <c>refiner_step_002.png</c>; <c>-1</c>, <c>-2</c> ...
/// for the other images of a batch), then passes every report on to the progress display.
/// </summary>
internal sealed class PreviewWriter(IProgress<GenerationProgress> inner, string directory) : IProgress<GenerationProgress>
{
    /// <summary>The preview options the flags ask for, with the folder to write to; <see langword="null"/> without <c>--preview-every</c>.</summary>
    public static (PreviewOptions Options, string Directory)? Parse(CliArguments options)
    {
        var every = options.Int("preview-every", 1, 100000);
        var dir = options.Optional("preview-dir");
        var kind = options.Optional("preview-kind");
        var taesd = options.Optional("taesd");
        var size = options.Int("preview-size", 1, 16384);
        if (every is null)
        {
            if (dir is not null || kind is not null || taesd is not null || size is not null)
            {
                throw new UsageException("--preview-dir, --preview-kind, --taesd and --preview-size need --preview-every N");
            }

            return null;
        }

        if (dir is null)
        {
            throw new UsageException("--preview-every needs --preview-dir DIR, where the preview PNGs are written");
        }

        var previewKind = (kind ?? (taesd is null ? "latent" : "taesd")) switch
        {
            "latent" => PreviewKind.LatentRgb,
            "taesd" => PreviewKind.Taesd,
            var other => throw new UsageException($"--preview-kind must be latent or taesd; got '{other}'"),
        };
        if (previewKind == PreviewKind.Taesd && taesd is null)
        {
            throw new UsageException("--preview-kind taesd needs --taesd DIR, the folder of the TAESD-XL ONNX decoder");
        }

        if (taesd is not null && !Directory.Exists(taesd))
        {
            throw new UsageException($"--taesd: folder not found: '{taesd}'");
        }

        EnsureWritable(dir);
        var preview = new PreviewOptions { Kind = previewKind, EveryNSteps = every.Value, TaesdDirectory = taesd };
        return (size is { } s ? preview with { MaxSize = s } : preview, dir);
    }

    // Checked before the models load, so a folder that cannot take the previews is a usage error, not a failure
    // after the first step.
    private static void EnsureWritable(string dir)
    {
        try
        {
            Directory.CreateDirectory(dir);
            var probe = Path.Combine(dir, $".sdxl-write-check-{Environment.ProcessId}");
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"--preview-dir: cannot write previews to '{dir}': {e.Message}");
        }
    }

    public void Report(GenerationProgress value)
    {
        if (value.Previews is { } previews)
        {
            foreach (var preview in previews)
            {
                Write(value.Phase, preview);
            }
        }

        inner.Report(value);
    }

    private void Write(GenerationPhase phase, PreviewImage preview)
    {
        var name = string.Create(CultureInfo.InvariantCulture,
            $"{(phase == GenerationPhase.Refining ? "refiner_" : string.Empty)}step_{preview.Step:D3}{(preview.Index > 0 ? $"-{preview.Index}" : string.Empty)}.png");
        var path = Path.Combine(directory, name);
        var temporary = path + ".tmp";
        using (var image = preview.ToImage())
        {
            image.SaveAsPng(temporary);
        }

        File.Move(temporary, path, overwrite: true);
    }
}
