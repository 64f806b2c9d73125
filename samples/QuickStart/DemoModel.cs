using Sdxl.Net.Synthetic;

/// <summary>Writes a tiny random-weight SDXL model, so the quick start runs without a 7 GB download.</summary>
internal static class DemoModel
{
    /// <summary>Writes the model to a fresh temporary folder, deleted when the process exits.</summary>
    public static string WriteToTempFolder()
    {
        var directory = Path.Combine(Path.GetTempPath(), $"sdxl-quickstart-{Guid.NewGuid():N}");
        Console.WriteLine($"No model folder given: writing a tiny random-weight SDXL model to {directory} (the image will be noise).");
        SyntheticSdxlModel.Write(directory);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                Directory.Delete(directory, recursive: true);
            }
            catch (IOException)
            {
            }
        };
        return directory;
    }
}
