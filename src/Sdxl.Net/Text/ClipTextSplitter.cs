using System.Globalization;
using System.Text;

namespace Sdxl.Net.Text;

/// <summary>
/// Turns prompt text into the pre-tokens that the BPE model encodes, as the Hugging Face <c>CLIPTokenizer</c> does
/// when ftfy is not installed (ftfy is not a dependency of transformers or diffusers, so this is the behaviour a
/// default diffusers install has).
/// </summary>
/// <remarks>
/// <para>
/// Cleanup is transformers' <c>BasicTokenizer(strip_accents=False, do_split_on_punc=False)</c>: drop NUL, U+FFFD
/// and every code point of category C* except format characters (control, private use, unassigned; format characters such as ZERO WIDTH JOINER are kept, as CLIP keeps them); map
/// tab/CR/LF and Zs spaces to a space; put spaces around CJK ideographs; NFC-normalize; split on whitespace;
/// lower-case each word with Python's <c>str.lower()</c>. Unlike OpenAI's <c>simple_tokenizer</c>, HTML entities are
/// left alone (<c>&amp;amp;</c> stays five characters).
/// </para>
/// <para>
/// Each word is then split with CLIP's pattern
/// <c>&lt;\|startoftext\|&gt;|&lt;\|endoftext\|&gt;|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+</c>.
/// That is scanned by hand rather than with <see cref="System.Text.RegularExpressions.Regex"/>: .NET classifies
/// UTF-16 code units, so a letter outside the BMP (a surrogate pair) would fall into the punctuation class, whereas
/// Python's <c>regex</c> classifies code points.
/// </para>
/// </remarks>
internal static class ClipTextSplitter
{
    private const string StartOfText = "<|startoftext|>";
    private const string EndOfText = "<|endoftext|>";
    private static readonly string[] Contractions = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"];

    /// <summary>Appends the pre-tokens of <paramref name="text"/> to <paramref name="preTokens"/>.</summary>
    public static void Split(string text, List<string> preTokens)
    {
        var cleaned = Clean(text);
        if (cleaned.Length == 0)
        {
            return;
        }

        cleaned = NormalizeNfc(cleaned);

        var start = -1;
        for (var i = 0; i <= cleaned.Length;)
        {
            var atEnd = i == cleaned.Length;
            var rune = atEnd ? default : Rune.GetRuneAt(cleaned, i);
            if (atEnd || PythonText.IsWhiteSpace(rune))
            {
                if (start >= 0)
                {
                    SplitWord(PythonText.ToLower(cleaned[start..i]), preTokens);
                    start = -1;
                }

                if (atEnd)
                {
                    break;
                }
            }
            else if (start < 0)
            {
                start = i;
            }

            i += rune.Utf16SequenceLength;
        }
    }

    // .NET delegates normalization to ICU. In globalization-invariant mode there is no ICU and non-ASCII text comes
    // back unchanged (or the call throws on older runtimes), so decomposed input (e + U+0301) stays decomposed there
    // and tokenizes differently from Python. Typed and pasted prompts are almost always NFC already.
    private static string NormalizeNfc(string text)
    {
        try
        {
            return text.IsNormalized(NormalizationForm.FormC) ? text : text.Normalize(NormalizationForm.FormC);
        }
        catch (PlatformNotSupportedException)
        {
            return text;
        }
    }

    /// <summary>BasicTokenizer's <c>_clean_text</c> and <c>_tokenize_chinese_chars</c>.</summary>
    private static string Clean(string text)
    {
        StringBuilder? builder = null;
        for (var i = 0; i < text.Length;)
        {
            // A lone surrogate is category Cs in Python too, so it is dropped like any other C* code point.
            var status = Rune.DecodeFromUtf16(text.AsSpan(i), out var rune, out var length);
            var keep = status == System.Buffers.OperationStatus.Done;
            var value = rune.Value;

            string? replacement = null;
            if (!keep || value == 0 || value == 0xFFFD)
            {
                replacement = string.Empty;
            }
            else if (value is ' ' or '\t' or '\n' or '\r')
            {
                replacement = value == ' ' ? null : " ";
            }
            else
            {
                var category = Rune.GetUnicodeCategory(rune);
                if (category == UnicodeCategory.SpaceSeparator)
                {
                    replacement = " ";
                }
                else if (category is UnicodeCategory.Control or UnicodeCategory.Surrogate
                         or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned)
                {
                    replacement = string.Empty;
                }
                else if (IsCjkIdeograph(value))
                {
                    replacement = " " + rune.ToString() + " ";
                }
            }

            if (replacement is not null && builder is null)
            {
                builder = new StringBuilder(text.Length + 8);
                builder.Append(text, 0, i);
            }

            if (builder is not null)
            {
                if (replacement is null)
                {
                    builder.Append(text, i, length);
                }
                else
                {
                    builder.Append(replacement);
                }
            }

            i += length;
        }

        return builder?.ToString() ?? text;
    }

    // BasicTokenizer._is_chinese_char: the CJK Unified Ideographs blocks (not kana, not Hangul).
    private static bool IsCjkIdeograph(int codePoint) => codePoint is >= 0x4E00 and <= 0x9FFF
        or >= 0x3400 and <= 0x4DBF or >= 0x20000 and <= 0x2A6DF or >= 0x2A700 and <= 0x2B73F
        or >= 0x2B740 and <= 0x2B81F or >= 0x2B820 and <= 0x2CEAF or >= 0xF900 and <= 0xFAFF
        or >= 0x2F800 and <= 0x2FA1F;

    /// <summary>Applies CLIP's pre-tokenization pattern (Python <c>re.findall</c> semantics) to one word.</summary>
    private static void SplitWord(string word, List<string> preTokens)
    {
        for (var i = 0; i < word.Length;)
        {
            var match = MatchLiteral(word, i);
            if (match > 0)
            {
                preTokens.Add(word.Substring(i, match));
                i += match;
                continue;
            }

            var rune = Rune.GetRuneAt(word, i);
            var kind = Classify(rune);
            if (kind == CharKind.WhiteSpace)
            {
                i += rune.Utf16SequenceLength;
                continue;
            }

            var end = i + rune.Utf16SequenceLength;
            if (kind != CharKind.Number)
            {
                // [\p{L}]+ and [^\s\p{L}\p{N}]+ are greedy runs of one class; [\p{N}] is a single code point.
                while (end < word.Length)
                {
                    var next = Rune.GetRuneAt(word, end);
                    if (Classify(next) != kind)
                    {
                        break;
                    }

                    end += next.Utf16SequenceLength;
                }
            }

            preTokens.Add(word[i..end]);
            i = end;
        }
    }

    // The literal alternatives, tried in pattern order before the character classes.
    private static int MatchLiteral(string word, int index)
    {
        var c = word[index];
        if (c == '<')
        {
            if (string.CompareOrdinal(word, index, StartOfText, 0, StartOfText.Length) == 0)
            {
                return StartOfText.Length;
            }

            if (string.CompareOrdinal(word, index, EndOfText, 0, EndOfText.Length) == 0)
            {
                return EndOfText.Length;
            }
        }
        else if (c == '\'')
        {
            foreach (var contraction in Contractions)
            {
                if (string.CompareOrdinal(word, index, contraction, 0, contraction.Length) == 0)
                {
                    return contraction.Length;
                }
            }
        }

        return 0;
    }

    private static CharKind Classify(Rune rune)
    {
        if (PythonText.IsWhiteSpace(rune))
        {
            return CharKind.WhiteSpace;
        }

        var category = Rune.GetUnicodeCategory(rune);
        return PythonText.IsLetter(category) ? CharKind.Letter
            : PythonText.IsNumber(category) ? CharKind.Number
            : CharKind.Other;
    }

    private enum CharKind
    {
        WhiteSpace,
        Letter,
        Number,
        Other,
    }
}
