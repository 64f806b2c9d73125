using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using Sdxl.Net.Denoising;

namespace Sdxl.Net.Previews;

/// <summary>
/// Reports each finished step of a denoising loop (step, timestep, elapsed, ETA) and, when previews are asked for, the
/// due preview images: the step observer behind <see cref="GenerationProgress"/> and the streaming API.
/// </summary>
/// <remarks>
/// Steps are the sampler's steps: a second-order sampler (Heun, KDPM2) evaluates the model twice per step, and a step
/// is reported when it is complete (<see cref="StepCounter"/>), so Heun with 6 steps reports 1/6 … 6/6, not 11 evaluations.
/// </remarks>
internal sealed class StepReporter(IProgress<GenerationProgress> progress, GenerationPhase phase, Stopwatch generationWatch, PreviewRenderer? previews, RunOptions runOptions, int order)
    : IDenoisingObserver
{
    private readonly Stopwatch _loopWatch = Stopwatch.StartNew();
    private StepCounter? _steps;

    /// <summary>The observer for a run, or <see langword="null"/> when nobody listens (then nothing is computed, previews included).</summary>
    public static StepReporter? For(IProgress<GenerationProgress>? progress, GenerationPhase phase, Stopwatch generationWatch,
        PreviewOptions? options, PreviewDecoderCache decoders, RunOptions runOptions, int order) =>
        progress is null ? null : new StepReporter(progress, phase, generationWatch, options is null ? null : PreviewRenderer.Create(options, decoders), runOptions, order);

    /// <inheritdoc />
    public void OnStepEnd(in DenoisingStepEnd step)
    {
        var steps = _steps ??= new StepCounter(order, step.Count);
        if (steps.Advance(step.Index) is not { } finished)
        {
            return;   // the first evaluation of a second-order step
        }

        var images = previews is not null && previews.IsDue(finished) ? previews.Render(step, runOptions) : null;
        var perStep = _loopWatch.Elapsed / finished;
        progress.Report(new GenerationProgress(phase, finished, steps.Total, generationWatch.Elapsed, perStep * (steps.Total - finished))
        {
            Timestep = step.Timestep,
            Previews = images,
        });
    }
}
