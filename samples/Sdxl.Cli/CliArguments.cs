using System.Globalization;
using Sdxl.Net.Conditioning;

namespace Sdxl.Cli;

/// <summary>A command-line usage error: exit code 2 and one line on stderr.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>Parses <c>--name value</c> and <c>--flag</c> arguments; every lookup says what was wrong.</summary>
internal sealed class CliArguments
{
    private readonly Dictionary<string, string?> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<string>> _repeated = new(StringComparer.Ordinal);
    private readonly IReadOnlySet<string> _repeatable;

    /// <param name="args">The arguments after the command.</param>
    /// <param name="flags">Options without a value.</param>
    /// <param name="repeatable">Options that may be given more than once (read with <see cref="All"/>).</param>
    public CliArguments(IEnumerable<string> args, IReadOnlySet<string> flags, IReadOnlySet<string>? repeatable = null)
    {
        _repeatable = repeatable ?? new HashSet<string>(StringComparer.Ordinal);
        string? pending = null;
        foreach (var arg in args)
        {
            if (pending is not null)
            {
                Add(pending, arg);
                pending = null;
                continue;
            }

            if (!arg.StartsWith("--", StringComparison.Ordinal) || arg.Length < 3)
            {
                throw new UsageException($"unexpected argument '{arg}' (options start with --)");
            }

            var name = arg[2..];
            var eq = name.IndexOf('=');
            if (eq > 0)
            {
                Add(name[..eq], name[(eq + 1)..]);
            }
            else if (flags.Contains(name))
            {
                Add(name, null);
            }
            else
            {
                if (_values.ContainsKey(name) && !_repeatable.Contains(name))
                {
                    throw new UsageException($"--{name} is given twice");
                }

                pending = name;
            }
        }

        if (pending is not null)
        {
            throw new UsageException($"--{pending} needs a value");
        }
    }

    private void Add(string name, string? value)
    {
        if (_repeatable.Contains(name) && value is not null)
        {
            if (!_repeated.TryGetValue(name, out var list))
            {
                _repeated[name] = list = [];
            }

            list.Add(value);
            _values[name] = value;
            return;
        }

        if (!_values.TryAdd(name, value))
        {
            throw new UsageException($"--{name} is given twice");
        }
    }

    public bool Flag(string name)
    {
        _used.Add(name);
        return _values.ContainsKey(name);
    }

    public string? Optional(string name)
    {
        _used.Add(name);
        return _values.TryGetValue(name, out var v) ? v : null;
    }

    /// <summary>Every value of a repeatable option, in the order given (empty when absent).</summary>
    public IReadOnlyList<string> All(string name)
    {
        _used.Add(name);
        return _repeated.TryGetValue(name, out var list) ? list : [];
    }

    public string Required(string name) =>
        Optional(name) ?? throw new UsageException($"--{name} is required");

    public int? Int(string name, int min, int max)
    {
        var text = Optional(name);
        if (text is null)
        {
            return null;
        }

        if (!int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) || v < min || v > max)
        {
            throw new UsageException($"--{name} must be an integer from {min} to {max}; got '{text}'");
        }

        return v;
    }

    public long? Long(string name, long min, long max)
    {
        var text = Optional(name);
        if (text is null)
        {
            return null;
        }

        if (!long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) || v < min || v > max)
        {
            throw new UsageException($"--{name} must be an integer from {min} to {max}; got '{text}'");
        }

        return v;
    }

    public double? Double(string name, double min, double max)
    {
        var text = Optional(name);
        if (text is null)
        {
            return null;
        }

        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !double.IsFinite(v) || v < min || v > max)
        {
            throw new UsageException($"--{name} must be a number from {min.ToString(CultureInfo.InvariantCulture)} to {max.ToString(CultureInfo.InvariantCulture)}; got '{text}'");
        }

        return v;
    }

    /// <summary>Parses <c>HxW</c> (height first, as diffusers' (height, width) tuples).</summary>
    public ImageSize? Size(string name)
    {
        var text = Optional(name);
        if (text is null)
        {
            return null;
        }

        var parts = text.ToLowerInvariant().Split('x');
        if (parts.Length != 2
            || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var h)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var w)
            || h <= 0 || w <= 0 || h > 65536 || w > 65536)
        {
            throw new UsageException($"--{name} must be HEIGHTxWIDTH with positive integers, e.g. 1024x1024; got '{text}'");
        }

        return new ImageSize(w, h);
    }

    /// <summary>Parses <c>TOP,LEFT</c>.</summary>
    public CropCoordinates? Crop(string name)
    {
        var text = Optional(name);
        if (text is null)
        {
            return null;
        }

        var parts = text.Split(',');
        if (parts.Length != 2
            || !int.TryParse(parts[0].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var top)
            || !int.TryParse(parts[1].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var left)
            || top > 65536 || left > 65536)
        {
            throw new UsageException($"--{name} must be TOP,LEFT with non-negative integers, e.g. 0,0; got '{text}'");
        }

        return new CropCoordinates(top, left);
    }

    /// <summary>Fails on options no command read.</summary>
    public void RejectUnknown()
    {
        foreach (var name in _values.Keys)
        {
            if (!_used.Contains(name))
            {
                throw new UsageException($"unknown option --{name}");
            }
        }
    }
}
