using System.Collections.Concurrent;
using Sdxl.Net.Synthetic;

namespace Sdxl.Net.Tests;

/// <summary>Synthetic model folders written once per test run and shared (read-only) by tests.</summary>
internal static class SyntheticModels
{
    private static readonly ConcurrentDictionary<SyntheticModelOptions, Lazy<string>> Folders = new();

    /// <summary>The folder for <paramref name="options"/> (default options when null), written on first use.</summary>
    public static string Get(SyntheticModelOptions? options = null)
    {
        options ??= new SyntheticModelOptions();
        return Folders.GetOrAdd(options, o => new Lazy<string>(() =>
        {
            var dir = Path.Combine(Path.GetTempPath(), "sdxl-tests-" + Guid.NewGuid().ToString("N"));
            SyntheticSdxlModel.Write(dir, o);
            AppDomain.CurrentDomain.ProcessExit += (_, _) =>
            {
                try
                {
                    Directory.Delete(dir, recursive: true);
                }
                catch (IOException)
                {
                }
            };
            return dir;
        })).Value;
    }
}
