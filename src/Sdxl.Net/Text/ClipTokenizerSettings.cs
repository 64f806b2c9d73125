using System.Text.Json;

namespace Sdxl.Net.Text;

/// <summary>
/// The parts of a Hugging Face tokenizer folder's <c>tokenizer_config.json</c> and <c>special_tokens_map.json</c>
/// that change how a CLIP tokenizer encodes: the special token texts, extra added tokens and the model length.
/// </summary>
internal sealed class ClipTokenizerSettings
{
    public const string DefaultStartOfText = "<|startoftext|>";
    public const string DefaultEndOfText = "<|endoftext|>";
    public const int DefaultMaxLength = 77;

    // transformers writes a huge sentinel (int(1e30)) for "no limit"; a CLIP encoder has a fixed position count.
    private const int LargestSupportedMaxLength = 1 << 16;

    public string BosToken { get; set; } = DefaultStartOfText;

    public string EosToken { get; set; } = DefaultEndOfText;

    public string UnkToken { get; set; } = DefaultEndOfText;

    public string PadToken { get; set; } = DefaultEndOfText;

    public int MaxLength { get; set; } = DefaultMaxLength;

    /// <summary>Tokens from <c>added_tokens_decoder</c>: text and id.</summary>
    public List<KeyValuePair<string, int>> AddedTokens { get; } = [];

    /// <summary>Reads the optional config files of <paramref name="directory"/> (absent files keep the defaults).</summary>
    public static ClipTokenizerSettings Read(string directory)
    {
        var settings = new ClipTokenizerSettings();

        // transformers applies tokenizer_config.json first; special_tokens_map.json then overrides the special tokens.
        var configPath = Path.Combine(directory, "tokenizer_config.json");
        if (File.Exists(configPath))
        {
            using var config = ParseObject(configPath);
            settings.ApplySpecialTokens(config.RootElement, configPath);
            settings.ApplyConfig(config.RootElement, configPath);
        }

        var mapPath = Path.Combine(directory, "special_tokens_map.json");
        if (File.Exists(mapPath))
        {
            using var map = ParseObject(mapPath);
            settings.ApplySpecialTokens(map.RootElement, mapPath);
        }

        return settings;
    }

    /// <summary>Validates a model length from configuration or code.</summary>
    public static int ValidateMaxLength(long maxLength, string source)
    {
        if (maxLength is < 2 or > LargestSupportedMaxLength)
        {
            throw new InvalidDataException(
                $"{source}: model_max_length {maxLength} is not usable; expected a length between 2 (room for the " +
                $"start and end tokens) and {LargestSupportedMaxLength} (CLIP text encoders use 77).");
        }

        return (int)maxLength;
    }

    private static JsonDocument ParseObject(string path)
    {
        JsonDocument document;
        try
        {
            using var stream = File.OpenRead(path);
            document = JsonDocument.Parse(stream, new JsonDocumentOptions { AllowTrailingCommas = true });
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"{path} is not valid JSON: {ex.Message}", ex);
        }

        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            document.Dispose();
            throw new InvalidDataException($"{path} must contain a JSON object.");
        }

        return document;
    }

    private void ApplySpecialTokens(JsonElement root, string path)
    {
        BosToken = ReadToken(root, "bos_token", path) ?? BosToken;
        EosToken = ReadToken(root, "eos_token", path) ?? EosToken;
        UnkToken = ReadToken(root, "unk_token", path) ?? UnkToken;
        PadToken = ReadToken(root, "pad_token", path) ?? PadToken;
    }

    private void ApplyConfig(JsonElement root, string path)
    {
        if (root.TryGetProperty("model_max_length", out var maxLength) && maxLength.ValueKind != JsonValueKind.Null)
        {
            if (maxLength.ValueKind != JsonValueKind.Number || !maxLength.TryGetDouble(out var value) ||
                value != Math.Floor(value))
            {
                throw new InvalidDataException($"{path}: model_max_length must be an integer, found {maxLength}.");
            }

            MaxLength = ValidateMaxLength(value > long.MaxValue ? long.MaxValue : (long)value, path);
        }

        if (root.TryGetProperty("added_tokens_decoder", out var decoder) && decoder.ValueKind == JsonValueKind.Object)
        {
            foreach (var entry in decoder.EnumerateObject())
            {
                if (!int.TryParse(entry.Name, out var id) || id < 0)
                {
                    throw new InvalidDataException(
                        $"{path}: added_tokens_decoder key '{entry.Name}' is not a token id (a non-negative integer).");
                }

                var content = ReadToken(decoder, entry.Name, path)
                    ?? throw new InvalidDataException($"{path}: added_tokens_decoder['{entry.Name}'] has no content.");
                AddedTokens.Add(new(content, id));
            }
        }
    }

    // A special token is written either as a string or as a serialized AddedToken {"content": "...", ...}.
    private static string? ReadToken(JsonElement parent, string name, string path)
    {
        if (!parent.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        var text = value.ValueKind switch
        {
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Object when value.TryGetProperty("content", out var content) &&
                                      content.ValueKind == JsonValueKind.String => content.GetString(),
            _ => null,
        };

        if (string.IsNullOrEmpty(text))
        {
            throw new InvalidDataException(
                $"{path}: '{name}' must be a non-empty string or an object with a string \"content\", found {value}.");
        }

        return text;
    }
}
