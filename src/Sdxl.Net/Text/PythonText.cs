using System.Globalization;
using System.Text;

namespace Sdxl.Net.Text;

/// <summary>
/// Text primitives with Python <c>str</c> semantics, which the Hugging Face CLIP tokenizer relies on and .NET does
/// not reproduce by itself (Python iterates code points and lower-cases with the full Unicode mappings).
/// </summary>
internal static class PythonText
{
    private const int CapitalIWithDotAbove = 0x0130;
    private const int CapitalSigma = 0x03A3;

    /// <summary>
    /// Python's <c>str.lower()</c>. Differs from <see cref="string.ToLowerInvariant()"/> in two places:
    /// U+0130 becomes two code points (<c>i</c> + U+0307 COMBINING DOT ABOVE, Unicode SpecialCasing), and a capital
    /// sigma at the end of a word becomes the final form ς (U+03C2) instead of σ.
    /// </summary>
    public static string ToLower(string text)
    {
        var needsWork = false;
        foreach (var c in text)
        {
            if (c >= 0x80 || char.IsAsciiLetterUpper(c))
            {
                needsWork = true;
                break;
            }
        }

        if (!needsWork)
        {
            return text;
        }

        var builder = new StringBuilder(text.Length + 4);
        Span<char> buffer = stackalloc char[2];
        for (var i = 0; i < text.Length;)
        {
            var rune = Rune.GetRuneAt(text, i);
            switch (rune.Value)
            {
                case CapitalIWithDotAbove:
                    builder.Append('i').Append('\u0307');
                    break;
                case CapitalSigma:
                    builder.Append(IsFinalSigma(text, i) ? '\u03C2' : '\u03C3');
                    break;
                default:
                    var lower = Rune.ToLowerInvariant(rune);
                    builder.Append(buffer[..lower.EncodeToUtf16(buffer)]);
                    break;
            }

            i += rune.Utf16SequenceLength;
        }

        return builder.ToString();
    }

    /// <summary>The categories Python's <c>str.isalpha()</c> and the <c>\p{L}</c> regex class accept.</summary>
    public static bool IsLetter(UnicodeCategory category) => category is UnicodeCategory.UppercaseLetter
        or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter or UnicodeCategory.ModifierLetter
        or UnicodeCategory.OtherLetter;

    /// <summary>The categories of the <c>\p{N}</c> regex class.</summary>
    public static bool IsNumber(UnicodeCategory category) => category is UnicodeCategory.DecimalDigitNumber
        or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber;

    /// <summary>Python's <c>str.isspace()</c> for one code point (what <c>str.split()</c> splits on).</summary>
    public static bool IsWhiteSpace(Rune rune) => rune.Value switch
    {
        >= 0x09 and <= 0x0D or >= 0x1C and <= 0x20 or 0x85 => true,
        < 0x80 => false,
        _ => Rune.IsWhiteSpace(rune),
    };

    // CPython's handle_capital_sigma: final when a cased letter precedes (skipping case-ignorable code points) and
    // none follows.
    private static bool IsFinalSigma(string text, int index)
    {
        var before = false;
        for (var i = index; i > 0;)
        {
            Rune.DecodeLastFromUtf16(text.AsSpan(0, i), out var rune, out var length);
            i -= length;
            if (!IsCaseIgnorable(rune))
            {
                before = IsCased(rune);
                break;
            }
        }

        if (!before)
        {
            return false;
        }

        for (var i = index + 1; i < text.Length;)
        {
            var rune = Rune.GetRuneAt(text, i);
            i += rune.Utf16SequenceLength;
            if (!IsCaseIgnorable(rune))
            {
                return !IsCased(rune);
            }
        }

        return true;
    }

    private static bool IsCased(Rune rune) => Rune.GetUnicodeCategory(rune) is UnicodeCategory.UppercaseLetter
        or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter;

    private static bool IsCaseIgnorable(Rune rune) => Rune.GetUnicodeCategory(rune) switch
    {
        UnicodeCategory.NonSpacingMark or UnicodeCategory.EnclosingMark or UnicodeCategory.Format
            or UnicodeCategory.ModifierLetter or UnicodeCategory.ModifierSymbol => true,
        // Word_Break MidLetter / MidNumLet / Single_Quote.
        _ => rune.Value is '\'' or '.' or ':' or 0x00B7 or 0x0387 or 0x05F4 or 0x2018 or 0x2019 or 0x2024
            or 0x2027 or 0xFE13 or 0xFE52 or 0xFE55 or 0xFF07 or 0xFF0E or 0xFF1A,
    };
}
