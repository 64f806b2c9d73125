using System.Globalization;
using Sdxl.Net.Lora;

namespace Sdxl.Cli;

/// <summary><c>sdxl lora inspect FILE [--model DIR]</c> and the <c>--lora FILE[:WEIGHT]</c> argument of generate.</summary>
internal static class LoraCommand
{
    /// <summary>Parses <c>FILE[:WEIGHT]</c>, splitting on the last colon so Windows paths (<c>C:\x.safetensors:0.8</c>) work.</summary>
    public static LoraReference ParseArgument(string text)
    {
        string path = text;
        double weight = 1.0;
        int colon = text.LastIndexOf(':');
        if (colon > 0 && colon < text.Length - 1
            && double.TryParse(text.AsSpan(colon + 1), NumberStyles.Float, CultureInfo.InvariantCulture, out var w))
        {
            if (!double.IsFinite(w))
            {
                throw new UsageException($"--lora: the weight must be a finite number; got '{text[(colon + 1)..]}'");
            }

            path = text[..colon];
            weight = w;
        }

        if (!File.Exists(path))
        {
            throw new UsageException($"--lora: file not found: '{path}' (give FILE or FILE:WEIGHT)");
        }

        return new LoraReference(path, weight);
    }

    public static int Run(string[] args, TextWriter stdout)
    {
        if (args.Length < 2 || args[0] != "inspect" || args[1].StartsWith("--", StringComparison.Ordinal))
        {
            throw new UsageException("usage: sdxl lora inspect FILE [--model DIR]");
        }

        var options = new CliArguments(args.Skip(2), new HashSet<string>(StringComparer.Ordinal) { "verbose" });
        var model = options.Optional("model");
        options.Flag("verbose");
        options.RejectUnknown();
        if (model is not null && !Directory.Exists(model))
        {
            throw new UsageException($"--model: folder not found: '{model}'");
        }

        var file = args[1];
        if (!File.Exists(file))
        {
            throw new UsageException($"file not found: '{file}'");
        }

        var info = LoraInspection.Inspect(file, model);
        stdout.WriteLine($"file: {info.Path}");
        stdout.WriteLine($"format: {info.Format}");
        stdout.WriteLine($"modules: {string.Join(", ", info.ModulesByComponent.Select(p => $"{p.Key} {p.Value}"))}"
            + (info.ConvolutionModules > 0 ? $" ({info.ConvolutionModules} convolutions)" : string.Empty));
        stdout.WriteLine($"rank: {string.Join(", ", info.Ranks)}");
        stdout.WriteLine($"alpha: {string.Join(", ", info.Alphas.Select(a => a is { } v ? v.ToString(CultureInfo.InvariantCulture) : "none (= rank)"))}");
        if (model is null)
        {
            return CliApp.Ok;
        }

        stdout.WriteLine($"matched: {info.Matched.Count}");
        foreach (var m in info.Matched)
        {
            stdout.WriteLine($"  {m}");
        }

        stdout.WriteLine($"unmatched: {info.Unmatched.Count}");
        foreach (var u in info.Unmatched)
        {
            stdout.WriteLine($"  {u}");
        }

        if (info.Problem is not null)
        {
            stdout.WriteLine($"cannot be applied: {info.Problem}");
            return CliApp.RuntimeFailure;
        }

        return CliApp.Ok;
    }
}
