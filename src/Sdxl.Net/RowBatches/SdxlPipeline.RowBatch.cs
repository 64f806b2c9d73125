using System.Diagnostics;
using System.Numerics.Tensors;
using Microsoft.ML.OnnxRuntime;
using Sdxl.Net.Conditioning;
using Sdxl.Net.Denoising;
using Sdxl.Net.Randomness;
using Sdxl.Net.Schedulers;
using Sdxl.Net.Text;

namespace Sdxl.Net;

// Batched text-to-image for serving: several requests share each UNet call; everything else stays per request.
public sealed partial class SdxlPipeline
{
    /// <summary>
    /// The shape a request batches under, or <see langword="null"/> when it cannot join a batch (an input image, a mask,
    /// or the refiner): requests with equal shapes can run together in <see cref="GenerateBatchAsync"/>.
    /// </summary>
    /// <exception cref="ArgumentException">The request is invalid (as <see cref="GenerateAsync(GenerationRequest, CancellationToken)"/> would report).</exception>
    public BatchShape? GetBatchShape(GenerationRequest request)
    {
        ObjectDisposedException.ThrowIf(_lifetime.IsClosed, this);
        ArgumentNullException.ThrowIfNull(request);
        return ShapeOf(request, Validate(request));
    }

    /// <summary>
    /// Advanced (serving): generates several requests as one UNet batch per step. Each row keeps its own prompts,
    /// guidance scale and rescale, micro-conditioning, seed(s) and random stream, scheduler run and progress, so its
    /// images equal those of <see cref="GenerateAsync(GenerationRequest, CancellationToken)"/> for the same request up
    /// to float reassociation inside the batched UNet. A row whose <see cref="BatchRow.CancellationToken"/> fires leaves
    /// the batch before the next step; the others continue. Completed rows are written to the pipeline's sinks.
    /// </summary>
    /// <param name="rows">The rows; every row's <see cref="GetBatchShape"/> must be non-null and equal.</param>
    /// <param name="cancellationToken">Cancels the whole batch.</param>
    /// <returns>One outcome per row, in order.</returns>
    /// <exception cref="ArgumentException">A row is invalid, cannot be batched, or differs in shape from the first row.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task<IReadOnlyList<BatchRowOutcome>> GenerateBatchAsync(IReadOnlyList<BatchRow> rows, CancellationToken cancellationToken = default)
    {
        using var running = _lifetime.Enter(this);
        var plans = ValidateRows(rows);
        var outcomes = await Task.Run(() => GenerateRows(rows, plans, cancellationToken), cancellationToken).ConfigureAwait(false);
        for (int i = 0; i < outcomes.Count; i++)
        {
            if (outcomes[i].Result is { } result)
            {
                foreach (var sink in _settings.Sinks)
                {
                    await sink.WriteAsync(result, cancellationToken).ConfigureAwait(false);
                }

                rows[i].Progress?.Report(new GenerationProgress(GenerationPhase.Completed, 0, 0, result.Elapsed, TimeSpan.Zero));
            }
        }

        return outcomes;
    }

    /// <summary>
    /// <see cref="GenerateBatchAsync"/> on the calling thread, without sinks: a serving worker keeps ONNX Runtime work
    /// on its own thread.
    /// </summary>
    internal IReadOnlyList<BatchRowOutcome> GenerateBatchOnCallingThread(IReadOnlyList<BatchRow> rows, CancellationToken cancellationToken)
    {
        using var running = _lifetime.Enter(this);
        var outcomes = GenerateRows(rows, ValidateRows(rows), cancellationToken);
        for (int i = 0; i < outcomes.Count; i++)
        {
            if (outcomes[i].Result is { } result)
            {
                rows[i].Progress?.Report(new GenerationProgress(GenerationPhase.Completed, 0, 0, result.Elapsed, TimeSpan.Zero));
            }
        }

        return outcomes;
    }

    /// <summary>
    /// <see cref="GenerateAsync(GenerationRequest, IProgress{GenerationProgress}?, CancellationToken)"/> on the calling
    /// thread, without sinks (serving workers; any request, batchable or not).
    /// </summary>
    internal GenerationResult GenerateOnCallingThread(GenerationRequest request, IProgress<GenerationProgress>? progress, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_lifetime.IsClosed, this);
        ArgumentNullException.ThrowIfNull(request);
        using var running = _lifetime.Enter(this);
        var result = Generate(request, Validate(request), progress, cancellationToken);
        progress?.Report(new GenerationProgress(GenerationPhase.Completed, 0, 0, result.Elapsed, TimeSpan.Zero));
        return result;
    }

    // Rows share only the UNet call, so anything that plugs into the denoising run per request (extra UNet inputs,
    // step observers, custom schedules) or another mode (image inputs, the refiner) runs alone.
    private BatchShape? ShapeOf(GenerationRequest r, Plan plan) =>
        r.Image is not null || plan.Refine || r.ControlImages is { Count: > 0 } || r.Timesteps is not null || r.Sigmas is not null
            || r.Eta is not null || r.Preset is not null || r.Preview is not null || r.StepEnd is not null || _model.GuidanceEmbeddingDim is not null
            ? null
            : new BatchShape(plan.Width, plan.Height, r.Steps, plan.SchedulerName, r.GuidanceScale > 1, plan.HighNoiseFraction);

    /// <summary>
    /// The run's randomness: one torch-compatible generator seeded with <see cref="GenerationRequest.Seed"/> (a random
    /// seed when none is given, reported through <paramref name="seed"/>), or one per image (diffusers' generator list).
    /// </summary>
    private IRandomSource CreateRandomSource(GenerationRequest r, out long? seed)
    {
        if (r.Seeds is { } seeds)
        {
            seed = null;
            var sources = new IRandomSource[seeds.Count];
            for (int i = 0; i < sources.Length; i++)
            {
                sources[i] = _settings.RandomSourceFactory(seeds[i]);
            }

            return new PerImageRandomSource(sources);
        }

        seed = r.Seed ?? Random.Shared.NextInt64(0, 1L << 53);
        return _settings.RandomSourceFactory(seed.Value);
    }

    private static void ReportRowStep(IProgress<GenerationProgress> progress, int step, int total, Stopwatch watch, Stopwatch stepWatch)
    {
        var perStep = stepWatch.Elapsed / step;
        progress.Report(new GenerationProgress(GenerationPhase.Denoising, step, total, watch.Elapsed, perStep * (total - step)));
    }

    private Plan[] ValidateRows(IReadOnlyList<BatchRow> rows)
    {
        ObjectDisposedException.ThrowIf(_lifetime.IsClosed, this);
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.Count == 0)
        {
            throw new ArgumentException("A batch needs at least one row.", nameof(rows));
        }

        var plans = new Plan[rows.Count];
        BatchShape? first = null;
        for (int i = 0; i < rows.Count; i++)
        {
            var request = rows[i]?.Request ?? throw new ArgumentNullException(nameof(rows), $"Row {i} (or its request) is null.");
            plans[i] = Validate(request);
            var shape = ShapeOf(request, plans[i])
                ?? throw new ArgumentException($"Row {i} cannot join a batch: requests with an input image or the refiner run alone (GenerateAsync).", nameof(rows));
            first ??= shape;
            if (shape != first)
            {
                throw new ArgumentException($"Row {i} has shape ({shape}) but row 0 has ({first}): the rows of one batch must share size, steps, scheduler, guidance on/off and denoising end.", nameof(rows));
            }
        }

        return plans;
    }

    private List<BatchRowOutcome> GenerateRows(IReadOnlyList<BatchRow> rows, Plan[] plans, CancellationToken ct)
    {
        var watch = Stopwatch.StartNew();
        using var runOptions = new RunOptions();
        using var registration = ct.Register(() => runOptions.Terminate = true);
        int width = plans[0].Width, height = plans[0].Height;
        int lh = height / _model.VaeScaleFactor, lw = width / _model.VaeScaleFactor;
        bool cfg = rows[0].Request.GuidanceScale > 1;
        var states = new RowState[rows.Count];
        var groups = new List<RowGroup>(rows.Count);
        IReadOnlyList<float>? timesteps = null;
        for (int i = 0; i < rows.Count; i++)
        {
            ct.ThrowIfCancellationRequested();
            var row = rows[i];
            var state = states[i] = new RowState(row);
            if (row.CancellationToken.IsCancellationRequested)
            {
                continue;
            }

            var group = PrepareRow(row.Request, plans[i], state, width, height, lh, lw, cfg, runOptions);
            var rowTimesteps = TextToImageTimesteps(group.Run, row.Request.Steps, plans[i].HighNoiseFraction);
            timesteps ??= rowTimesteps;
            if (!timesteps.SequenceEqual(rowTimesteps))
            {
                throw new InvalidOperationException($"Row {i}'s scheduler gave other timesteps than row 0's for the same shape; such rows cannot share a batch.");
            }

            var stepWatch = new Stopwatch();
            state.Group = new RowGroup
            {
                Latents = group.Latents,
                Images = group.Images,
                Run = group.Run,
                Random = group.Random,
                Conditioning = group.Conditioning,
                GuidanceScale = group.GuidanceScale,
                GuidanceRescale = group.GuidanceRescale,
                CancellationToken = row.CancellationToken,
                OnStep = row.Progress is null ? null : (k, n) => ReportRowStep(row.Progress, k, n, watch, stepWatch),
            };
            stepWatch.Start();
            groups.Add(state.Group);
        }

        if (groups.Count > 0)
        {
            RowBatchLoop.Run(_model.UNet, groups, timesteps!, lh, lw, cfg, runOptions, ct);
        }

        var outcomes = new List<BatchRowOutcome>(rows.Count);
        foreach (var state in states)
        {
            outcomes.Add(FinishRow(state, lh, lw, watch, runOptions, ct));
        }

        return outcomes;
    }

    private BatchRowOutcome FinishRow(RowState state, int lh, int lw, Stopwatch watch, RunOptions runOptions, CancellationToken ct)
    {
        var row = state.Row;
        var group = state.Group;
        if (group is null || !group.Active || row.CancellationToken.IsCancellationRequested)
        {
            return new BatchRowOutcome(null, new OperationCanceledException("The row was cancelled.", row.CancellationToken));
        }

        var r = row.Request;
        try
        {
            ThrowIfNotFinite(group.Latents, "base UNet", _model.UNet.FloatType, r, state.Scheduler!);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, row.CancellationToken);
            row.Progress?.Report(new GenerationProgress(GenerationPhase.Decoding, 0, 0, watch.Elapsed, null));
            var images = Decode(_model.VaeDecoder, _model.VaeLatents, _model.VaeScaleFactor, group.Latents, group.Images, lh, lw, r.Seeds, state.Seed,
                _settings.TiledVae, runOptions, linked.Token);
            var result = new GenerationResult(r, images, state.Seed, state.SchedulerName, state.Warnings, watch.Elapsed,
                Path.GetFileName(_model.Directory.TrimEnd(Path.DirectorySeparatorChar)))
            {
                Latents = r.ReturnLatents ? group.Latents : null,
            };
            return new BatchRowOutcome(result, null);
        }
        catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
        {
            return new BatchRowOutcome(null, e);
        }
        catch (SdxlNumericException e)
        {
            return new BatchRowOutcome(null, e);
        }
    }

    // What a lone text-to-image run prepares before denoising: random source, prompt embeddings, conditioning in the
    // lone run's row layout, scheduler run and initial latents.
    private RowGroup PrepareRow(GenerationRequest r, Plan plan, RowState state, int width, int height, int lh, int lw, bool cfg, RunOptions runOptions)
    {
        int batch = r.BatchSize;
        var random = CreateRandomSource(r, out long? seed);
        state.Seed = seed;

        state.SchedulerName = plan.SchedulerName;
        state.Scheduler = plan.Scheduler;
        state.Row.Progress?.Report(new GenerationProgress(GenerationPhase.EncodingPrompts, 0, 0, TimeSpan.Zero, null));
        var notes = new List<TruncationNote>();
        var (positive, negative) = EncodePrompts(_model, r, cfg, notes, runOptions);
        foreach (var n in notes)
        {
            state.Warnings.Add($"The prompt for {n.Tokenizer} has {n.TokenCount} tokens; only the first {n.KeptTokenCount} were used (CLIP reads at most 75): \"{n.Text}\".");
        }

        var cond = BaseConditioning(r, width, height, positive, negative, batch, cfg, textToImage: true);

        var run = plan.Scheduler.CreateRun(r.Steps);
        run.SetBeginIndex(0);
        var latents = new float[batch * _model.LatentChannels * lh * lw];
        if (r.InitialLatents is { } given)
        {
            given.Span.CopyTo(latents);
        }
        else
        {
            random.NextNormal(latents);
        }

        TensorPrimitives.Multiply(latents, run.InitNoiseSigma, latents);
        return new RowGroup
        {
            Latents = latents,
            Images = batch,
            Run = run,
            Random = random,
            Conditioning = cond,
            GuidanceScale = r.GuidanceScale,
            GuidanceRescale = r.GuidanceRescale,
        };
    }

    // The text-to-image schedule: all timesteps, or those before the denoising end.
    private IReadOnlyList<float> TextToImageTimesteps(ISchedulerRun run, int steps, double? highNoiseFraction)
    {
        int count = run.Timesteps.Count;
        if (highNoiseFraction is { } fraction)
        {
            var end = TimestepWindow.ForDenoisingEnd(run, fraction, _model.SchedulerConfig.GetInt32("num_train_timesteps", 1000));
            count = Math.Clamp(end.Count, 0, count);
            if (count == 0)
            {
                throw new ArgumentOutOfRangeException(nameof(GenerationRequest.HighNoiseFraction), fraction, $"HighNoiseFraction {fraction} leaves the base model no step of this schedule ({steps} steps).");
            }
        }

        return TimestepWindow.Slice(run, 0, count);
    }

    private sealed class RowState(BatchRow row)
    {
        public BatchRow Row { get; } = row;

        public RowGroup? Group { get; set; }

        public long? Seed { get; set; }

        public string SchedulerName { get; set; } = string.Empty;

        public IScheduler? Scheduler { get; set; }

        public List<string> Warnings { get; } = [];
    }
}
