using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Sdxl.Net.Schedulers;

/// <summary>
/// The contents of a diffusers <c>scheduler_config.json</c>, with code overrides on top.
/// </summary>
/// <remarks>
/// Like diffusers' <c>Cls.from_config(config, **overrides)</c>, keys a scheduler does not know are ignored and
/// keys that are absent take that scheduler class's own default. Each scheduler therefore reads the values it
/// needs through the typed getters, passing its class default. Instances are immutable.
/// </remarks>
public sealed class SchedulerConfig
{
    private readonly IReadOnlyDictionary<string, JsonNode?> _values;

    private SchedulerConfig(IReadOnlyDictionary<string, JsonNode?> values) => _values = values;

    /// <summary>An empty configuration: every scheduler uses its class defaults.</summary>
    public static SchedulerConfig Empty { get; } = new(new Dictionary<string, JsonNode?>(StringComparer.Ordinal));

    /// <summary>
    /// The configuration of <c>stabilityai/stable-diffusion-xl-base-1.0</c>'s <c>scheduler/scheduler_config.json</c>
    /// (EulerDiscreteScheduler, scaled-linear betas 0.00085..0.012, leading spacing, steps_offset 1).
    /// </summary>
    public static SchedulerConfig SdxlBase { get; } = Parse("""
        {"_class_name":"EulerDiscreteScheduler","beta_end":0.012,"beta_schedule":"scaled_linear","beta_start":0.00085,
         "clip_sample":false,"interpolation_type":"linear","num_train_timesteps":1000,"prediction_type":"epsilon",
         "sample_max_value":1.0,"set_alpha_to_one":false,"skip_prk_steps":true,"steps_offset":1,
         "timestep_spacing":"leading","trained_betas":null,"use_karras_sigmas":false}
        """);

    /// <summary>The diffusers class named by <c>_class_name</c>, e.g. <c>EulerDiscreteScheduler</c>; <see langword="null"/> when absent.</summary>
    public string? ClassName => GetString("_class_name", null!) is { Length: > 0 } name ? name : null;

    /// <summary>The keys present in the configuration.</summary>
    public IEnumerable<string> Keys => _values.Keys;

    /// <summary>Parses the JSON text of a <c>scheduler_config.json</c>.</summary>
    /// <exception cref="FormatException">The text is not a JSON object.</exception>
    public static SchedulerConfig Parse(string json)
    {
        JsonNode? node;
        try
        {
            // diffusers writes Python's "Infinity"/"-Infinity"/"NaN" literals (e.g. lambda_min_clipped).
            node = JsonNode.Parse(json.Replace("-Infinity", "\"-Infinity\"", StringComparison.Ordinal)
                                      .Replace(": Infinity", ": \"Infinity\"", StringComparison.Ordinal)
                                      .Replace(":Infinity", ":\"Infinity\"", StringComparison.Ordinal)
                                      .Replace(": NaN", ": \"NaN\"", StringComparison.Ordinal));
        }
        catch (JsonException e)
        {
            throw new FormatException($"The scheduler configuration is not valid JSON: {e.Message}", e);
        }

        if (node is not JsonObject obj)
        {
            throw new FormatException("The scheduler configuration must be a JSON object.");
        }

        var values = new Dictionary<string, JsonNode?>(StringComparer.Ordinal);
        foreach (var (key, value) in obj)
        {
            values[key] = value?.DeepClone();
        }

        return new SchedulerConfig(values);
    }

    /// <summary>Reads a <c>scheduler_config.json</c> file.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="FormatException">The file is not a JSON object.</exception>
    public static SchedulerConfig Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Scheduler configuration not found: '{path}'.", path);
        }

        try
        {
            return Parse(File.ReadAllText(path));
        }
        catch (FormatException e)
        {
            throw new FormatException($"'{path}': {e.Message}", e);
        }
    }

    /// <summary>Returns a copy with <paramref name="key"/> set to <paramref name="value"/> (a string, bool, number, number array or <see langword="null"/>).</summary>
    public SchedulerConfig With(string key, object? value)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        var values = new Dictionary<string, JsonNode?>(_values.Count + 1, StringComparer.Ordinal);
        foreach (var (k, v) in _values)
        {
            values[k] = v;
        }

        values[key] = value switch
        {
            null => null,
            JsonNode n => n.DeepClone(),
            string s => JsonValue.Create(s),
            bool b => JsonValue.Create(b),
            int i => JsonValue.Create(i),
            long l => JsonValue.Create(l),
            float f => JsonValue.Create((double)f),
            double d => JsonValue.Create(d),
            IEnumerable<double> a => new JsonArray(a.Select(x => (JsonNode?)JsonValue.Create(x)).ToArray()),
            IEnumerable<float> a => new JsonArray(a.Select(x => (JsonNode?)JsonValue.Create((double)x)).ToArray()),
            _ => throw new ArgumentException($"Unsupported value type {value.GetType().Name} for scheduler option '{key}'.", nameof(value)),
        };
        return new SchedulerConfig(values);
    }

    /// <summary>
    /// The entries of this configuration that differ from <paramref name="original"/>: changed or added keys with
    /// their values, removed keys as <see langword="null"/> (what <c>ConfigureScheduler</c> did to a folder's config).
    /// </summary>
    internal SortedDictionary<string, JsonNode?> ChangesFrom(SchedulerConfig original)
    {
        var changes = new SortedDictionary<string, JsonNode?>(StringComparer.Ordinal);
        foreach (var (key, value) in _values)
        {
            if (!original._values.TryGetValue(key, out var before) || !JsonNode.DeepEquals(value, before))
            {
                changes[key] = value?.DeepClone();
            }
        }

        foreach (var key in original._values.Keys)
        {
            if (!_values.ContainsKey(key))
            {
                changes[key] = null;
            }
        }

        return changes;
    }

    /// <summary>Whether <paramref name="key"/> is present with a non-null value.</summary>
    public bool Has(string key) => _values.TryGetValue(key, out var v) && v is not null;

    /// <summary>Reads a number, or <paramref name="defaultValue"/> when absent or null.</summary>
    public double GetDouble(string key, double defaultValue)
    {
        if (!_values.TryGetValue(key, out var node) || node is null)
        {
            return defaultValue;
        }

        if (node is JsonValue v)
        {
            if (v.TryGetValue<double>(out var d))
            {
                return d;
            }

            // Values set from code (With) keep their CLR type: int, long or float.
            if (v.TryGetValue<int>(out var i))
            {
                return i;
            }

            if (v.TryGetValue<long>(out var l))
            {
                return l;
            }

            if (v.TryGetValue<string>(out var s))
            {
                switch (s)
                {
                    case "Infinity": return double.PositiveInfinity;
                    case "-Infinity": return double.NegativeInfinity;
                    case "NaN": return double.NaN;
                }

                if (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out d))
                {
                    return d;
                }
            }
        }

        throw Invalid(key, "a number", node);
    }

    /// <summary>Reads an optional number: <see langword="null"/> when absent or null.</summary>
    public double? GetNullableDouble(string key) => Has(key) ? GetDouble(key, 0) : null;

    /// <summary>Reads an integer, or <paramref name="defaultValue"/> when absent or null.</summary>
    public int GetInt32(string key, int defaultValue)
    {
        if (!Has(key))
        {
            return defaultValue;
        }

        var d = GetDouble(key, defaultValue);
        if (d != Math.Floor(d) || d < int.MinValue || d > int.MaxValue)
        {
            throw Invalid(key, "an integer", _values[key]);
        }

        return (int)d;
    }

    /// <summary>Reads a boolean, or <paramref name="defaultValue"/> when absent or null.</summary>
    public bool GetBoolean(string key, bool defaultValue)
    {
        if (!_values.TryGetValue(key, out var node) || node is null)
        {
            return defaultValue;
        }

        if (node is JsonValue v && v.TryGetValue<bool>(out var b))
        {
            return b;
        }

        throw Invalid(key, "true or false", node);
    }

    /// <summary>Reads a string, or <paramref name="defaultValue"/> when absent or null.</summary>
    public string GetString(string key, string defaultValue)
    {
        if (!_values.TryGetValue(key, out var node) || node is null)
        {
            return defaultValue;
        }

        if (node is JsonValue v && v.TryGetValue<string>(out var s))
        {
            return s;
        }

        throw Invalid(key, "a string", node);
    }

    /// <summary>Reads an array of numbers (e.g. <c>trained_betas</c>), or <see langword="null"/> when absent or null.</summary>
    public double[]? GetDoubleArray(string key)
    {
        if (!_values.TryGetValue(key, out var node) || node is null)
        {
            return null;
        }

        if (node is not JsonArray array)
        {
            throw Invalid(key, "an array of numbers", node);
        }

        var result = new double[array.Count];
        for (int i = 0; i < result.Length; i++)
        {
            if (array[i] is JsonValue v && v.TryGetValue<double>(out var d))
            {
                result[i] = d;
            }
            else
            {
                throw Invalid(key, "an array of numbers", node);
            }
        }

        return result;
    }

    /// <summary>Reads an array of integers (e.g. <c>disable_corrector</c>), or an empty array when absent or null.</summary>
    public int[] GetInt32Array(string key)
    {
        var values = GetDoubleArray(key);
        if (values is null)
        {
            return [];
        }

        var result = new int[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            result[i] = (int)values[i];
        }

        return result;
    }

    /// <summary>The configuration as indented JSON.</summary>
    public string ToJson()
    {
        var obj = new JsonObject();
        foreach (var (k, v) in _values)
        {
            obj[k] = v?.DeepClone();
        }

        return obj.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <inheritdoc />
    public override string ToString() => ToJson();

    private static FormatException Invalid(string key, string expected, JsonNode? found) =>
        new($"Scheduler option '{key}' must be {expected}; found {found?.ToJsonString() ?? "null"}.");
}
