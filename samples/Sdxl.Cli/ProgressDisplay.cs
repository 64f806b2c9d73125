using System.Globalization;
using Sdxl.Net;
using Spectre.Console;

namespace Sdxl.Cli;

/// <summary>
/// Shows a generation's progress as "Denoising 12/30 · 3.1 it/s · ETA 0:05": a Spectre.Console bar per denoising
/// phase when stderr is an interactive terminal, one plain newline-terminated line per update otherwise (pipes, CI
/// logs, tests), so no carriage returns end up in log files.
/// </summary>
internal static class ProgressDisplay
{
    public static async Task<GenerationResult> RunAsync(
        TextWriter stderr, bool verbose, Func<IProgress<GenerationProgress>, Task<GenerationResult>> generate)
    {
        bool interactive = ReferenceEquals(stderr, Console.Error) && !Console.IsErrorRedirected;
        if (!interactive)
        {
            var progress = new ConsoleProgress(stderr, verbose);
            try
            {
                return await generate(progress).ConfigureAwait(false);
            }
            finally
            {
                progress.Finish();
            }
        }

        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(stderr) });
        return await console.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new SpinnerColumn())
            .StartAsync(ctx => generate(new SpectreProgress(ctx)))
            .ConfigureAwait(false);
    }

    /// <summary>One bar per denoising phase (base, refiner), a status task for the other phases.</summary>
    private sealed class SpectreProgress(ProgressContext context) : IProgress<GenerationProgress>
    {
        private readonly Dictionary<GenerationPhase, ProgressTask> _bars = [];
        private readonly StepLine _line = new();
        private ProgressTask? _status;

        public void Report(GenerationProgress value)
        {
            lock (_bars)
            {
                if (value.TotalSteps > 0)
                {
                    if (!_bars.TryGetValue(value.Phase, out var bar))
                    {
                        bar = context.AddTask(value.Phase.ToString(), maxValue: value.TotalSteps);
                        _bars[value.Phase] = bar;
                    }

                    bar.Description = Markup.Escape(_line.Format(value));
                    bar.Value = value.Step;
                    return;
                }

                _status ??= context.AddTask("Starting", maxValue: 1);
                _status.Description = value.Phase.ToString();
                if (value.Phase == GenerationPhase.Completed)
                {
                    _status.Value = 1;
                }
            }
        }
    }
}

/// <summary>Plain progress lines on stderr, each ending in a newline.</summary>
internal sealed class ConsoleProgress(TextWriter writer, bool verbose) : IProgress<GenerationProgress>
{
    private readonly StepLine _line = new();
    private GenerationPhase _last = (GenerationPhase)(-1);

    public void Report(GenerationProgress value)
    {
        lock (writer)
        {
            if (value.TotalSteps > 0)
            {
                writer.WriteLine(_line.Format(value));
            }
            else if (verbose && value.Phase != _last)
            {
                writer.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{value.Phase} ({value.Elapsed.TotalSeconds:0.00} s)"));
            }

            _last = value.Phase;
        }
    }

    /// <summary>Flushes the lines written (each already ends in a newline, so a failure message starts on its own line).</summary>
    public void Finish()
    {
        lock (writer)
        {
            writer.Flush();
        }
    }
}

/// <summary>Formats a step report as "Denoising 12/30 · 3.1 it/s · ETA 0:05" (tqdm's "s/it" below one step a second).</summary>
internal sealed class StepLine
{
    private double? _secondsPerStep;

    public string Format(GenerationProgress value)
    {
        // The library's ETA is (time per finished step) × (steps left), so the rate follows from it while steps are
        // left; the last report keeps the rate of the one before.
        if (value.EstimatedRemaining is { } eta && value.Step < value.TotalSteps && value.Step > 0)
        {
            _secondsPerStep = eta.TotalSeconds / (value.TotalSteps - value.Step);
        }

        var text = string.Create(CultureInfo.InvariantCulture, $"{value.Phase} {value.Step}/{value.TotalSteps}");
        if (_secondsPerStep is > 0 and var perStep)
        {
            text += perStep <= 1
                ? string.Create(CultureInfo.InvariantCulture, $" · {1 / perStep:0.0} it/s")
                : string.Create(CultureInfo.InvariantCulture, $" · {perStep:0.0} s/it");
        }

        if (value.EstimatedRemaining is { } remaining)
        {
            text += " · ETA " + FormatDuration(remaining);
        }

        return text;
    }

    /// <summary>m:ss, or h:mm:ss from an hour on.</summary>
    internal static string FormatDuration(TimeSpan time)
    {
        var seconds = (long)Math.Ceiling(Math.Max(0, time.TotalSeconds));
        return seconds >= 3600
            ? string.Create(CultureInfo.InvariantCulture, $"{seconds / 3600}:{seconds / 60 % 60:00}:{seconds % 60:00}")
            : string.Create(CultureInfo.InvariantCulture, $"{seconds / 60}:{seconds % 60:00}");
    }
}
