namespace Sdxl.Net.Tests.Samples;

/// <summary>The README's C# quick start is the sample that is built (and run against the packed package by eng/pack-smoke-test.sh).</summary>
public sealed class ReadmeSnippetTests
{
    [Fact]
    public void The_readme_quick_start_is_samples_QuickStart_Program_cs()
    {
        var readme = File.ReadAllText(Path.Combine(TestPaths.RepositoryRoot, "README.md")).ReplaceLineEndings("\n");
        var program = File.ReadAllText(Path.Combine(TestPaths.RepositoryRoot, "samples", "QuickStart", "Program.cs")).ReplaceLineEndings("\n");

        var section = readme.IndexOf("## Quick start", StringComparison.Ordinal);
        Assert.True(section >= 0, "README.md has no '## Quick start' section");
        var start = readme.IndexOf("```csharp\n", section, StringComparison.Ordinal) + "```csharp\n".Length;
        var end = readme.IndexOf("```\n", start, StringComparison.Ordinal);
        Assert.Equal(program, readme[start..end]);
    }
}
