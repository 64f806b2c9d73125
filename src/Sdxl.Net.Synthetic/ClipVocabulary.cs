using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Sdxl.Net.Synthetic;

/// <summary>
/// A small vocabulary laid out like CLIP's: the 256 byte characters in CLIP's byte-to-unicode order (so <c>!</c> is
/// id 0), the same 256 with the <c>&lt;/w&gt;</c> end-of-word suffix, the results of a few merges, then
/// <c>&lt;|startoftext|&gt;</c> and <c>&lt;|endoftext|&gt;</c> as the last two ids. Every text tokenizes with it, since
/// every byte has a token.
/// </summary>
internal static class ClipVocabulary
{
    /// <summary>The merges, in priority order; each joins two tokens that exist by then.</summary>
    private static readonly string[] Merges =
    [
        "t h", "i n", "a n", "e r", "o n</w>", "th e</w>", "in g</w>", "an d</w>", "o f</w>",
        "h o", "ho r", "hor s", "hors e</w>",
    ];

    /// <summary>The start-of-text token.</summary>
    public const string StartOfText = "<|startoftext|>";

    /// <summary>The end-of-text token: the highest id, which CLIP's argmax pooling relies on.</summary>
    public const string EndOfText = "<|endoftext|>";

    /// <summary>The number of tokens.</summary>
    public static int Count => 2 * 256 + Merges.Length + 2;

    /// <summary>The tokens in id order.</summary>
    public static IReadOnlyList<string> Tokens()
    {
        var bytes = ByteCharacters();
        var tokens = new List<string>(Count);
        tokens.AddRange(bytes);
        foreach (var character in bytes)
        {
            tokens.Add(character + "</w>");
        }

        foreach (var merge in Merges)
        {
            tokens.Add(merge.Replace(" ", string.Empty, StringComparison.Ordinal));
        }

        tokens.Add(StartOfText);
        tokens.Add(EndOfText);
        return tokens;
    }

    /// <summary>
    /// Writes vocab.json, merges.txt, tokenizer_config.json and special_tokens_map.json, padding with
    /// <paramref name="padToken"/> (<c>&lt;|endoftext|&gt;</c> for tokenizer, <c>!</c> for tokenizer_2).
    /// </summary>
    public static void Write(string directory, string padToken)
    {
        Directory.CreateDirectory(directory);
        var tokens = Tokens();
        var writerOptions = new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

        using (var stream = File.Create(Path.Combine(directory, "vocab.json")))
        using (var json = new Utf8JsonWriter(stream, writerOptions))
        {
            json.WriteStartObject();
            for (var id = 0; id < tokens.Count; id++)
            {
                json.WriteNumber(tokens[id], id);
            }

            json.WriteEndObject();
        }

        var merges = new StringBuilder("#version: 0.2\n");
        foreach (var merge in Merges)
        {
            merges.Append(merge).Append('\n');
        }

        File.WriteAllText(Path.Combine(directory, "merges.txt"), merges.ToString());

        var startId = tokens.Count - 2;
        var endId = tokens.Count - 1;
        using (var stream = File.Create(Path.Combine(directory, "tokenizer_config.json")))
        using (var json = new Utf8JsonWriter(stream, writerOptions))
        {
            json.WriteStartObject();
            json.WriteBoolean("add_prefix_space", false);
            json.WriteStartObject("added_tokens_decoder");
            if (padToken == "!")
            {
                WriteAddedToken(json, 0, "!", normalized: false, special: true);
            }

            WriteAddedToken(json, startId, StartOfText, normalized: true, special: false);
            WriteAddedToken(json, endId, EndOfText, normalized: false, special: false);
            json.WriteEndObject();
            json.WriteStartArray("additional_special_tokens");
            json.WriteEndArray();
            json.WriteString("bos_token", StartOfText);
            json.WriteBoolean("clean_up_tokenization_spaces", true);
            json.WriteBoolean("do_lower_case", true);
            json.WriteString("eos_token", EndOfText);
            json.WriteString("errors", "replace");
            json.WriteNumber("model_max_length", TextEncoderGraph.MaxPositions);
            json.WriteString("pad_token", padToken);
            json.WriteString("tokenizer_class", "CLIPTokenizer");
            json.WriteString("unk_token", EndOfText);
            json.WriteEndObject();
        }

        using (var stream = File.Create(Path.Combine(directory, "special_tokens_map.json")))
        using (var json = new Utf8JsonWriter(stream, writerOptions))
        {
            json.WriteStartObject();
            json.WriteString("bos_token", StartOfText);
            json.WriteString("eos_token", EndOfText);
            json.WriteString("pad_token", padToken);
            json.WriteString("unk_token", EndOfText);
            json.WriteEndObject();
        }
    }

    private static void WriteAddedToken(Utf8JsonWriter json, int id, string content, bool normalized, bool special)
    {
        json.WriteStartObject(id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        json.WriteString("content", content);
        json.WriteBoolean("lstrip", false);
        json.WriteBoolean("normalized", normalized);
        json.WriteBoolean("rstrip", false);
        json.WriteBoolean("single_word", false);
        json.WriteBoolean("special", special);
        json.WriteEndObject();
    }

    /// <summary>
    /// GPT-2/CLIP's bytes_to_unicode in CLIP's vocabulary order: the printable bytes map to themselves, the others to
    /// U+0100 onwards.
    /// </summary>
    private static List<string> ByteCharacters()
    {
        var printable = new List<int>();
        for (var b = '!'; b <= '~'; b++)
        {
            printable.Add(b);
        }

        for (var b = '¡'; b <= '¬'; b++)
        {
            printable.Add(b);
        }

        for (var b = '®'; b <= 'ÿ'; b++)
        {
            printable.Add(b);
        }

        var characters = new List<string>(256);
        foreach (var b in printable)
        {
            characters.Add(((char)b).ToString());
        }

        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            if (!printable.Contains(b))
            {
                characters.Add(((char)next++).ToString());
            }
        }

        return characters;
    }
}
