using System.Reflection;

namespace Sdxl.Cli;

/// <summary><c>--version</c>, per-command help (cut from <see cref="CliApp.Usage"/>, so the two never disagree) and short options.</summary>
internal static class CliHelp
{
    /// <summary>"sdxl 0.1.0+commit": the tool's informational version (the package version, and the commit it was built from).</summary>
    public static string Version =>
        "sdxl " + (typeof(CliHelp).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
                   ?? typeof(CliHelp).Assembly.GetName().Version?.ToString() ?? "unknown");

    /// <summary>
    /// The usage of one command: its block of <see cref="CliApp.Usage"/>, the blocks it refers to ("the options of
    /// generate"), and the notes after the command list; <see langword="null"/> for an unknown command.
    /// </summary>
    public static string? ForCommand(string command)
    {
        var block = Block(command);
        if (block is null)
        {
            return null;
        }

        var parts = new List<string> { $"sdxl {command}", string.Empty, "Usage:", block };
        foreach (var other in new[] { "img2img", "generate" })
        {
            if (other != command && block.Contains($"the options of {other}", StringComparison.Ordinal) && Block(other) is { } referenced)
            {
                parts.Add(referenced);
                block += referenced;
            }
        }

        var usage = CliApp.Usage.ReplaceLineEndings("\n");
        var notes = usage.IndexOf("\n\n", usage.IndexOf("Commands:", StringComparison.Ordinal), StringComparison.Ordinal);
        if (notes > 0)
        {
            parts.Add(string.Empty);
            parts.Add(usage[(notes + 2)..].TrimEnd());
        }

        return string.Join('\n', parts);
    }

    /// <summary>The lines of <see cref="CliApp.Usage"/> from "  command  …" up to the next command.</summary>
    private static string? Block(string command)
    {
        var lines = CliApp.Usage.ReplaceLineEndings("\n").Split('\n');
        int start = Array.FindIndex(lines, l => l.StartsWith("  " + command + " ", StringComparison.Ordinal));
        if (start < 0)
        {
            return null;
        }

        int end = start + 1;
        while (end < lines.Length && lines[end].StartsWith("    ", StringComparison.Ordinal))
        {
            end++;
        }

        return string.Join('\n', lines[start..end]);
    }

    /// <summary>Rewrites the short options (<c>-o FILE</c>) to their long forms for the parser.</summary>
    public static string[] ExpandShortOptions(string[] args, IReadOnlySet<string> flags)
    {
        var expanded = (string[])args.Clone();
        for (int i = 1; i < expanded.Length; i++)
        {
            // Only in option position: the value of "--prompt" may itself be "-o".
            var previous = expanded[i - 1];
            bool isValue = i > 1 && previous.StartsWith("--", StringComparison.Ordinal)
                && !previous.Contains('=', StringComparison.Ordinal) && !flags.Contains(previous[2..]);
            if (expanded[i] == "-o" && !isValue)
            {
                expanded[i] = "--output";
            }
        }

        return expanded;
    }
}
