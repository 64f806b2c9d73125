using System.Text.Json;

namespace Sdxl.Net.Tests;

/// <summary>The reference cases in ../shared/golden/tiny-sdxl/feature-cases whose params.json sets <c>"prompt_syntax": "weighted"</c>.</summary>
internal static class WeightedFeatureCases
{
    public static string Root => Path.Combine(TestPaths.TinySdxl!, "feature-cases");

    public static IEnumerable<string> Directories()
    {
        if (TestPaths.TinySdxl is not { } root || !Directory.Exists(Path.Combine(root, "feature-cases")))
        {
            yield break;
        }

        foreach (var dir in Directory.GetDirectories(Path.Combine(root, "feature-cases")).Order(StringComparer.Ordinal))
        {
            var file = Path.Combine(dir, "params.json");
            if (File.Exists(file) && File.ReadAllText(file).Contains("\"prompt_syntax\": \"weighted\"", StringComparison.Ordinal))
            {
                yield return dir;
            }
        }
    }

    public static JsonElement Params(string caseName)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Root, caseName, "params.json")));
        return doc.RootElement.Clone();
    }
}
