using System.Text.Json;
using Sdxl.Net.Text;
using Xunit;

namespace Sdxl.Net.Tests.Text;

/// <summary>
/// SDXL's two tokenizers built once for all tests: <c>tokenizer/</c> straight from the test data, and
/// <c>tokenizer_2/</c> assembled in a temporary folder from the shared vocabulary and its own config files (as in
/// a real SDXL model folder, where both hold identical vocab.json and merges.txt).
/// </summary>
public sealed class ClipTokenizerFixture : IDisposable
{
    private readonly string _tokenizer2Directory;

    public ClipTokenizerFixture()
    {
        Tokenizer1 = ClipTokenizer.FromDirectory(TestPaths.ClipTokenizer);

        _tokenizer2Directory = Path.Combine(Path.GetTempPath(), "sdxl-net-tokenizer_2-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_tokenizer2Directory);
        foreach (var file in new[] { "vocab.json", "merges.txt" })
        {
            File.Copy(Path.Combine(TestPaths.ClipTokenizer, file), Path.Combine(_tokenizer2Directory, file));
        }

        foreach (var file in Directory.GetFiles(Path.Combine(TestPaths.ClipTokenizer, "tokenizer_2")))
        {
            File.Copy(file, Path.Combine(_tokenizer2Directory, Path.GetFileName(file)));
        }

        Tokenizer2 = ClipTokenizer.FromDirectory(_tokenizer2Directory);

        using var golden = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.Golden, "tokenizer.json")));
        Prompts = golden.RootElement.GetProperty("prompts").EnumerateArray().Select(GoldenPrompt.Parse)
            .ToDictionary(p => p.Name, StringComparer.Ordinal);
        Vocabulary = JsonSerializer.Deserialize<Dictionary<string, int>>(
            File.ReadAllText(Path.Combine(TestPaths.ClipTokenizer, "vocab.json")))!;
    }

    /// <summary>SDXL <c>tokenizer/</c>: pads with <c>&lt;|endoftext|&gt;</c>.</summary>
    public ClipTokenizer Tokenizer1 { get; }

    /// <summary>SDXL <c>tokenizer_2/</c>: pads with <c>!</c>, which is also an added token.</summary>
    public ClipTokenizer Tokenizer2 { get; }

    /// <summary>The prompts of golden/tokenizer.json by name.</summary>
    public IReadOnlyDictionary<string, GoldenPrompt> Prompts { get; }

    /// <summary>The CLIP vocab.json, read independently of the tokenizer.</summary>
    public IReadOnlyDictionary<string, int> Vocabulary { get; }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_tokenizer2Directory, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover temp folder is harmless.
        }
    }
}

/// <summary>One entry of golden/tokenizer.json (OpenAI simple_tokenizer output).</summary>
public sealed record GoldenPrompt(
    string Name,
    string Prompt,
    int[] Ids,
    bool Truncated,
    int[] Tokenizer1InputIds,
    int[] Tokenizer2InputIds,
    string? Note)
{
    public static GoldenPrompt Parse(JsonElement e) => new(
        e.GetProperty("name").GetString()!,
        e.GetProperty("prompt").GetString()!,
        e.GetProperty("ids").Deserialize<int[]>()!,
        e.GetProperty("truncated").GetBoolean(),
        e.GetProperty("tokenizer1_input_ids").Deserialize<int[]>()!,
        e.GetProperty("tokenizer2_input_ids").Deserialize<int[]>()!,
        e.TryGetProperty("note", out var note) ? note.GetString() : null);

    public override string ToString() => Name;
}
