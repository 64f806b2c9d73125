using System.Globalization;
using System.Text;

namespace Sdxl.Net.Text;

/// <summary>A piece of a parsed prompt: text with its attention weight, or a chunk break.</summary>
/// <param name="Text">The text (brackets and escapes removed).</param>
/// <param name="Weight">The weight its tokens get; -1 for a <c>BREAK</c>.</param>
public readonly record struct PromptSegment(string Text, double Weight)
{
    /// <summary>The weight AUTOMATIC1111 gives a <c>BREAK</c> marker.</summary>
    internal const double BreakWeight = -1.0;

    /// <summary>Whether this is a <c>BREAK</c>: the tokens after it start a new 75-token chunk.</summary>
    /// <remarks>As in AUTOMATIC1111, a <c>BREAK</c> inside brackets has its marker weight multiplied and stays text.</remarks>
    public bool IsBreak => Weight == BreakWeight && Text == "BREAK";
}

/// <summary>
/// Parses the attention syntax of prompts (<c>(x)</c>, <c>[x]</c>, <c>(x:1.3)</c>, <c>\(</c>, <c>BREAK</c>) the way
/// AUTOMATIC1111's <c>parse_prompt_attention</c> does, or the way ComfyUI's <c>token_weights</c> does.
/// </summary>
public static class PromptParser
{
    private const double RoundMultiplier = 1.1;
    private const double SquareMultiplier = 1 / 1.1;

    /// <summary>Parses <paramref name="prompt"/> into weighted pieces.</summary>
    /// <param name="prompt">The prompt.</param>
    /// <param name="weighting"><see cref="PromptWeighting.ComfyUI"/> for ComfyUI's grammar; otherwise AUTOMATIC1111's.</param>
    /// <returns>
    /// AUTOMATIC1111: runs of equal weight merged, never empty (an empty prompt is one empty piece of weight 1).
    /// ComfyUI: the pieces as its parser returns them (possibly none).
    /// </returns>
    /// <exception cref="ArgumentException">A <c>(text:weight)</c> weight is not a finite number.</exception>
    public static IReadOnlyList<PromptSegment> Parse(string prompt, PromptWeighting weighting = PromptWeighting.Automatic1111)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        return weighting == PromptWeighting.ComfyUI ? ParseComfyUI(prompt) : ParseAutomatic1111(prompt);
    }

    // parse_prompt_attention: a regex scan where every character belongs to one of these tokens (first match wins):
    // \( \) \[ \] \\ \ ( [ :<ws>weight<ws>) ) ] text-run :
    private static List<PromptSegment> ParseAutomatic1111(string text)
    {
        var pieces = new List<(string Text, double Weight)>();
        var round = new Stack<int>();
        var square = new Stack<int>();

        void MultiplyFrom(int start, double multiplier)
        {
            for (int p = start; p < pieces.Count; p++)
            {
                pieces[p] = (pieces[p].Text, pieces[p].Weight * multiplier);
            }
        }

        int i = 0;
        while (i < text.Length)
        {
            char c = text[i];
            if (c == '\\')
            {
                // "\(", "\)", "\[", "\]" and "\\" keep the second character; a lone backslash becomes nothing.
                bool escapes = i + 1 < text.Length && text[i + 1] is '(' or ')' or '[' or ']' or '\\';
                pieces.Add((escapes ? text[i + 1].ToString() : string.Empty, 1.0));
                i += escapes ? 2 : 1;
            }
            else if (c == '(')
            {
                round.Push(pieces.Count);
                i++;
            }
            else if (c == '[')
            {
                square.Push(pieces.Count);
                i++;
            }
            else if (c == ':' && MatchWeight(text, i) is { } weight)
            {
                if (round.Count > 0)
                {
                    MultiplyFrom(round.Pop(), ParseWeight(weight.Number, text));
                }
                else
                {
                    AddText(pieces, text.Substring(i, weight.Length));
                }

                i += weight.Length;
            }
            else if (c == ')' && round.Count > 0)
            {
                MultiplyFrom(round.Pop(), RoundMultiplier);
                i++;
            }
            else if (c == ']' && square.Count > 0)
            {
                MultiplyFrom(square.Pop(), SquareMultiplier);
                i++;
            }
            else if (c is ')' or ']' or ':')
            {
                AddText(pieces, c.ToString());
                i++;
            }
            else
            {
                int end = i;
                while (end < text.Length && text[end] is not ('\\' or '(' or ')' or '[' or ']' or ':'))
                {
                    end++;
                }

                AddText(pieces, text[i..end]);
                i = end;
            }
        }

        // Unclosed brackets still weigh everything after them; Python iterates the lists from the bottom up.
        foreach (var start in round.Reverse())
        {
            MultiplyFrom(start, RoundMultiplier);
        }

        foreach (var start in square.Reverse())
        {
            MultiplyFrom(start, SquareMultiplier);
        }

        if (pieces.Count == 0)
        {
            pieces.Add((string.Empty, 1.0));
        }

        // Merge runs of identical weights (exact double comparison, as Python's ==).
        var merged = new List<PromptSegment>(pieces.Count);
        var sb = new StringBuilder();
        double current = pieces[0].Weight;
        foreach (var (pieceText, pieceWeight) in pieces)
        {
            if (pieceWeight != current)
            {
                merged.Add(new PromptSegment(sb.ToString(), current));
                sb.Clear();
                current = pieceWeight;
            }

            sb.Append(pieceText);
        }

        merged.Add(new PromptSegment(sb.ToString(), current));
        return merged;
    }

    // Text runs are split on BREAK (re.split(r"\s*\bBREAK\b\s*")), each split leaving a ("BREAK", -1) marker.
    private static void AddText(List<(string Text, double Weight)> pieces, string text)
    {
        int start = 0;
        int searchFrom = 0;
        while (true)
        {
            int at = text.IndexOf("BREAK", searchFrom, StringComparison.Ordinal);
            if (at < 0)
            {
                break;
            }

            int after = at + 5;
            if (IsWordCharBefore(text, at) || IsWordCharAt(text, after))
            {
                searchFrom = at + 1;
                continue;
            }

            // The match also takes the whitespace around the word (the leftmost match starts at the first space).
            int matchStart = at;
            while (matchStart > start && IsSpace(text[matchStart - 1]))
            {
                matchStart--;
            }

            int matchEnd = after;
            while (matchEnd < text.Length && IsSpace(text[matchEnd]))
            {
                matchEnd++;
            }

            pieces.Add((text[start..matchStart], 1.0));
            pieces.Add(("BREAK", PromptSegment.BreakWeight));
            start = matchEnd;
            searchFrom = matchEnd;
        }

        pieces.Add((text[start..], 1.0));
    }

    private static bool IsSpace(char c) => PythonText.IsWhiteSpace(new Rune(char.IsSurrogate(c) ? 'x' : c));

    // Python's \w for str: letters, numbers (isalnum) and the underscore.
    private static bool IsWordCharAt(string text, int index)
    {
        if (index >= text.Length)
        {
            return false;
        }

        if (!Rune.TryGetRuneAt(text, index, out var rune))
        {
            return false;
        }

        return rune.Value == '_' || Rune.IsLetter(rune) || Rune.IsNumber(rune);
    }

    private static bool IsWordCharBefore(string text, int index)
    {
        if (index == 0)
        {
            return false;
        }

        int start = char.IsLowSurrogate(text[index - 1]) && index >= 2 ? index - 2 : index - 1;
        return IsWordCharAt(text, start);
    }

    // ":" \s* ([+-]?[.\d]+) \s* ")" at index; returns the number text and the length of the whole match.
    private static (string Number, int Length)? MatchWeight(string text, int index)
    {
        int i = index + 1;
        while (i < text.Length && IsSpace(text[i]))
        {
            i++;
        }

        int numberStart = i;
        if (i < text.Length && text[i] is '+' or '-')
        {
            i++;
        }

        int digitsStart = i;
        while (i < text.Length && (text[i] == '.' || char.IsDigit(text[i])))
        {
            i++;
        }

        if (i == digitsStart)
        {
            return null;
        }

        int numberEnd = i;

        // Python's regex backtracks over the trailing \s*, which only ever matches whitespace, so greedy is exact.
        while (i < text.Length && IsSpace(text[i]))
        {
            i++;
        }

        if (i >= text.Length || text[i] != ')')
        {
            return null;
        }

        return (text[numberStart..numberEnd], i + 1 - index);
    }

    // Python's float(): Unicode decimal digits count as digits; "1.2.3" or "." are errors (A1111 fails on them).
    private static double ParseWeight(string number, string prompt)
    {
        var ascii = new StringBuilder(number.Length);
        foreach (var ch in number)
        {
            ascii.Append(char.IsDigit(ch) ? (char)('0' + CharUnicodeInfo.GetDecimalDigitValue(ch)) : ch);
        }

        if (!double.TryParse(ascii.ToString(), NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value)
            || !double.IsFinite(value))
        {
            throw new ArgumentException($"The prompt weight '{number}' is not a number (expected e.g. (text:1.3)): \"{prompt}\".", nameof(prompt));
        }

        return value;
    }

    // ComfyUI's token_weights: split on top-level round brackets; "(x)" is x at weight × 1.1, and "(x:w)" is x at weight
    // w (replacing, not multiplying) when what follows the last colon is a number. "\(" and "\)" are literal.
    private static List<PromptSegment> ParseComfyUI(string prompt)
    {
        const char EscapedClose = '\uE001', EscapedOpen = '\uE002';
        var escaped = prompt.Replace("\\)", EscapedClose.ToString(), StringComparison.Ordinal)
            .Replace("\\(", EscapedOpen.ToString(), StringComparison.Ordinal);
        var result = new List<PromptSegment>();
        ComfyWeights(escaped, 1.0, result);
        for (int k = 0; k < result.Count; k++)
        {
            var unescaped = result[k].Text.Replace(EscapedClose, ')').Replace(EscapedOpen, '(');
            result[k] = result[k] with { Text = unescaped };
        }

        return result;
    }

    private static void ComfyWeights(string text, double weight, List<PromptSegment> output)
    {
        foreach (var item in ComfyParentheses(text))
        {
            if (item.Length >= 2 && item[0] == '(' && item[^1] == ')')
            {
                var inner = item[1..^1];
                double innerWeight = weight * RoundMultiplier;
                int colon = inner.LastIndexOf(':');
                if (colon > 0 && TryParsePythonFloat(inner[(colon + 1)..], out var explicitWeight))
                {
                    innerWeight = explicitWeight;
                    inner = inner[..colon];
                }

                ComfyWeights(inner, innerWeight, output);
            }
            else
            {
                output.Add(new PromptSegment(item, weight));
            }
        }
    }

    // parse_parentheses: top-level "(...)" groups and the text between them; an unmatched ")" lowers the level below 0.
    private static List<string> ComfyParentheses(string text)
    {
        var result = new List<string>();
        var current = new StringBuilder();
        int level = 0;
        foreach (var c in text)
        {
            if (c == '(')
            {
                if (level == 0)
                {
                    if (current.Length > 0)
                    {
                        result.Add(current.ToString());
                    }

                    current.Clear().Append('(');
                }
                else
                {
                    current.Append(c);
                }

                level++;
            }
            else if (c == ')')
            {
                level--;
                if (level == 0)
                {
                    result.Add(current.Append(')').ToString());
                    current.Clear();
                }
                else
                {
                    current.Append(c);
                }
            }
            else
            {
                current.Append(c);
            }
        }

        if (current.Length > 0)
        {
            result.Add(current.ToString());
        }

        return result;
    }

    // float(s) for the forms a weight takes ("1.3", " 0.8 ", "+2", "1e-1"); non-finite values are refused, as they
    // would only produce NaN images.
    private static bool TryParsePythonFloat(string text, out double value)
    {
        var trimmed = text.Trim();
        if (trimmed.Length == 0 || trimmed.Contains(' ', StringComparison.Ordinal)
            || !double.TryParse(trimmed.Replace("_", string.Empty, StringComparison.Ordinal), NumberStyles.Float, CultureInfo.InvariantCulture, out value))
        {
            value = 0;
            return false;
        }

        if (!double.IsFinite(value))
        {
            throw new ArgumentException($"The prompt weight '{trimmed}' is not a finite number.", nameof(text));
        }

        return true;
    }
}
