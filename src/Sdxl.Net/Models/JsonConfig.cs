using System.Text.Json.Nodes;

namespace Sdxl.Net.Models;

/// <summary>A component's <c>config.json</c> (or <c>model_index.json</c>), read leniently: absent keys take defaults.</summary>
internal sealed class JsonConfig
{
    private readonly JsonObject _root;

    private JsonConfig(JsonObject root, string? path)
    {
        _root = root;
        Path = path;
    }

    public string? Path { get; }

    public static JsonConfig Empty { get; } = new(new JsonObject(), null);

    /// <summary>Reads <paramref name="path"/>; a missing optional file gives <see cref="Empty"/>.</summary>
    public static JsonConfig Load(string path, string component, bool required)
    {
        if (!File.Exists(path))
        {
            if (required)
            {
                throw new SdxlModelException($"{component}: required file not found: '{path}'.");
            }

            return Empty;
        }

        try
        {
            // Python's json writes Infinity/NaN literals; they never matter to us, so read them as strings.
            var text = File.ReadAllText(path).Replace("-Infinity", "\"-Infinity\"", StringComparison.Ordinal)
                                             .Replace(" Infinity", " \"Infinity\"", StringComparison.Ordinal)
                                             .Replace(" NaN", " \"NaN\"", StringComparison.Ordinal);
            if (JsonNode.Parse(text) is JsonObject obj)
            {
                return new JsonConfig(obj, path);
            }
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new SdxlModelException($"{component}: '{path}' is not valid JSON: {e.Message}", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SdxlModelException($"{component}: cannot read '{path}': {Runtime.FileAccessCheck.Reason(e)}.", e);
        }

        throw new SdxlModelException($"{component}: '{path}' must contain a JSON object.");
    }

    public bool Has(string key) => _root.TryGetPropertyValue(key, out var v) && v is not null;

    /// <summary>The raw JSON value of <paramref name="key"/>; <see langword="null"/> when absent or null.</summary>
    public JsonNode? Raw(string key) => _root.TryGetPropertyValue(key, out var v) ? v : null;

    public double GetDouble(string key, double defaultValue) =>
        _root.TryGetPropertyValue(key, out var v) && v is JsonValue jv && jv.TryGetValue<double>(out var d) ? d : defaultValue;

    public int GetInt32(string key, int defaultValue) =>
        _root.TryGetPropertyValue(key, out var v) && v is JsonValue jv && jv.TryGetValue<double>(out var d) ? (int)d : defaultValue;

    public bool GetBoolean(string key, bool defaultValue) =>
        _root.TryGetPropertyValue(key, out var v) && v is JsonValue jv && jv.TryGetValue<bool>(out var b) ? b : defaultValue;

    public string? GetString(string key) =>
        _root.TryGetPropertyValue(key, out var v) && v is JsonValue jv && jv.TryGetValue<string>(out var s) ? s : null;

    public int[]? GetInt32Array(string key)
    {
        if (!_root.TryGetPropertyValue(key, out var v) || v is not JsonArray array)
        {
            return null;
        }

        var result = new int[array.Count];
        for (int i = 0; i < result.Length; i++)
        {
            result[i] = array[i] is JsonValue jv && jv.TryGetValue<double>(out var d) ? (int)d : 0;
        }

        return result;
    }

    public double[]? GetDoubleArray(string key)
    {
        if (!_root.TryGetPropertyValue(key, out var v) || v is not JsonArray array)
        {
            return null;
        }

        var result = new double[array.Count];
        for (int i = 0; i < result.Length; i++)
        {
            result[i] = array[i] is JsonValue jv && jv.TryGetValue<double>(out var d) ? d : double.NaN;
        }

        return result;
    }

    /// <summary>For model_index.json: whether the component entry is present and not <c>[null, null]</c>.</summary>
    public bool HasComponent(string name) =>
        _root.TryGetPropertyValue(name, out var v) && v is JsonArray a && a.Count == 2 && a[0] is not null && a[1] is not null;
}
