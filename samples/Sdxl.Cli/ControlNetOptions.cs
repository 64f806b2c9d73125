using System.Globalization;
using Sdxl.Net;
using Sdxl.Net.ControlNet;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Sdxl.Cli;

/// <summary>
/// <c>--controlnet DIR --control-image FILE [--control-scale S] [--control-start A] [--control-end B]</c>, repeatable and
/// matched by position: the k-th image, scale and window belong to the k-th <c>--controlnet</c>.
/// </summary>
internal sealed class ControlNetOptions : IDisposable
{
    /// <summary>The options that may be given once per ControlNet.</summary>
    public static readonly IReadOnlySet<string> Repeatable = new HashSet<string>(StringComparer.Ordinal)
    {
        "controlnet", "control-image", "control-scale", "control-start", "control-end",
    };

    private readonly List<(string Name, string Directory)> _nets = [];
    private readonly List<Image<Rgb24>> _loaded = [];

    private ControlNetOptions()
    {
    }

    /// <summary>The control images of the request (null without <c>--controlnet</c>).</summary>
    public IReadOnlyList<ControlImage>? Images { get; private set; }

    /// <summary>Whether <c>--guess-mode</c> was given.</summary>
    public bool GuessMode { get; private set; }

    public static ControlNetOptions Parse(CliArguments options)
    {
        var result = new ControlNetOptions();
        try
        {
            result.Read(options);
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <summary>Adds each distinct ControlNet folder to the pipeline once.</summary>
    public void AddTo(SdxlPipelineBuilder builder)
    {
        foreach (var (name, directory) in _nets)
        {
            builder.AddControlNet(directory, name);
        }
    }

    public void Dispose()
    {
        foreach (var image in _loaded)
        {
            image.Dispose();
        }
    }

    private void Read(CliArguments options)
    {
        var dirs = options.All("controlnet");
        var files = options.All("control-image");
        var scales = Numbers(options, "control-scale", -100, 100, dirs.Count);
        var starts = Numbers(options, "control-start", 0, 1, dirs.Count);
        var ends = Numbers(options, "control-end", 0, 1, dirs.Count);
        GuessMode = options.Flag("guess-mode");
        if (dirs.Count == 0)
        {
            if (files.Count > 0 || scales is not null || starts is not null || ends is not null || GuessMode)
            {
                throw new UsageException("--control-image, --control-scale, --control-start, --control-end and --guess-mode need --controlnet DIR");
            }

            return;
        }

        if (files.Count != dirs.Count)
        {
            throw new UsageException($"give one --control-image per --controlnet (matched by position); got {dirs.Count} --controlnet and {files.Count} --control-image");
        }

        var images = new List<ControlImage>(dirs.Count);
        for (int k = 0; k < dirs.Count; k++)
        {
            if (!Directory.Exists(dirs[k]))
            {
                throw new UsageException($"--controlnet: folder not found: '{dirs[k]}'");
            }

            var image = GenerateCommand.LoadImage(files[k], "--control-image");
            _loaded.Add(image);
            double start = starts?[k] ?? 0.0, end = ends?[k] ?? 1.0;
            if (!(start < end))
            {
                throw new UsageException(string.Create(CultureInfo.InvariantCulture, $"ControlNet {k + 1}: --control-start ({start}) must be less than --control-end ({end})"));
            }

            images.Add(new ControlImage { Image = image, ControlNet = NameFor(dirs[k]), Scale = scales?[k], GuidanceStart = start, GuidanceEnd = end });
        }

        Images = images;
    }

    /// <summary>The folder's name, made unique when two different folders share one; the same folder keeps its net.</summary>
    private string NameFor(string directory)
    {
        var full = Path.GetFullPath(directory);
        foreach (var (name, dir) in _nets)
        {
            if (dir == full)
            {
                return name;
            }
        }

        var baseName = Path.GetFileName(Path.TrimEndingDirectorySeparator(full));
        var unique = baseName;
        for (int n = 2; _nets.Exists(x => x.Name == unique); n++)
        {
            unique = string.Create(CultureInfo.InvariantCulture, $"{baseName}-{n}");
        }

        _nets.Add((unique, full));
        return unique;
    }

    private static double[]? Numbers(CliArguments options, string name, double min, double max, int expected)
    {
        var texts = options.All(name);
        if (texts.Count == 0)
        {
            return null;
        }

        if (texts.Count != expected)
        {
            throw new UsageException($"give --{name} once per --controlnet (matched by position) or not at all; got {texts.Count} for {expected} --controlnet");
        }

        var values = new double[texts.Count];
        for (int i = 0; i < texts.Count; i++)
        {
            if (!double.TryParse(texts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out values[i]) || !double.IsFinite(values[i]) || values[i] < min || values[i] > max)
            {
                throw new UsageException(string.Create(CultureInfo.InvariantCulture, $"--{name} must be a number from {min} to {max}; got '{texts[i]}'"));
            }
        }

        return values;
    }
}
