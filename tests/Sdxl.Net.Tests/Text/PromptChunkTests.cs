using System.Text.Json;
using Sdxl.Net.Text;

namespace Sdxl.Net.Tests.Text;

/// <summary>
/// AUTOMATIC1111's chunking (<c>tokenize_line</c>): 75 tokens per chunk, BOS/EOS/padding per chunk, the comma rule and
/// BREAK. Expected layouts are counted by hand from that algorithm; "cat", "dog" and "," are one token each.
/// </summary>
public sealed class PromptChunkTests(ClipTokenizerFixture fixture) : IClassFixture<ClipTokenizerFixture>
{
    private const int Bos = 49406, Eos = 49407;

    private static string Words(string word, int count) => string.Join(' ', Enumerable.Repeat(word, count));

    [Fact]
    public void A_200_token_prompt_is_three_chunks_of_75_75_50()
    {
        var tokenizer = fixture.Tokenizer1;
        Assert.Single(tokenizer.EncodeToIds("cat"));
        var chunks = tokenizer.EncodeChunks(Words("cat", 200));
        Assert.Equal([75, 75, 50], chunks.Select(c => c.TokenCount).ToArray());
        foreach (var chunk in chunks)
        {
            Assert.Equal(77, chunk.InputIds.Count);
            Assert.Equal(Bos, chunk.InputIds[0]);
            Assert.Equal(Eos, chunk.InputIds[chunk.TokenCount + 1]);
            Assert.All(chunk.Weights, w => Assert.Equal(1f, w));
        }

        Assert.Equal(Eos, chunks[0].InputIds[76]);
        Assert.All(chunks[2].InputIds.Skip(51), id => Assert.Equal(Eos, id));
    }

    [Fact]
    public void Second_tokenizer_pads_with_its_pad_id_after_the_first_eos()
    {
        var chunk = Assert.Single(fixture.Tokenizer2.EncodeChunks("a cat"));
        Assert.Equal(0, fixture.Tokenizer2.PadTokenId);
        Assert.Equal(Bos, chunk.InputIds[0]);
        Assert.Equal(Eos, chunk.InputIds[3]);
        Assert.All(chunk.InputIds.Skip(4), id => Assert.Equal(0, id));

        // The same ids as the plain tokenization (which pads the same way).
        Assert.Equal(fixture.Tokenizer2.Encode("a cat").InputIds, chunk.InputIds);
    }

    [Fact]
    public void A_full_chunk_breaks_after_a_comma_among_its_last_20_tokens()
    {
        // 70 cats, a comma at position 70, then dogs: positions 71..74 hold 4 dogs; the 5th dog finds the chunk full
        // with its last comma 75 - 70 = 5 <= 20 tokens back, so the 4 dogs move to the next chunk.
        var chunks = fixture.Tokenizer1.EncodeChunks(Words("cat", 70) + ", " + Words("dog", 10));
        Assert.Equal([71, 10], chunks.Select(c => c.TokenCount).ToArray());
        Assert.Equal(Eos, chunks[0].InputIds[72]);
        Assert.Equal(fixture.Tokenizer1.EncodeToIds("dog")[0], chunks[1].InputIds[1]);
    }

    [Fact]
    public void A_comma_more_than_20_tokens_back_does_not_move_anything()
    {
        // 50 cats, comma at 50, 24 dogs fill the chunk; the next dog is 75 - 50 = 25 > 20 tokens from the comma.
        var chunks = fixture.Tokenizer1.EncodeChunks(Words("cat", 50) + ", " + Words("dog", 30));
        Assert.Equal([75, 6], chunks.Select(c => c.TokenCount).ToArray());
    }

    [Fact]
    public void Break_closes_the_chunk_and_a_trailing_break_adds_none()
    {
        Assert.Equal([1, 1], fixture.Tokenizer1.EncodeChunks("cat BREAK dog").Select(c => c.TokenCount).ToArray());
        Assert.Equal([1], fixture.Tokenizer1.EncodeChunks("cat BREAK").Select(c => c.TokenCount).ToArray());

        // A leading BREAK closes an empty chunk first.
        Assert.Equal([0, 1], fixture.Tokenizer1.EncodeChunks("BREAK dog").Select(c => c.TokenCount).ToArray());
    }

    [Fact]
    public void Each_piece_is_tokenized_on_its_own_and_carries_its_weight()
    {
        // "(photo)graph": "photo" and "graph" are tokenized separately, not as the word "photograph".
        var chunk = Assert.Single(fixture.Tokenizer1.EncodeChunks("(photo)graph"));
        var photo = fixture.Tokenizer1.EncodeToIds("photo");
        var graph = fixture.Tokenizer1.EncodeToIds("graph");
        Assert.Equal([Bos, .. photo, .. graph, Eos], chunk.InputIds.Take(2 + photo.Count + graph.Count).ToArray());
        Assert.Equal((float)1.1, chunk.Weights[1]);
        Assert.Equal(1f, chunk.Weights[1 + photo.Count]);
        Assert.Equal("photo</w>", fixture.Tokenizer1.TokenText(photo[0]));
    }

    [Fact]
    public void Empty_prompt_is_one_chunk_of_bos_and_eos()
    {
        var chunk = Assert.Single(fixture.Tokenizer1.EncodeChunks(string.Empty));
        Assert.Equal(0, chunk.TokenCount);
        Assert.Equal(fixture.Tokenizer1.Encode(string.Empty).InputIds, chunk.InputIds);
    }

    [TinySdxlTheory]
    [MemberData(nameof(PromptParserTests.FeatureCases), MemberType = typeof(PromptParserTests))]
    public void Chunks_match_the_reference_cases_recorded_A1111_chunks(string caseName)
    {
        var p = WeightedFeatureCases.Params(caseName);
        var tokenizer = ClipTokenizer.FromDirectory(Path.Combine(TestPaths.TinySdxl!, p.GetProperty("model").GetString()!, "tokenizer"));
        var recorded = p.GetProperty("a1111_chunks");
        foreach (var (key, textKey) in new[] { ("prompt_chunks", "prompt"), ("negative_prompt_chunks", "negative_prompt") })
        {
            if (!recorded.TryGetProperty(key, out var expected) || !p.TryGetProperty(textKey, out var text) || text.ValueKind != JsonValueKind.String)
            {
                continue;
            }

            var chunks = tokenizer.EncodeChunks(text.GetString()!);
            Assert.Equal(expected.GetArrayLength(), chunks.Count);
            for (int c = 0; c < chunks.Count; c++)
            {
                Assert.Equal(expected[c].GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32()).ToArray(), chunks[c].InputIds);
                Assert.Equal(expected[c].GetProperty("multipliers").EnumerateArray().Select(m => m.GetSingle()).ToArray(), chunks[c].Weights);
            }
        }
    }
}
