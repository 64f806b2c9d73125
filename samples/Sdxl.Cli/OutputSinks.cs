using Sdxl.Net;
using Sdxl.Net.Imaging;

namespace Sdxl.Cli;

/// <summary>The library sink for an <c>--output</c> path, chosen by its extension.</summary>
internal static class OutputSinks
{
    /// <summary>The extensions <c>--output</c> accepts.</summary>
    public const string Extensions = ".png, .jpg, .jpeg, .webp or .npy";

    /// <summary>The sink that writes <paramref name="output"/>; a usage error names the extensions allowed.</summary>
    public static IImageSink For(string output) => Path.GetExtension(output).ToLowerInvariant() switch
    {
        ".png" => new PngFileSink(output),
        ".jpg" or ".jpeg" => new JpegFileSink(output),
        ".webp" => new WebpFileSink(output),
        ".npy" => new NpyFileSink(output),
        _ => throw new UsageException($"--output must end in {Extensions}; got '{output}'"),
    };

    /// <summary>The files a run of <paramref name="count"/> images writes: one .npy for the batch, else one file per image.</summary>
    public static string[] FilesWritten(string output, int count)
    {
        if (string.Equals(Path.GetExtension(output), ".npy", StringComparison.OrdinalIgnoreCase))
        {
            return [output];
        }

        var files = new string[count];
        for (int i = 0; i < count; i++)
        {
            files[i] = PngFileSink.PathFor(output, i, count);
        }

        return files;
    }
}

/// <summary>The library's request defaults, used when the command line leaves a value out.</summary>
internal static class LibraryDefaults
{
    private static readonly GenerationRequest Defaults = new() { Prompt = string.Empty };

    /// <summary><see cref="GenerationRequest.Steps"/>'s default.</summary>
    public static int Steps => Defaults.Steps;

    /// <summary><see cref="GenerationRequest.GuidanceScale"/>'s default.</summary>
    public static double GuidanceScale => Defaults.GuidanceScale;
}
