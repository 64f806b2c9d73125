using System.Diagnostics;
using Sdxl.Net.Text;
using Xunit;
using Xunit.Abstractions;

namespace Sdxl.Net.Tests.Text;

/// <summary>Loading vocabularies and configs, synthetic vocabularies, errors, concurrency.</summary>
public sealed class ClipTokenizerLoadingTests(ClipTokenizerFixture fixture, ITestOutputHelper output)
    : IClassFixture<ClipTokenizerFixture>, IDisposable
{
    // A vocabulary whose ids have nothing in common with CLIP's, so every id asserted below must come from it.
    private const string SyntheticVocab = """
        {"<|startoftext|>": 7, "<|endoftext|>": 8, "!": 9, "a": 20, "b": 21, "c": 22,
         "a</w>": 30, "b</w>": 31, "c</w>": 32, "ab": 40, "abc</w>": 41}
        """;

    private const string SyntheticMerges = "#version: 0.2\na b\nab c</w>\n";

    private readonly string _directory = Path.Combine(Path.GetTempPath(), "sdxl-net-clip-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public void SdxlFolders_HaveClipSpecialIdsAndTheirOwnPadIds()
    {
        Assert.Equal(77, fixture.Tokenizer1.MaxLength);
        Assert.Equal(49406, fixture.Tokenizer1.BosTokenId);
        Assert.Equal(49407, fixture.Tokenizer1.EosTokenId);
        Assert.Equal(49407, fixture.Tokenizer1.PadTokenId);

        Assert.Equal(77, fixture.Tokenizer2.MaxLength);
        Assert.Equal(49406, fixture.Tokenizer2.BosTokenId);
        Assert.Equal(49407, fixture.Tokenizer2.EosTokenId);
        Assert.Equal(0, fixture.Tokenizer2.PadTokenId);
    }

    [Fact]
    public void Create_UsesTheGivenPadToken()
    {
        var vocab = Path.Combine(TestPaths.ClipTokenizer, "vocab.json");
        var merges = Path.Combine(TestPaths.ClipTokenizer, "merges.txt");
        Assert.Equal(49407, ClipTokenizer.Create(vocab, merges).PadTokenId);
        Assert.Equal(0, ClipTokenizer.Create(vocab, merges, padToken: "!").PadTokenId);
    }

    [Fact]
    public void SyntheticVocabulary_IdsComeFromTheVocabularyAndMergesFromMergesTxt()
    {
        var tokenizer = ClipTokenizer.Create(Write("vocab.json", SyntheticVocab), Write("merges.txt", SyntheticMerges));
        Assert.Equal(7, tokenizer.BosTokenId);
        Assert.Equal(8, tokenizer.EosTokenId);
        Assert.Equal(8, tokenizer.PadTokenId);

        // "abc": a b c</w> -> (a b) -> ab c</w> -> (ab c</w>) -> abc</w>.
        Assert.Equal([41], tokenizer.EncodeToIds("abc"));
        // Lower-cased first; "cab" = c a b</w>: no merge applies ("a b" is not "a b</w>").
        Assert.Equal([41, 22, 20, 31], tokenizer.EncodeToIds("ABC cab"));
        // A symbol missing from the vocabulary maps to the unknown token <|endoftext|>, as in transformers.
        Assert.Equal([40, 22, 8], tokenizer.EncodeToIds("abcd"));
    }

    [Fact]
    public void SyntheticVocabulary_TruncatesAndPadsToMaxLength()
    {
        var tokenizer = ClipTokenizer.Create(
            Write("vocab.json", SyntheticVocab), Write("merges.txt", SyntheticMerges), padToken: "!", maxLength: 5);

        var encoded = tokenizer.Encode("abc cab");
        Assert.Equal([7, 41, 22, 20, 8], encoded.InputIds);
        Assert.True(encoded.Truncated);
        Assert.Equal(4, encoded.TokenCount);
        Assert.Equal(3, encoded.KeptTokenCount);

        var padded = tokenizer.Encode("abc");
        Assert.Equal([7, 41, 8, 9, 9], padded.InputIds);
        Assert.False(padded.Truncated);

        Assert.Equal([7, 8, 9, 9, 9], tokenizer.Encode(string.Empty).InputIds);
    }

    [Fact]
    public void FromDirectory_ReadsPadTokenObjectAndModelMaxLength()
    {
        Write("vocab.json", SyntheticVocab);
        Write("merges.txt", SyntheticMerges);
        Write("tokenizer_config.json", """{"model_max_length": 6, "pad_token": "<|endoftext|>"}""");
        // special_tokens_map.json overrides tokenizer_config.json, as in transformers.
        Write("special_tokens_map.json", """{"pad_token": {"content": "!", "lstrip": false, "normalized": false}}""");

        var tokenizer = ClipTokenizer.FromDirectory(_directory);
        Assert.Equal(6, tokenizer.MaxLength);
        Assert.Equal(9, tokenizer.PadTokenId);
        Assert.Equal([7, 41, 8, 9, 9, 9], tokenizer.Encode("abc").InputIds);
    }

    [Fact]
    public void FromDirectory_WithoutConfigFiles_DefaultsTo77AndEndOfTextPadding()
    {
        Write("vocab.json", SyntheticVocab);
        Write("merges.txt", SyntheticMerges);

        var tokenizer = ClipTokenizer.FromDirectory(_directory);
        Assert.Equal(77, tokenizer.MaxLength);
        Assert.Equal(8, tokenizer.PadTokenId);
    }

    [Fact]
    public void MissingFiles_NameTheFile()
    {
        Directory.CreateDirectory(_directory);
        var missingDirectory = Assert.Throws<DirectoryNotFoundException>(
            () => ClipTokenizer.FromDirectory(Path.Combine(_directory, "nope")));
        Assert.Contains("nope", missingDirectory.Message);

        Write("merges.txt", SyntheticMerges);
        var missingVocab = Assert.Throws<FileNotFoundException>(() => ClipTokenizer.FromDirectory(_directory));
        Assert.Contains("vocab.json", missingVocab.Message);

        File.Delete(Path.Combine(_directory, "merges.txt"));
        Write("vocab.json", SyntheticVocab);
        var missingMerges = Assert.Throws<FileNotFoundException>(() => ClipTokenizer.FromDirectory(_directory));
        Assert.Contains("merges.txt", missingMerges.Message);
    }

    [Fact]
    public void UnknownPadToken_IsRejected()
    {
        var vocab = Write("vocab.json", SyntheticVocab);
        var merges = Write("merges.txt", SyntheticMerges);

        var error = Assert.Throws<InvalidDataException>(() => ClipTokenizer.Create(vocab, merges, padToken: "<pad>"));
        Assert.Contains("pad", error.Message);
        Assert.Contains("'<pad>'", error.Message);
        Assert.Contains(vocab, error.Message);
    }

    [Fact]
    public void VocabularyWithoutEndOfText_IsRejected()
    {
        var vocab = Write("vocab.json", """{"<|startoftext|>": 0, "a": 1, "a</w>": 2}""");
        var error = Assert.Throws<InvalidDataException>(
            () => ClipTokenizer.Create(vocab, Write("merges.txt", "#version: 0.2\n"), padToken: "a"));
        Assert.Contains("<|endoftext|>", error.Message);
    }

    [Fact]
    public void MalformedFiles_AreReportedWithTheirPath()
    {
        var vocab = Write("vocab.json", """["not", "an", "object"]""");
        var merges = Write("merges.txt", SyntheticMerges);
        var badVocab = Assert.Throws<InvalidDataException>(() => ClipTokenizer.Create(vocab, merges));
        Assert.Contains(vocab, badVocab.Message);

        vocab = Write("vocab.json", SyntheticVocab);
        merges = Write("merges.txt", "#version: 0.2\na b\nabc\n");
        var badMerges = Assert.Throws<InvalidDataException>(() => ClipTokenizer.Create(vocab, merges));
        Assert.Contains(merges, badMerges.Message);
        Assert.Contains("line 3", badMerges.Message);

        Write("merges.txt", SyntheticMerges);
        Write("tokenizer_config.json", """{"model_max_length": 1000000000000000019884624838656}""");
        var badLength = Assert.Throws<InvalidDataException>(() => ClipTokenizer.FromDirectory(_directory));
        Assert.Contains("model_max_length", badLength.Message);

        Write("tokenizer_config.json", """{"pad_token": 5}""");
        var badPad = Assert.Throws<InvalidDataException>(() => ClipTokenizer.FromDirectory(_directory));
        Assert.Contains("pad_token", badPad.Message);
        Assert.Contains("tokenizer_config.json", badPad.Message);
    }

    [Fact]
    public void InvalidArguments_AreRejected()
    {
        var vocab = Path.Combine(TestPaths.ClipTokenizer, "vocab.json");
        var merges = Path.Combine(TestPaths.ClipTokenizer, "merges.txt");
        Assert.Throws<InvalidDataException>(() => ClipTokenizer.Create(vocab, merges, maxLength: 1));
        Assert.Throws<ArgumentNullException>(() => fixture.Tokenizer1.EncodeToIds(null!));
    }

    [Fact]
    public void ConcurrentEncoding_GivesTheSameIdsAsSequentialEncoding()
    {
        var prompts = fixture.Prompts.Values.Select(p => p.Prompt).ToArray();
        var expected = prompts.Select(p => fixture.Tokenizer2.Encode(p).InputIds.ToArray()).ToArray();

        var actual = new int[prompts.Length * 20][];
        Parallel.For(0, actual.Length, i => actual[i] = fixture.Tokenizer2.Encode(prompts[i % prompts.Length]).InputIds.ToArray());

        for (var i = 0; i < actual.Length; i++)
        {
            Assert.Equal(expected[i % prompts.Length], actual[i]);
        }
    }

    [Fact]
    public void RepeatedEncoding_IsCheapAndStable()
    {
        // No timing assertion (shared machines are noisy); the elapsed time is reported for a human to read.
        var prompt = fixture.Prompts["long_prompt"].Prompt;
        var first = fixture.Tokenizer1.Encode(prompt).InputIds.ToArray();
        const int iterations = 2000;
        var stopwatch = Stopwatch.StartNew();
        for (var i = 0; i < iterations; i++)
        {
            Assert.Equal(first.Length, fixture.Tokenizer1.Encode(prompt).InputIds.Count);
        }

        stopwatch.Stop();
        output.WriteLine($"Encode of a {prompt.Length}-character prompt: {stopwatch.Elapsed.TotalMicroseconds / iterations:F1} µs");
        Assert.Equal(first, fixture.Tokenizer1.Encode(prompt).InputIds);
    }

    [Theory]
    [InlineData("İSTANBUL", "i\u0307stanbul")]
    [InlineData("ΟΔΟΣ", "οδος")]
    [InlineData("ΣΑ", "σα")]
    [InlineData("ΑΣ.", "ας.")]
    [InlineData("Hello WORLD", "hello world")]
    public void PythonLower_MatchesPythonStrLower(string text, string expected)
        => Assert.Equal(expected, PythonText.ToLower(text));

    public void Dispose()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    private string Write(string name, string contents)
    {
        Directory.CreateDirectory(_directory);
        var path = Path.Combine(_directory, name);
        File.WriteAllText(path, contents);
        return path;
    }
}
