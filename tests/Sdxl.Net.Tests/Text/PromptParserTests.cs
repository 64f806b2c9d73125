using System.Text.Json;
using Sdxl.Net.Text;

namespace Sdxl.Net.Tests.Text;

/// <summary>
/// AUTOMATIC1111's <c>parse_prompt_attention</c> and ComfyUI's <c>token_weights</c>. Expected lists are written from
/// the grammars by hand (weights as the same left-to-right products Python computes, e.g. ((1.3 · 1.1) · 1.1)), or
/// copied from the examples in A1111's docstring, or read from the reference case's recorded parse.
/// </summary>
public sealed class PromptParserTests
{
    private static void AssertParse(string prompt, params (string Text, double Weight)[] expected) =>
        AssertSegments(expected, PromptParser.Parse(prompt));

    private static void AssertSegments((string Text, double Weight)[] expected, IReadOnlyList<PromptSegment> actual)
    {
        Assert.Equal(expected.Select(e => e.Text).ToArray(), actual.Select(a => a.Text).ToArray());

        // Exact: the weights are the same IEEE products A1111 computes.
        Assert.Equal(expected.Select(e => e.Weight).ToArray(), actual.Select(a => a.Weight).ToArray());
    }

    [Fact]
    public void Docstring_examples_of_A1111()
    {
        AssertParse("normal text", ("normal text", 1.0));
        AssertParse("an (important) word", ("an ", 1.0), ("important", 1.1), (" word", 1.0));
        AssertParse("(unbalanced", ("unbalanced", 1.1));
        AssertParse(@"\(literal\]", ("(literal]", 1.0));
        AssertParse("(unnecessary)(parens)", ("unnecessaryparens", 1.1));

        // The weights as the docstring prints them (Python repr of the doubles).
        AssertParse("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
            ("a ", 1.0), ("house", 1.5730000000000004), (" ", 1.1), ("on", 1.0), (" a ", 1.1), ("hill", 0.55),
            (", sun, ", 1.1), ("sky", 1.4641000000000006), (".", 1.1));
    }

    [Fact]
    public void Nesting_multiplies_inner_first()
    {
        // (x:w) pops its "(" with w, then each enclosing bracket multiplies: golden = (1 · 0.4) · 1.5.
        AssertParse("(detailed (golden:0.4) armor:1.5)", ("detailed ", 1.5), ("golden", 1.0 * 0.4 * 1.5), (" armor", 1.5));
        AssertParse("[[[dusty]]]", ("dusty", 1.0 * (1 / 1.1) * (1 / 1.1) * (1 / 1.1)));
        AssertParse("((a))", ("a", 1.0 * 1.1 * 1.1));
        AssertParse("([a])", ("a", 1.0 * (1 / 1.1) * 1.1));
    }

    [Fact]
    public void Weights_allow_spaces_signs_and_bare_decimals()
    {
        AssertParse("( a : 1.2 )", (" a ", 1.2));
        AssertParse("(a:-0.5)", ("a", -0.5));
        AssertParse("(a:+2)", ("a", 2.0));
        AssertParse("(a:.5)", ("a", 0.5));
        AssertParse("(a:2.)", ("a", 2.0));
    }

    [Fact]
    public void Colons_that_are_not_weights_stay_text()
    {
        AssertParse("a:b", ("a:b", 1.0));
        AssertParse("(a:b)", ("a:b", 1.1));
        AssertParse("time: 10:30", ("time: 10:30", 1.0));

        // ":1.5)" without an open "(" is text, and so is the ")" closing nothing.
        AssertParse("x:1.5) y", ("x:1.5) y", 1.0));
        AssertParse("a) b]", ("a) b]", 1.0));
    }

    [Fact]
    public void Escapes_and_backslashes()
    {
        AssertParse(@"\(a\) \[b\]", ("(a) [b]", 1.0));
        AssertParse(@"a\\b", (@"a\b", 1.0));

        // A lone backslash is consumed and yields nothing.
        AssertParse(@"a\b", ("ab", 1.0));
        AssertParse(@"(\(x\))", ("(x)", 1.1));
    }

    [Fact]
    public void Unclosed_brackets_weigh_everything_after_them()
    {
        AssertParse("a (b [c", ("a ", 1.0), ("b ", 1.1), ("c", 1.0 * 1.1 * (1 / 1.1)));
        AssertParse("a [b", ("a ", 1.0), ("b", 1 / 1.1));
    }

    [Fact]
    public void Empty_prompt_is_one_empty_piece()
    {
        AssertParse(string.Empty, (string.Empty, 1.0));
        AssertParse("()", (string.Empty, 1.0));
    }

    [Fact]
    public void Break_splits_top_level_text_and_eats_surrounding_whitespace()
    {
        var parsed = PromptParser.Parse("a cat  BREAK\ta dog");
        AssertSegments([("a cat", 1.0), ("BREAK", -1.0), ("a dog", 1.0)], parsed);
        Assert.True(parsed[1].IsBreak);

        // Only the whole word: BREAKFAST and aBREAK are text.
        AssertParse("BREAKFAST aBREAK", ("BREAKFAST aBREAK", 1.0));

        // BREAK at the start leaves an empty first piece, which merges with nothing (its weight 1 differs from -1).
        AssertSegments([(string.Empty, 1.0), ("BREAK", -1.0), ("x", 1.0)], PromptParser.Parse("BREAK x"));
    }

    [Fact]
    public void Break_inside_brackets_is_weighted_text_as_in_A1111()
    {
        // multiply_range also multiplies the marker's -1, so it no longer counts as a BREAK.
        var parsed = PromptParser.Parse("(a BREAK b)");
        AssertSegments([("a", 1.1), ("BREAK", -1.0 * 1.1), ("b", 1.1)], parsed);
        Assert.DoesNotContain(parsed, p => p.IsBreak);
    }

    [Fact]
    public void A_weight_that_is_not_a_number_is_refused()
    {
        var e = Assert.Throws<ArgumentException>(() => PromptParser.Parse("(a:1.2.3)"));
        Assert.Contains("1.2.3", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => PromptParser.Parse("(a:.)"));
    }

    [Fact]
    public void ComfyUI_sets_explicit_weights_and_reads_square_brackets_as_text()
    {
        AssertSegments([("a", 1.5), (" ", 1.0), ("b", 1.1), (" [c]", 1.0)], PromptParser.Parse("(a:1.5) (b) [c]", PromptWeighting.ComfyUI));

        // (x:w) replaces the enclosing weight: ((a:1.5)) is 1.5 in ComfyUI, 1.5 · 1.1 in A1111.
        AssertSegments([("a", 1.5)], PromptParser.Parse("((a:1.5))", PromptWeighting.ComfyUI));
        AssertParse("((a:1.5))", ("a", 1.5 * 1.1));

        // Nested plain brackets multiply; a colon without a number stays; BREAK is text; \( \) are literal.
        AssertSegments([("a", 1.1 * 1.1)], PromptParser.Parse("((a))", PromptWeighting.ComfyUI));
        AssertSegments([("a:b", 1.1)], PromptParser.Parse("(a:b)", PromptWeighting.ComfyUI));
        AssertSegments([("x BREAK y", 1.0)], PromptParser.Parse("x BREAK y", PromptWeighting.ComfyUI));
        AssertSegments([("(x)", 1.0)], PromptParser.Parse(@"\(x\)", PromptWeighting.ComfyUI));
        Assert.Empty(PromptParser.Parse(string.Empty, PromptWeighting.ComfyUI));
    }

    public static TheoryData<string> FeatureCases()
    {
        var data = new TheoryData<string>();
        foreach (var dir in WeightedFeatureCases.Directories())
        {
            data.Add(Path.GetFileName(dir));
        }

        if (data.Count == 0)
        {
            data.Add("(none)");
        }

        return data;
    }

    [TinySdxlTheory]
    [MemberData(nameof(FeatureCases))]
    public void Parse_matches_the_reference_cases_recorded_A1111_parse(string caseName)
    {
        var p = WeightedFeatureCases.Params(caseName);
        var parse = p.GetProperty("a1111_parse");
        foreach (var (key, textKey) in new[] { ("prompt", "prompt"), ("negative_prompt", "negative_prompt") })
        {
            if (!parse.TryGetProperty(key, out var expected) || p.GetProperty(textKey).ValueKind != JsonValueKind.String)
            {
                continue;
            }

            var pairs = expected.EnumerateArray().Select(e => (e[0].GetString()!, e[1].GetDouble())).ToArray();
            AssertSegments(pairs, PromptParser.Parse(p.GetProperty(textKey).GetString()!));
        }
    }
}
