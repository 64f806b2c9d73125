using Sdxl.Net.ControlNet;
using Sdxl.Net.Imaging;
using SixLabors.ImageSharp;

namespace Sdxl.Cli;

/// <summary><c>sdxl canny IN OUT [--low 100] [--high 200]</c>: a canny control image, as diffusers' examples make it with OpenCV.</summary>
internal static class CannyCommand
{
    /// <summary>Turns <c>canny IN OUT ...</c> into <c>--input IN --output OUT ...</c>.</summary>
    public static string[] Positional(string[] rest)
    {
        var args = new List<string>();
        int positional = 0;
        for (int i = 0; i < rest.Length; i++)
        {
            if (rest[i].StartsWith("--", StringComparison.Ordinal))
            {
                args.Add(rest[i]);
                if (i + 1 < rest.Length && !rest[i].Contains('=', StringComparison.Ordinal))
                {
                    args.Add(rest[++i]);
                }
            }
            else
            {
                args.Add(positional++ switch
                {
                    0 => "--input",
                    1 => "--output",
                    _ => throw new UsageException($"canny takes IN and OUT; unexpected argument '{rest[i]}'"),
                });
                args.Add(rest[i]);
            }
        }

        return [.. args];
    }

    public static int Run(CliArguments options, TextWriter stdout)
    {
        var input = options.Required("input");
        var output = options.Required("output");
        var low = options.Double("low", 0, 100000) ?? CannyEdgeDetector.DefaultLowThreshold;
        var high = options.Double("high", 0, 100000) ?? CannyEdgeDetector.DefaultHighThreshold;
        options.RejectUnknown();
        if (!string.Equals(Path.GetExtension(output), ".png", StringComparison.OrdinalIgnoreCase))
        {
            throw new UsageException($"the canny output must be a .png file; got '{output}'");
        }

        if (!File.Exists(input))
        {
            throw new UsageException($"canny: input not found: '{input}'");
        }

        var outputDir = Path.GetDirectoryName(Path.GetFullPath(output))!;
        if (!Directory.Exists(outputDir))
        {
            throw new UsageException($"canny: output directory does not exist: '{outputDir}'");
        }

        SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24> image;
        try
        {
            image = ImageInput.Load(input);
        }
        catch (InvalidDataException e)
        {
            throw new UsageException($"canny: {e.Message}");
        }

        using (image)
        {
            using var edges = CannyEdgeDetector.Detect(image, low, high);
            // Through a temporary sibling, so a failed write never leaves a half-written file.
            var temp = Path.Combine(outputDir, $".{Path.GetFileName(output)}.{Guid.NewGuid():N}.tmp");
            try
            {
                edges.SaveAsPng(temp);
                File.Move(temp, output, overwrite: true);
            }
            catch
            {
                File.Delete(temp);
                throw;
            }
        }

        stdout.WriteLine($"wrote {output}");
        return CliApp.Ok;
    }
}
