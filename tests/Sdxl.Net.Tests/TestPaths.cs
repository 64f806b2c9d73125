namespace Sdxl.Net.Tests;

/// <summary>Locations of test data: the copied goldens next to the test assembly, and the shared tiny models.</summary>
internal static class TestPaths
{
    /// <summary>The repository's root folder (the one holding Sdxl.Net.sln above the test assembly).</summary>
    public static string RepositoryRoot
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Sdxl.Net.sln")))
                {
                    return dir.FullName;
                }
            }

            throw new DirectoryNotFoundException("Sdxl.Net.sln not found above the test output.");
        }
    }

    /// <summary>The TestData folder copied next to the test assembly.</summary>
    public static string TestData => Path.Combine(AppContext.BaseDirectory, "TestData");

    /// <summary>The copied golden JSON files.</summary>
    public static string Golden => Path.Combine(TestData, "golden");

    /// <summary>The CLIP vocabulary and merges.</summary>
    public static string ClipTokenizer => Path.Combine(TestData, "clip-tokenizer");

    /// <summary>
    /// The tiny diffusers-reference model folders (../shared/golden/tiny-sdxl beside the repository), or
    /// <see langword="null"/> when that folder does not exist. Set SDXL_TINY_MODELS to point elsewhere.
    /// </summary>
    public static string? TinySdxl
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("SDXL_TINY_MODELS");
            if (!string.IsNullOrEmpty(env) && Directory.Exists(env))
            {
                return env;
            }

            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "shared", "golden", "tiny-sdxl");
                if (Directory.Exists(candidate))
                {
                    return candidate;
                }

                if (File.Exists(Path.Combine(dir.FullName, "Sdxl.Net.sln")))
                {
                    candidate = Path.Combine(dir.FullName, "..", "shared", "golden", "tiny-sdxl");
                    return Directory.Exists(candidate) ? Path.GetFullPath(candidate) : null;
                }
            }

            return null;
        }
    }
}
