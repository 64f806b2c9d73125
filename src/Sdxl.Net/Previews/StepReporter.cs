using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using Sdxl.Net.Denoising;

namespace Sdxl.Net.Previews;

/// <summary>
/// Reports each finished step of a denoising loop (step, timestep, elapsed, ETA) and, when previews are asked for, the
/// due preview images: the step observer behind <see cref="GenerationProgress"/> and the streaming API.
/// </summary>
internal sealed class StepReporter(IProgress<GenerationProgress> progress, GenerationPhase phase, Stopwatch generationWatch, PreviewRenderer? previews, RunOptions runOptions)
    : IDenoisingObserver
{
    private readonly Stopwatch _loopWatch = Stopwatch.StartNew();

    /// <summary>The observer for a run, or <see langword="null"/> when nobody listens (then nothing is computed, previews included).</summary>
    public static StepReporter? For(IProgress<GenerationProgress>? progress, GenerationPhase phase, Stopwatch generationWatch,
        PreviewOptions? options, PreviewDecoderCache decoders, RunOptions runOptions) =>
        progress is null ? null : new StepReporter(progress, phase, generationWatch, options is null ? null : PreviewRenderer.Create(options, decoders), runOptions);

    /// <inheritdoc />
    public void OnStepEnd(in DenoisingStepEnd step)
    {
        int finished = step.Index + 1;
        var images = previews is not null && previews.IsDue(finished) ? previews.Render(step, runOptions) : null;
        var perStep = _loopWatch.Elapsed / finished;
        progress.Report(new GenerationProgress(phase, finished, step.Count, generationWatch.Elapsed, perStep * (step.Count - finished))
        {
            Timestep = step.Timestep,
            Previews = images,
        });
    }
}
