using Sdxl.Net.Synthetic;
using Sdxl.Net.Synthetic.Export;

namespace Sdxl.Net.Benchmarks;

/// <summary>The synthetic model sizes the commands run on.</summary>
internal static class SyntheticModels
{
    /// <summary>Writes the folder for <paramref name="size"/> into a new temporary directory; returns it and the image side.</summary>
    public static (string Directory, int ImageSize) Write(string size, bool float16 = false)
    {
        var directory = Path.Combine(Path.GetTempPath(), $"sdxl-bench-{size}-{Guid.NewGuid():N}");
        switch (size)
        {
            case "tiny":
                SyntheticSdxlModel.Write(directory, new SyntheticModelOptions { Float16 = float16 });
                return (directory, 64);
            case "small":
                SyntheticSdxlModel.Write(directory, SyntheticModelOptions.Small with { Float16 = float16 });
                return (directory, 256);
            case "miniature":
                // SDXL's real structure at test size (the dry run of the full-size checks).
                ExportedSdxlModel.Write(directory, new ExportedModelOptions { Architecture = SdxlArchitecture.Miniature, Float16 = float16 });
                return (directory, 64);
            case "full":
                ExportedSdxlModel.Write(directory, new ExportedModelOptions { Architecture = SdxlArchitecture.Base, Float16 = float16 });
                return (directory, 1024);
            default:
                throw new ArgumentException($"Unknown --size '{size}': expected tiny, small, miniature or full.");
        }
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
