using Sdxl.Net.Synthetic;

namespace Sdxl.Net.Benchmarks;

/// <summary>The synthetic model sizes the commands run on.</summary>
internal static class SyntheticModels
{
    /// <summary>Writes the folder for <paramref name="size"/> into a new temporary directory; returns it and the image side.</summary>
    public static (string Directory, int ImageSize) Write(string size, bool float16 = false)
    {
        var (options, side) = size switch
        {
            "tiny" => (new SyntheticModelOptions(), 64),
            "small" => (SyntheticModelOptions.Small, 256),
            _ => throw new ArgumentException($"Unknown --size '{size}': expected tiny or small."),
        };
        var directory = Path.Combine(Path.GetTempPath(), $"sdxl-bench-{size}-{Guid.NewGuid():N}");
        SyntheticSdxlModel.Write(directory, options with { Float16 = float16 });
        return (directory, side);
    }

    public static void TryDelete(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
