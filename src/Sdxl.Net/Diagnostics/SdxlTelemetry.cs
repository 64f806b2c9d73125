using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Sdxl.Net.Diagnostics;

/// <summary>
/// The names under which Sdxl.Net publishes traces (<see cref="ActivitySource"/>) and metrics (<see cref="Meter"/>):
/// with OpenTelemetry, <c>.WithTracing(t =&gt; t.AddSource(SdxlTelemetry.Name))</c> and
/// <c>.WithMetrics(m =&gt; m.AddMeter(SdxlTelemetry.Name))</c>.
/// </summary>
/// <remarks>
/// Spans: <c>sdxl.generate</c> per generation, with a child per phase (<c>sdxl.encoding_prompts</c>,
/// <c>sdxl.denoising</c>, <c>sdxl.refining</c>, <c>sdxl.decoding</c>, <c>sdxl.writing</c>, …). Metrics:
/// <see cref="GenerationDurationName"/> (seconds, tagged with the outcome), <see cref="StepsPerSecondName"/>
/// (denoising speed per generation).
/// </remarks>
public static class SdxlTelemetry
{
    /// <summary>The name of Sdxl.Net's activity source and meter: <c>Sdxl.Net</c>.</summary>
    public const string Name = "Sdxl.Net";

    /// <summary>The histogram of generation wall times, in seconds, tagged <c>sdxl.outcome</c> = ok, cancelled or error.</summary>
    public const string GenerationDurationName = "sdxl.generation.duration";

    /// <summary>The histogram of denoising speed, in steps per second (base model, then refiner, each a measurement).</summary>
    public const string StepsPerSecondName = "sdxl.denoising.steps_per_second";

    private static readonly string? Version = typeof(SdxlTelemetry).Assembly.GetName().Version?.ToString();

    internal static readonly ActivitySource Source = new(Name, Version);

    internal static readonly Meter Meter = new(Name, Version);

    internal static readonly Histogram<double> GenerationDuration =
        Meter.CreateHistogram<double>(GenerationDurationName, "s", "Wall time of one generation, from GenerateAsync to its result.");

    internal static readonly Histogram<double> StepsPerSecond =
        Meter.CreateHistogram<double>(StepsPerSecondName, "{step}/s", "Denoising steps per second of one denoising loop.");
}

/// <summary>
/// One generation's span, phase spans and measurements, driven by the pipeline's progress reports (which it forwards
/// to the caller's <see cref="IProgress{T}"/> unchanged).
/// </summary>
internal sealed class GenerationTelemetry : IProgress<GenerationProgress>, IDisposable
{
    private readonly Activity? _generation;
    private readonly IProgress<GenerationProgress>? _inner;
    private readonly long _start = Stopwatch.GetTimestamp();
    private readonly object _lock = new();
    private Activity? _phase;
    private GenerationPhase? _current;
    private (int Step, TimeSpan Elapsed)? _firstStep;
    private bool _done;

    private GenerationTelemetry(Activity? generation, IProgress<GenerationProgress>? inner)
    {
        _generation = generation;
        _inner = inner;
    }

    /// <summary>What the pipeline reports to: this, when anyone listens, else the caller's progress as it was.</summary>
    public IProgress<GenerationProgress>? Progress => _generation is not null || SdxlTelemetry.StepsPerSecond.Enabled ? this : _inner;

    public static GenerationTelemetry Start(string model, string scheduler, int steps, int width, int height, IProgress<GenerationProgress>? inner)
    {
        var activity = SdxlTelemetry.Source.StartActivity("sdxl.generate");
        if (activity is not null)
        {
            activity.SetTag("sdxl.model", Path.GetFileName(Path.TrimEndingDirectorySeparator(model)));
            activity.SetTag("sdxl.scheduler", scheduler);
            activity.SetTag("sdxl.steps", steps);
            activity.SetTag("sdxl.width", width);
            activity.SetTag("sdxl.height", height);
        }

        return new GenerationTelemetry(activity, inner);
    }

    public void Report(GenerationProgress value)
    {
        lock (_lock)
        {
            if (value.Phase != _current)
            {
                EndPhase(ActivityStatusCode.Ok);
                _current = value.Phase;
                if (_generation is not null && value.Phase != GenerationPhase.Completed)
                {
                    // A child of the generation span, without becoming Activity.Current: the phases follow each other.
                    var previous = Activity.Current;
                    _phase = SdxlTelemetry.Source.StartActivity("sdxl." + PhaseName(value.Phase), ActivityKind.Internal, _generation.Context);
                    Activity.Current = previous;
                }
            }

            if (value.TotalSteps > 0)
            {
                // Steps per second between the first and the last step report of a loop: the first step's time is
                // left out, as it includes the loop's set-up.
                _firstStep ??= (value.Step, value.Elapsed);
                if (value.Step == value.TotalSteps && value.Step > _firstStep.Value.Step)
                {
                    var seconds = (value.Elapsed - _firstStep.Value.Elapsed).TotalSeconds;
                    if (seconds > 0)
                    {
                        SdxlTelemetry.StepsPerSecond.Record((value.Step - _firstStep.Value.Step) / seconds, new KeyValuePair<string, object?>("sdxl.phase", PhaseName(value.Phase)));
                    }

                    _firstStep = null;
                }
            }
        }

        _inner?.Report(value);
    }

    /// <summary>Records a successful generation.</summary>
    public void Succeeded() => Finish("ok", null);

    /// <summary>Records a failed or cancelled generation.</summary>
    public void Failed(Exception e) => Finish(e is OperationCanceledException ? "cancelled" : "error", e);

    public void Dispose() => Finish("error", null);

    private void Finish(string outcome, Exception? error)
    {
        lock (_lock)
        {
            if (_done)
            {
                return;
            }

            _done = true;
            EndPhase(error is null ? ActivityStatusCode.Ok : ActivityStatusCode.Error);
        }

        SdxlTelemetry.GenerationDuration.Record(Stopwatch.GetElapsedTime(_start).TotalSeconds, new KeyValuePair<string, object?>("sdxl.outcome", outcome));
        if (_generation is not null)
        {
            _generation.SetTag("sdxl.outcome", outcome);
            if (error is not null)
            {
                _generation.SetStatus(ActivityStatusCode.Error, error.Message);
            }

            _generation.Dispose();
        }
    }

    private void EndPhase(ActivityStatusCode status)
    {
        if (_phase is not null)
        {
            var previous = Activity.Current;
            _phase.SetStatus(status);
            _phase.Dispose();
            Activity.Current = previous;
            _phase = null;
        }
    }

    /// <summary>EncodingPrompts → encoding_prompts.</summary>
    internal static string PhaseName(GenerationPhase phase) => phase switch
    {
        GenerationPhase.LoadingModels => "loading_models",
        GenerationPhase.EncodingPrompts => "encoding_prompts",
        GenerationPhase.EncodingImage => "encoding_image",
        GenerationPhase.Denoising => "denoising",
        GenerationPhase.Refining => "refining",
        GenerationPhase.Decoding => "decoding",
        GenerationPhase.Writing => "writing",
        _ => phase.ToString().ToLowerInvariant(),
    };
}
