using Sdxl.Net;
using Spectre.Console;

namespace Sdxl.Cli;

/// <summary>
/// Shows a generation's progress: Spectre.Console progress bars (with elapsed time and ETA) when stderr is an
/// interactive terminal, one plain line per update otherwise (pipes, CI logs, tests).
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
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .StartAsync(ctx => generate(new SpectreProgress(ctx)))
            .ConfigureAwait(false);
    }

    /// <summary>One bar per denoising phase (base, refiner), a status task for the other phases.</summary>
    private sealed class SpectreProgress(ProgressContext context) : IProgress<GenerationProgress>
    {
        private readonly Dictionary<GenerationPhase, ProgressTask> _bars = [];
        private ProgressTask? _status;

        public void Report(GenerationProgress value)
        {
            lock (_bars)
            {
                if (value.TotalSteps > 0)
                {
                    if (!_bars.TryGetValue(value.Phase, out var bar))
                    {
                        bar = context.AddTask(value.Phase == GenerationPhase.Refining ? "refiner" : "denoising", maxValue: value.TotalSteps);
                        _bars[value.Phase] = bar;
                    }

                    bar.Value = value.Step;
                    return;
                }

                _status ??= context.AddTask("starting", maxValue: 1);
                _status.Description = value.Phase.ToString().ToLowerInvariant();
                if (value.Phase == GenerationPhase.Completed)
                {
                    _status.Value = 1;
                }
            }
        }
    }
}
