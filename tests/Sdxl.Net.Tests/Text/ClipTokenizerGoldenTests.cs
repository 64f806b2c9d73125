using System.Text.Json;
using Sdxl.Net.Text;
using Xunit;

namespace Sdxl.Net.Tests.Text;

/// <summary>
/// ClipTokenizer against golden/tokenizer.json (OpenAI's simple_tokenizer). Where the golden notes say Hugging Face's
/// CLIPTokenizer, which diffusers uses, gives a different result (HTML entities, CJK ideographs), the tests expect the
/// Hugging Face result and say where it comes from.
/// </summary>
public sealed class ClipTokenizerGoldenTests(ClipTokenizerFixture fixture) : IClassFixture<ClipTokenizerFixture>
{
    private const int Bos = 49406;
    private const int Eos = 49407;

    /// <summary>Prompts whose OpenAI ids are not what Hugging Face's CLIPTokenizer (without ftfy) produces.</summary>
    private static readonly HashSet<string> HuggingFaceDiffers = ["html_amp", "html_double", "cjk_ja"];

    public static TheoryData<string> AgreeingPrompts()
    {
        using var golden = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.Golden, "tokenizer.json")));
        var data = new TheoryData<string>();
        foreach (var prompt in golden.RootElement.GetProperty("prompts").EnumerateArray())
        {
            var name = prompt.GetProperty("name").GetString()!;
            if (!HuggingFaceDiffers.Contains(name))
            {
                data.Add(name);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(AgreeingPrompts))]
    public void Tokenizer1_MatchesGoldenIdsAndPaddedEncoding(string name)
    {
        var golden = fixture.Prompts[name];

        Assert.Equal(golden.Ids, fixture.Tokenizer1.EncodeToIds(golden.Prompt));

        var encoded = fixture.Tokenizer1.Encode(golden.Prompt);
        Assert.Equal(golden.Tokenizer1InputIds, encoded.InputIds);
        Assert.Equal(golden.Ids.Length, encoded.TokenCount);
        Assert.Equal(golden.Truncated, encoded.Truncated);
        Assert.Equal(Math.Min(golden.Ids.Length, 75), encoded.KeptTokenCount);
    }

    [Theory]
    [MemberData(nameof(AgreeingPrompts))]
    public void Tokenizer2_MatchesGoldenIdsAndPaddedEncoding(string name)
    {
        var golden = fixture.Prompts[name];
        Assert.Equal(golden.Ids, fixture.Tokenizer2.EncodeToIds(golden.Prompt));
        var encoded = fixture.Tokenizer2.Encode(golden.Prompt);
        Assert.Equal(golden.Tokenizer2InputIds, encoded.InputIds);
        Assert.Equal(golden.Truncated, encoded.Truncated);
    }

    [Fact]
    public void LongPrompt_IsTruncatedTo75TokensAndStillEndsWithEos()
    {
        var golden = fixture.Prompts["long_prompt"];
        Assert.True(golden.Ids.Length > 75);

        foreach (var tokenizer in new[] { fixture.Tokenizer1, fixture.Tokenizer2 })
        {
            var encoded = tokenizer.Encode(golden.Prompt);
            Assert.True(encoded.Truncated);
            Assert.Equal(golden.Ids.Length, encoded.TokenCount);
            Assert.Equal(75, encoded.KeptTokenCount);
            Assert.Equal(77, encoded.InputIds.Count);
            Assert.Equal(Bos, encoded.InputIds[0]);
            Assert.Equal(golden.Ids.Take(75), encoded.InputIds.Skip(1).Take(75));
            Assert.Equal(Eos, encoded.InputIds[76]);
        }
    }

    [Fact]
    public void Exactly75Tokens_FitWithoutTruncation()
    {
        var encoded = fixture.Tokenizer2.Encode(fixture.Prompts["len_75_words"].Prompt);
        Assert.False(encoded.Truncated);
        Assert.Equal(75, encoded.KeptTokenCount);
        Assert.Equal(Eos, encoded.InputIds[76]);
    }

    [Fact]
    public void HtmlEntities_AreNotUnescaped_LikeHuggingFace()
    {
        // OpenAI's basic_clean html-unescapes twice ("salt & pepper"); HF's CLIPTokenizer does not, so "&amp;"
        // stays "&", "amp", ";" (the note on html_amp). Expected ids are whole-word entries of vocab.json.
        var golden = fixture.Prompts["html_amp"];
        var expected = Words("salt", "&", "amp", ";", "pepper");
        Assert.Equal(expected, fixture.Tokenizer1.EncodeToIds(golden.Prompt));
        Assert.NotEqual(golden.Ids, expected);

        var doubleEscaped = fixture.Prompts["html_double"];
        Assert.Equal(
            Words("&", "amp", ";", "amp", ";", "and", "&", "amp", ";", "lt", ";"),
            fixture.Tokenizer1.EncodeToIds(doubleEscaped.Prompt));
    }

    [Fact]
    public void CjkIdeographs_AreSplitIntoSeparateWords_LikeHuggingFace()
    {
        // HF's BasicTokenizer puts spaces around CJK Unified Ideographs (not kana): 東京の夜景 -> 東 京 の 夜 景.
        var golden = fixture.Prompts["cjk_ja"];
        var ids = fixture.Tokenizer1.EncodeToIds(golden.Prompt);
        Assert.Equal(fixture.Tokenizer1.EncodeToIds("東 京 の 夜 景"), ids);
        Assert.NotEqual(golden.Ids, ids);

        // Hangul is not split: it matches OpenAI's result (the golden hangul prompt passes unchanged above).
        Assert.Equal(fixture.Prompts["hangul"].Ids, fixture.Tokenizer1.EncodeToIds(fixture.Prompts["hangul"].Prompt));
    }

    [Fact]
    public void PadTokenText_IsOrdinaryText_ForBothTokenizers()
    {
        // tokenizer_2 pads with "!" (id 0), but "!" inside a prompt is encoded by BPE like any text, as in the
        // reference tokenizer: the pad setting only fills the positions after EOS.
        const string prompt = "! !! !!!";
        int[] ids = [256, 748, 995];
        Assert.Equal(ids, fixture.Tokenizer1.EncodeToIds(prompt));
        Assert.Equal(ids, fixture.Tokenizer2.EncodeToIds(prompt));
        var padded = fixture.Tokenizer2.Encode(prompt).InputIds;
        Assert.Equal([Bos, .. ids, Eos], padded.Take(5));
        Assert.All(padded.Skip(5), id => Assert.Equal(0, id));
    }

    [Fact]
    public void SpecialTokenText_IsMatchedAfterLowerCasing()
    {
        var golden = fixture.Prompts["special_literal"];
        Assert.Equal(golden.Ids, fixture.Tokenizer1.EncodeToIds("a <|ENDOFTEXT|> b"));
        Assert.Equal([320, Bos, 321], fixture.Tokenizer1.EncodeToIds("a <|startoftext|> b"));
    }

    [Fact]
    public void DecomposedAccents_AreNfcNormalized()
    {
        // BasicTokenizer NFC-normalizes: "cafe" + U+0301 encodes like "café" (first pre-token of accents_fr).
        // .NET can only normalize when ICU is available (not in globalization-invariant mode, which this test
        // host uses); without it the decomposed text is byte-level encoded as it is.
        var golden = fixture.Prompts["accents_fr"];
        var ids = fixture.Tokenizer1.EncodeToIds("cafe\u0301");
        if ("e\u0301".Normalize(System.Text.NormalizationForm.FormC) == "\u00E9")
        {
            Assert.Equal(golden.Ids[0], Assert.Single(ids));
        }
        else
        {
            Assert.NotEqual(golden.Ids[0], ids[0]);
        }
    }

    [Fact]
    public void TinySdxlModelFolders_ReproduceTheCaseTokenIds()
    {
        if (TestPaths.TinySdxl is not { } tiny)
        {
            return; // The shared tiny models are not present on this machine.
        }

        var checkedCases = 0;
        var tokenizers = new Dictionary<string, ClipTokenizer>(StringComparer.Ordinal);
        foreach (var paramsPath in Directory.GetFiles(Path.Combine(tiny, "cases"), "params.json", SearchOption.AllDirectories))
        {
            using var parameters = JsonDocument.Parse(File.ReadAllText(paramsPath));
            var root = parameters.RootElement;
            var model = Path.Combine(tiny, root.GetProperty("model").GetString()!);
            var tokenIds = root.GetProperty("token_ids");
            foreach (var (encoder, folder) in new[] { ("text_encoder", "tokenizer"), ("text_encoder_2", "tokenizer_2") })
            {
                if (!Directory.Exists(Path.Combine(model, folder)))
                {
                    continue;
                }

                var directory = Path.Combine(model, folder);
                if (!tokenizers.TryGetValue(directory, out var tokenizer))
                {
                    tokenizers[directory] = tokenizer = ClipTokenizer.FromDirectory(directory);
                }

                foreach (var (key, text) in new[] { ("prompt", root.GetProperty("prompt")), ("negative_prompt", root.GetProperty("negative_prompt")) })
                {
                    if (tokenIds.TryGetProperty($"{encoder}.{key}", out var expected))
                    {
                        Assert.Equal(expected.Deserialize<int[]>(), tokenizer.Encode(text.GetString()!).InputIds);
                        checkedCases++;
                    }
                }
            }
        }

        Assert.True(checkedCases > 0, "No token ids found in the tiny-sdxl cases.");
    }

    private int[] Words(params string[] words) => [.. words.Select(w => fixture.Vocabulary[w + "</w>"])];
}
