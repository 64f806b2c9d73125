namespace Sdxl.Net.Benchmarks;

/// <summary><c>--name value</c> and <c>--flag</c> options.</summary>
internal sealed class CommandOptions
{
    private readonly Dictionary<string, string?> _options = new(StringComparer.Ordinal);

    public static CommandOptions Parse(string[] args)
    {
        var line = new CommandOptions();
        for (int i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal))
            {
                throw new ArgumentException($"Unexpected argument '{args[i]}': options have the form --name value.");
            }

            var name = args[i][2..];
            string? value = i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[++i] : null;
            line._options[name] = value;
        }

        return line;
    }

    public bool Has(string name) => _options.ContainsKey(name);

    public string Get(string name, string defaultValue) =>
        _options.TryGetValue(name, out var v) ? v ?? throw new ArgumentException($"--{name} needs a value.") : defaultValue;

    public int GetInt32(string name, int defaultValue)
    {
        if (!_options.ContainsKey(name))
        {
            return defaultValue;
        }

        var text = Get(name, "");
        return int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) && n > 0
            ? n
            : throw new ArgumentException($"--{name} must be a positive integer; got '{text}'.");
    }
}
