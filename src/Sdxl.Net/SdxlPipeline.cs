using System.Diagnostics;
using System.Numerics.Tensors;
using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;
using Sdxl.Net.Conditioning;
using Sdxl.Net.Denoising;
using Sdxl.Net.Diagnostics;
using Sdxl.Net.Distilled;
using Sdxl.Net.Imaging;
using Sdxl.Net.Lora;
using Sdxl.Net.Models;
using Sdxl.Net.Previews;
using Sdxl.Net.Randomness;
using Sdxl.Net.Schedulers;
using Sdxl.Net.Streaming;
using Sdxl.Net.Text;

namespace Sdxl.Net;

/// <summary>
/// An SDXL text-to-image pipeline over ONNX Runtime, reproducing diffusers' <c>StableDiffusionXLPipeline</c>
/// (and, with a refiner, the ensemble of expert denoisers).
/// </summary>
/// <remarks>
/// Thread-safe: one instance serves concurrent <see cref="GenerateAsync(GenerationRequest, CancellationToken)"/>
/// calls (each has its own scheduler run, random source and buffers; ONNX sessions are shared). Dispose it to release
/// every native session: disposing cancels the generations still running and waits for them first, so it is safe
/// at any moment (a host disposing a singleton pipeline at shutdown with requests in flight).
/// </remarks>
public sealed partial class SdxlPipeline : IDisposable, IAsyncDisposable
{
    private readonly SdxlPipelineSettings _settings;
    private readonly SdxlModelFolder _model;
    private readonly IScheduler _scheduler;
    private readonly ILogger _logger;
    private readonly ControlNet.ControlNetModel[] _controlNets;
    private readonly LoraAdapters _loras;
    private readonly object _refinerLock = new();
    private readonly PreviewDecoderCache _previewDecoders;
    private SdxlModelFolder? _refiner;
    private IScheduler? _refinerScheduler;
    private readonly PipelineLifetime _lifetime;

    internal SdxlPipeline(SdxlPipelineSettings settings, CancellationToken cancellationToken = default)
    {
        _settings = settings;
        _logger = settings.LoggerFactory.CreateLogger("Sdxl.Net.Pipeline");
        _lifetime = new PipelineLifetime(ReleaseSessions);
        Runtime.OrtLogging.Route(settings.LoggerFactory);
        var watch = Stopwatch.StartNew();
        _controlNets = [];
        _loras = new LoraAdapters(settings.ModelDirectory, settings.Loras, _logger);
        try
        {
            _model = TextualInversions.OpenFolder(settings.ModelDirectory, settings.Provider, settings.Embeddings, customize: _loras.Customize, cancellationToken: cancellationToken);
        }
        catch
        {
            _loras.Dispose();
            throw;
        }

        _previewDecoders = new PreviewDecoderCache(settings.Provider);
        try
        {
            _scheduler = CreateConfiguredScheduler(settings, _model);
            if (settings.ControlNets.Count > 0)
            {
                _model.LoadControlNetUNet(settings.Provider);
            }

            _controlNets = ControlNet.ControlNetStage.Load(settings.ControlNets, settings.Provider);
            ControlNet.ControlNetStage.CheckModel(_model, _controlNets);
            if (_model.ControlNetUNet is not null && settings.Loras.Count > 0)
            {
                throw new ArgumentException(SeparateControlNetUNetWithLora, nameof(settings.Loras));
            }

            _loras.Attach(_model, settings.Provider);
        }
        catch
        {
            foreach (var net in _controlNets)
            {
                net.Dispose();
            }

            _model.Dispose();
            _loras.Dispose();
            throw;
        }

        SdxlLog.ModelLoaded(_logger, settings.ModelDirectory, settings.Provider.Kind, watch.ElapsedMilliseconds, _scheduler.Name);
        if (_model.VaeForceUpcast && _model.VaeDecoder.FloatType == Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float16)
        {
            // diffusers runs such a VAE in float32 (force_upcast); an ONNX graph's precision is fixed at export.
            SdxlLog.Float16VaeWithForceUpcast(_logger);
        }
    }

    private const string SeparateControlNetUNetWithLora =
        "LoRA adapters cannot be combined with a ControlNet UNet in controlnet/model.onnx (OnnxStack's layout) yet: the adapters are mapped "
        + "onto unet/model.onnx, whose initializer names need not match the other file's. Use an export whose unet/ itself takes the "
        + "ControlNet residuals, or generate without adapters.";

    /// <summary>Starts configuring a pipeline.</summary>
    public static SdxlPipelineBuilder CreateBuilder() => new();

    /// <summary>Width and height must be multiples of this many pixels (from the model's UNet and VAE configuration; 32 for SDXL).</summary>
    public int PixelMultiple => _model.PixelMultiple;

    /// <summary>The size generated when a request gives none (1024 for SDXL).</summary>
    public int DefaultImageSize => _model.DefaultImageSize;

    /// <summary>The scheduler used when a request names none.</summary>
    public IScheduler Scheduler => _scheduler;

    /// <summary>Whether a refiner is configured.</summary>
    public bool HasRefiner => _settings.RefinerDirectory is not null;

    /// <summary>Generates the images of <paramref name="request"/> and writes them to the pipeline's sinks.</summary>
    public Task<GenerationResult> GenerateAsync(GenerationRequest request, CancellationToken cancellationToken = default) =>
        GenerateAsync(request, progress: null, cancellationToken);

    /// <summary>Generates the images of <paramref name="request"/>, reporting progress, and writes them to the pipeline's sinks.</summary>
    /// <exception cref="ArgumentException">The request is invalid; the message names the value and what is allowed.</exception>
    /// <exception cref="OperationCanceledException">Cancelled; the pipeline stays usable.</exception>
    /// <exception cref="SdxlNumericException">The models produced NaN or infinite values.</exception>
    /// <exception cref="ObjectDisposedException">The pipeline was disposed before the call.</exception>
    /// <remarks>
    /// Disposing the pipeline while the call runs cancels it: it ends in an <see cref="OperationCanceledException"/>
    /// saying so, and no sink writes a partial file.
    /// </remarks>
    public async Task<GenerationResult> GenerateAsync(GenerationRequest request, IProgress<GenerationProgress>? progress, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        using var running = _lifetime.Enter(this);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _lifetime.Closing);
        var ct = linked.Token;
        Plan plan;
        try
        {
            plan = Validate(request);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested && _lifetime.IsClosed)
        {
            throw new OperationCanceledException("The pipeline was disposed while the generation ran.", e, _lifetime.Closing);
        }

        // Traces (a span per generation and per phase) and metrics (duration, steps/s) ride on the progress reports.
        using var telemetry = GenerationTelemetry.Start(_model.Directory, plan.SchedulerName, request.Steps, plan.Width, plan.Height, progress);
        try
        {
            progress = telemetry.Progress;
            var result = await Task.Run(() => Generate(request, plan, progress, ct), ct).ConfigureAwait(false);
            if (_settings.Sinks.Length > 0)
            {
                progress?.Report(new GenerationProgress(GenerationPhase.Writing, 0, 0, result.Elapsed, null));
                foreach (var sink in _settings.Sinks)
                {
                    await sink.WriteAsync(result, ct).ConfigureAwait(false);
                }
            }

            progress?.Report(new GenerationProgress(GenerationPhase.Completed, 0, 0, result.Elapsed, TimeSpan.Zero));
            telemetry.Succeeded();
            return result;
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested && _lifetime.IsClosed)
        {
            telemetry.Failed(e);
            throw new OperationCanceledException("The pipeline was disposed while the generation ran.", e, _lifetime.Closing);
        }
        catch (Exception e)
        {
            telemetry.Failed(e);
            throw;
        }
    }

    /// <summary>
    /// Generates the images of <paramref name="request"/> (writing them to the pipeline's sinks) while streaming its
    /// progress: every phase change and denoising step (step, timestep, elapsed time, the previews
    /// <see cref="GenerationRequest.Preview"/> asks for), then one final update with the result.
    /// </summary>
    /// <remarks>
    /// Leaving the enumeration early (<c>break</c>, disposing the enumerator, or cancelling
    /// <paramref name="cancellationToken"/>) cancels the generation and waits until it has stopped. Failures surface from
    /// the enumeration as <see cref="GenerateAsync(GenerationRequest, IProgress{GenerationProgress}?, CancellationToken)"/> throws them.
    /// </remarks>
    public IAsyncEnumerable<GenerationUpdate> GenerateStreamingAsync(GenerationRequest request, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_lifetime.IsClosed, this);
        ArgumentNullException.ThrowIfNull(request);
        return GenerationStream.Run((progress, ct) => GenerateAsync(request, progress, ct), cancellationToken);
    }

    /// <summary>
    /// Cancels the generations still running, waits for them to end, then releases every ONNX session (base and
    /// refiner). Called from a progress callback or sink of one of its own generations, it does not wait (that
    /// generation would wait for itself): the sessions are released when the last generation has ended.
    /// </summary>
    public void Dispose()
    {
        var released = _lifetime.Close();
        if (!_lifetime.IsCurrentFlowInside())
        {
            released.GetAwaiter().GetResult();
        }
    }

    /// <summary>As <see cref="Dispose"/>, without blocking a thread while running generations wind down.</summary>
    public ValueTask DisposeAsync()
    {
        var released = _lifetime.Close();
        return _lifetime.IsCurrentFlowInside() ? ValueTask.CompletedTask : new ValueTask(released);
    }

    private void ReleaseSessions()
    {
        _model.Dispose();
        foreach (var net in _controlNets)
        {
            net.Dispose();
        }

        _loras.Dispose();
        _previewDecoders.Dispose();
        lock (_refinerLock)
        {
            _refiner?.Dispose();
        }
    }

    private enum GenerationMode
    {
        TextToImage,
        ImageToImage,
        Inpainting,
    }

    private sealed record Plan(int Width, int Height, IScheduler Scheduler, string SchedulerName, bool Refine, double? HighNoiseFraction, double Strength);

    private Plan Validate(GenerationRequest r)
    {
        int multiple = _model.PixelMultiple;
        int width = r.Width ?? r.Image?.Width ?? _model.DefaultImageSize;
        int height = r.Height ?? r.Image?.Height ?? _model.DefaultImageSize;
        RequestValidation.Check(r, width, height, multiple, _model.LatentChannels, _model.VaeScaleFactor);
        bool refine = r.UseRefiner && HasRefiner;

        // Both sources are already range-checked: the request's in RequestValidation, the options' in Build().
        double? fraction = refine ? r.HighNoiseFraction ?? _settings.RefinerOptions!.HighNoiseFraction : r.HighNoiseFraction;

        if (r.Mask is not null && r.Image is null)
        {
            throw new ArgumentException("Mask needs Image: inpainting repaints the masked region of an input image.", nameof(r.Mask));
        }

        if (r.Image is not null && r.InitialLatents is not null)
        {
            throw new ArgumentException("InitialLatents cannot be combined with Image: image-to-image starts from the encoded image.", nameof(r.InitialLatents));
        }

        if (r.Image is not null && _model.VaeEncoder is null)
        {
            throw new ArgumentException($"Image-to-image and inpainting need a vae_encoder, and the model folder '{_model.Directory}' has none.", nameof(r.Image));
        }

        double strength = r.Strength ?? (r.Mask is not null ? 0.9999 : 0.3);
        if (r.Image is null && r.Strength is not null)
        {
            throw new ArgumentException("Strength applies to image-to-image and inpainting; the request has no Image.", nameof(r.Strength));
        }

        if (r.Mask is null && _model.UNetInChannels == 9)
        {
            throw new ArgumentException("This model has a 9-channel inpainting UNet: give Image and Mask.", nameof(r.Mask));
        }

        ControlNet.ControlNetStage.CheckRequest(r, _controlNets);
        CheckMemory(r, width, height);
        var scheduler = CustomSchedules.WithEta(r.Scheduler is { } name ? CreateNamedScheduler(name, _model.SchedulerConfig) : _scheduler, r.Eta);
        PreviewRenderer.Validate(r.Preview);

        // The name recorded in results and PNG recipes is the catalog name that was asked for (e.g. "euler-karras"),
        // so a recipe selects the same sampler again.
        var schedulerName = r.Scheduler ?? _settings.SchedulerName ?? scheduler.Name;
        return new Plan(width, height, scheduler, schedulerName, refine, fraction, strength);
    }

    /// <summary>Refuses, before any work, a generation whose activations cannot fit in the memory left (CPU provider).</summary>
    private void CheckMemory(GenerationRequest r, int width, int height)
    {
        int scale = _model.VaeScaleFactor;
        long unet = RequestValidation.EstimateActivationBytes(r.BatchSize, r.GuidanceScale > 1 && _model.GuidanceEmbeddingDim is null, height / scale, width / scale);
        int? tile = _settings.TiledVae is { } tiling ? tiling.TileSize * scale : null;
        long decode = MemoryGuard.EstimateDecodeBytes(width, height, _model.VaeFirstChannels, scale, tile);
        long unetToLoad = _model.UNet.IsLoaded ? 0 : MemoryGuard.ComponentBytes(Path.Combine(_model.Directory, "unet"));
        MemoryGuard.CheckGeneration(unet, decode, unetToLoad, _settings.Provider, width, height, r.BatchSize, _settings.TiledVae is not null);
    }

    private static IScheduler CreateConfiguredScheduler(SdxlPipelineSettings settings, SdxlModelFolder model)
    {
        try
        {
            return settings.SchedulerFactory(model.SchedulerConfig);
        }
        catch (NotSupportedException e)
        {
            // The folder's scheduler_config.json names a class the catalog does not know: a model folder fault.
            throw new SdxlModelException($"scheduler: {Path.Combine(model.Directory, "scheduler", "scheduler_config.json")}: {e.Message} Pick one with WithScheduler(name).", e);
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            // Names are checked by Build(), so what the scheduler refuses here is a value of the folder's configuration.
            throw new SdxlModelException($"scheduler: {Path.Combine(model.Directory, "scheduler", "scheduler_config.json")}: {e.Message}", e);
        }
    }

    /// <summary>
    /// Fails when denoising left NaN or infinite latents, naming the likely causes, before the VAE turns them into a
    /// black image.
    /// </summary>
    private static void ThrowIfNotFinite(float[] latents, string stage, Microsoft.ML.OnnxRuntime.Tensors.TensorElementType unetType, GenerationRequest r, IScheduler scheduler)
    {
        if (!AllFinite(latents))
        {
            bool custom = scheduler.GetType().Assembly != typeof(SdxlPipeline).Assembly;
            throw new SdxlNumericException(NumericDiagnosis.ForLatents(stage, unetType, r, custom));
        }
    }

    private IScheduler CreateNamedScheduler(string name, SchedulerConfig config)
    {
        try
        {
            return _settings.Catalog.Create(name, _settings.ConfigureScheduler(config));
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or KeyNotFoundException)
        {
            throw new ArgumentException($"Unknown scheduler '{name}': {e.Message}", nameof(GenerationRequest.Scheduler), e);
        }
    }

    private GenerationResult Generate(GenerationRequest r, Plan plan, IProgress<GenerationProgress>? progress, CancellationToken ct)
    {
        var watch = Stopwatch.StartNew();
        using var runOptions = new RunOptions();
        using var registration = ct.Register(() => runOptions.Terminate = true);
        var warnings = new List<string>();
        int batch = r.BatchSize;
        int width = plan.Width, height = plan.Height;
        int lh = height / _model.VaeScaleFactor, lw = width / _model.VaeScaleFactor;
        // A guidance-distilled UNet (LCM) takes the guidance scale as an embedding instead: no CFG batch, as diffusers.
        bool cfg = r.GuidanceScale > 1 && _model.GuidanceEmbeddingDim is null;
        var mode = r.Image is null ? GenerationMode.TextToImage : r.Mask is null ? GenerationMode.ImageToImage : GenerationMode.Inpainting;

        // Randomness: one torch-compatible generator for the run, or one per image (diffusers' generator list).
        var random = CreateRandomSource(r, out long? seed);

        // LoRA adapters: the base sessions, or sessions with the request's adapter set merged in (held for the run).
        if (r.Loras is { Count: > 0 } && r.ControlImages is { Count: > 0 } && _model.ControlNetUNet is not null)
        {
            throw new ArgumentException(SeparateControlNetUNetWithLora, nameof(r.Loras));
        }

        using var loras = _loras.Begin(r, _model);
        var model = loras.Model;
        warnings.AddRange(loras.Warnings);

        // 1. Prompts.
        progress?.Report(new GenerationProgress(GenerationPhase.EncodingPrompts, 0, 0, watch.Elapsed, null));
        var notes = new List<TruncationNote>();
        var (positive, negative) = EncodePrompts(model, r, cfg, notes, runOptions);
        foreach (var n in notes)
        {
            warnings.Add($"The prompt for {n.Tokenizer} has {n.TokenCount} tokens; only the first {n.KeptTokenCount} were used (CLIP reads at most 75): \"{n.Text}\".");
        }

        ct.ThrowIfCancellationRequested();

        // 2. Micro-conditioning. The text-to-image pipeline lays time_ids out as cat([neg, pos]).repeat(B); the
        //    image-to-image and inpainting pipelines repeat each part first.
        var cond = BaseConditioning(r, width, height, positive, negative, batch, cfg, textToImage: mode == GenerationMode.TextToImage);

        // 3. Schedule: the full schedule, or diffusers' strength window for image inputs.
        //    A custom timesteps/sigmas list sets the step count (diffusers' retrieve_timesteps).
        var (run, steps) = CustomSchedules.CreateRun(plan.Scheduler, r.Steps, r.Timesteps, r.Sigmas);
        TimestepRange window;
        if (mode == GenerationMode.TextToImage)
        {
            run.SetBeginIndex(0);
            window = new TimestepRange(0, run.Timesteps.Count, steps);
        }
        else
        {
            window = TimestepWindow.ForStrength(run, steps, plan.Strength);
            if (window.Count == 0)
            {
                throw new ArgumentOutOfRangeException(nameof(r.Strength), plan.Strength, $"Strength {plan.Strength} with {steps} steps leaves no denoising step (int(steps × strength) = 0); raise Strength or Steps.");
            }
        }

        int count = window.Count;
        if (plan.HighNoiseFraction is { } fraction)
        {
            // denoising_end keeps the leading timesteps t >= cutoff of the (windowed) schedule.
            var end = TimestepWindow.ForDenoisingEnd(run, fraction, _model.SchedulerConfig.GetInt32("num_train_timesteps", 1000));
            count = Math.Clamp(end.Count - window.BeginIndex, 0, window.Count);
            if (count == 0)
            {
                throw new ArgumentOutOfRangeException(nameof(r.HighNoiseFraction), fraction, $"HighNoiseFraction {fraction} leaves the base model no step of this schedule.");
            }
        }

        IReadOnlyList<float> timesteps = TimestepWindow.Slice(run, window.BeginIndex, count);

        // 4. Initial latents.
        int latentCount = batch * _model.LatentChannels * lh * lw;
        var latents = new float[latentCount];
        InpaintState? inpaint = null;
        switch (mode)
        {
            case GenerationMode.TextToImage:
                // Given noise, or randn from the generator; times init_noise_sigma.
                if (r.InitialLatents is { } given)
                {
                    given.Span.CopyTo(latents);
                }
                else
                {
                    random.NextNormal(latents);
                }

                TensorPrimitives.Multiply(latents, run.InitNoiseSigma, latents);
                break;

            case GenerationMode.ImageToImage:
            {
                // diffusers' img2img prepare_latents: encode (a posterior sample drawn from the generator), scale,
                // repeat for the batch, then add_noise(init, randn, timesteps[0]).
                progress?.Report(new GenerationProgress(GenerationPhase.EncodingImage, 0, 0, watch.Elapsed, null));
                var pixels = ImageInput.ToTensor(r.Image!, width, height, r.ResizeMode);
                var init = EncodeImage(pixels, width, height, batch, random, perImageSamples: true, r.VaeSampling, runOptions);
                var noise = new float[latentCount];
                random.NextNormal(noise);
                run.AddNoise(init, noise, timesteps[0], latents);
                break;
            }

            case GenerationMode.Inpainting:
                inpaint = PrepareInpainting(r, plan, run, timesteps, width, height, batch, lh, lw, latents, random, progress, watch, runOptions);
                break;
        }

        // 5. Denoise with the base model.
        var stepWatch = Stopwatch.StartNew();
        var extensions = WithStepReporter(CreateDenoisingExtensions(model, r, cond, width, height, isRefiner: false), r, progress, GenerationPhase.Denoising, watch, runOptions, run.Order);
        DenoisingLoop.Run(ControlNet.ControlNetStage.UNetFor(model, r), run, timesteps, latents, batch, lh, lw, cond, cfg ? r.GuidanceScale : 1f, r.GuidanceRescale, random,
            onStep: null, runOptions, ct, inpaint, extensions);
        SdxlLog.BaseDenoised(_logger, timesteps.Count, stepWatch.ElapsedMilliseconds);
        ThrowIfNotFinite(latents, "base UNet", _model.UNet.FloatType, r, plan.Scheduler);

        // 6. Refiner (ensemble of experts): the base latents go straight to the refiner, no noise added.
        var decoder = _model.VaeDecoder;
        var vaeLatents = _model.VaeLatents;
        if (plan.Refine)
        {
            progress?.Report(new GenerationProgress(GenerationPhase.LoadingModels, 0, 0, watch.Elapsed, null));
            var (refiner, refinerScheduler) = GetRefiner(r, ct);
            Refine(refiner, refinerScheduler, r, plan, latents, width, height, cfg, random, warnings, progress, watch, runOptions, ct);
            ThrowIfNotFinite(latents, "refiner UNet", refiner.UNet.FloatType, r, refinerScheduler);
            if (_settings.RefinerOptions!.UseRefinerVae)
            {
                decoder = refiner.VaeDecoder;
                vaeLatents = refiner.VaeLatents;
            }
        }

        // 7. Decode.
        progress?.Report(new GenerationProgress(GenerationPhase.Decoding, 0, 0, watch.Elapsed, null));
        var images = Decode(decoder, vaeLatents, _model.VaeScaleFactor, latents, batch, lh, lw, r.Seeds, seed, _settings.TiledVae, runOptions, ct);
        watch.Stop();
        return new GenerationResult(r, images, seed, plan.SchedulerName, warnings, watch.Elapsed,
            Path.GetFileName(_model.Directory.TrimEnd(Path.DirectorySeparatorChar)))
        {
            Latents = r.ReturnLatents ? latents : null,
            Loras = loras.Applied,
            Embeddings = _model.Embeddings?.Applied ?? [],
            ControlNets = ControlNet.ControlNetStage.NetNames(r, _controlNets),
            Provenance = GenerationProvenance.Create(plan.SchedulerName, plan.Scheduler, _model.SchedulerConfig, _settings.ConfigureScheduler,
                _settings.RefinerDirectory, _settings.RefinerOptions, plan.HighNoiseFraction, plan.Refine, _settings.TiledVae),
        };
    }

    /// <summary>
    /// VAE-encodes one image [3, H, W] in [-1, 1] and returns <c>scaling_factor · sample</c> repeated for the batch.
    /// A <c>latent_parameters</c> output is sampled on the host (mean + exp(logvar / 2) · randn, one draw of [1, 4, h, w]
    /// per generator, as diffusers' DiagonalGaussianDistribution).
    /// </summary>
    // perImageSamples, with per-image generators: whether each image draws its own posterior sample (diffusers' img2img
    // repeats the image first and encodes each row with its generator) or only the first generator draws one sample for
    // the single image that is then repeated (the inpainting pipeline encodes the unrepeated image).
    private float[] EncodeImage(float[] pixels, int width, int height, int batch, IRandomSource random, bool perImageSamples, VaeSampling sampling, RunOptions runOptions)
    {
        var encoder = _model.VaeEncoder
            ?? throw new InvalidOperationException($"The model folder '{_model.Directory}' has no vae_encoder/model.onnx, which image-to-image and inpainting need.");
        var (output, shape) = encoder.Encode(pixels, [1, 3, height, width], runOptions);
        if (!AllFinite(output))
        {
            throw new SdxlNumericException(NumericDiagnosis.ForVae("encoder", encoder.FloatType));
        }

        int plane = (int)(shape[2] * shape[3]);
        int per = _model.LatentChannels * plane;
        var result = new float[per * batch];
        if (!encoder.OutputsParameters || sampling == VaeSampling.Mean)
        {
            // Sampled inside the graph (older exports), or the posterior mean (the first channels of the parameters).
            for (int b = 0; b < batch; b++)
            {
                output.AsSpan(0, per).CopyTo(result.AsSpan(b * per));
            }
        }
        else
        {
            var mean = output.AsSpan(0, per);
            var logvar = output.AsSpan(per, per);
            var std = new float[per];
            TensorPrimitives.Clamp(logvar, -30f, 20f, std);
            TensorPrimitives.Multiply(std, 0.5f, std);
            TensorPrimitives.Exp(std, std);

            // One generator: one draw for the single encoded image, then repeated. Per-image generators: one draw each
            // (img2img), or one draw from the first generator only (inpainting).
            var perImage = random as PerImageRandomSource;
            int draws = perImage is not null && perImageSamples ? batch : 1;
            var noise = new float[per * draws];
            (perImage is not null && !perImageSamples ? perImage[0] : random).NextNormal(noise);
            for (int b = 0; b < batch; b++)
            {
                var dest = result.AsSpan(b * per, per);
                TensorPrimitives.Multiply(std, noise.AsSpan((b % draws) * per, per), dest);
                TensorPrimitives.Add(dest, mean, dest);
            }
        }

        for (int b = 0; b < batch; b++)
        {
            _model.VaeLatents.FromEncoder(result.AsSpan(b * per, per), plane);
        }
        return result;
    }

    private InpaintState PrepareInpainting(GenerationRequest r, Plan plan, ISchedulerRun run, IReadOnlyList<float> timesteps, int width, int height,
        int batch, int lh, int lw, float[] latents, IRandomSource random, IProgress<GenerationProgress>? progress, Stopwatch watch, RunOptions runOptions)
    {
        progress?.Report(new GenerationProgress(GenerationPhase.EncodingImage, 0, 0, watch.Elapsed, null));
        bool nine = _model.UNetInChannels == 9;
        bool strengthMax = plan.Strength >= 1.0;
        var pixels = ImageInput.ToTensor(r.Image!, width, height, r.ResizeMode);
        var mask = ImageInput.ToMask(r.Mask!, width, height, r.ResizeMode);

        // diffusers' draw order: image latents (4-channel UNets, or when re-noising), noise, masked-image latents.
        float[]? imageLatents = !nine || !strengthMax ? EncodeImage(pixels, width, height, batch, random, perImageSamples: false, r.VaeSampling, runOptions) : null;
        var noise = new float[latents.Length];
        random.NextNormal(noise);
        if (strengthMax)
        {
            TensorPrimitives.Multiply(noise, run.InitNoiseSigma, latents);
        }
        else
        {
            run.AddNoise(imageLatents, noise, timesteps[0], latents);
        }

        // masked_image = image * (mask < 0.5)
        int plane = width * height;
        var masked = (float[])pixels.Clone();
        for (int c = 0; c < 3; c++)
        {
            for (int k = 0; k < plane; k++)
            {
                if (mask[k] >= 0.5f)
                {
                    masked[(c * plane) + k] = 0f;
                }
            }
        }

        var maskedLatents = EncodeImage(masked, width, height, batch, random, perImageSamples: false, r.VaeSampling, runOptions);

        // The mask at latent resolution: nearest-neighbour, as torch.nn.functional.interpolate's default.
        var latentMask = new float[batch * lh * lw];
        int scale = _model.VaeScaleFactor;
        for (int y = 0; y < lh; y++)
        {
            for (int x = 0; x < lw; x++)
            {
                latentMask[(y * lw) + x] = mask[(y * scale * width) + (x * scale)];
            }
        }

        for (int b = 1; b < batch; b++)
        {
            latentMask.AsSpan(0, lh * lw).CopyTo(latentMask.AsSpan(b * lh * lw));
        }

        return new InpaintState(latentMask, nine ? maskedLatents : null, imageLatents, noise, nine);
    }

    private void Refine(SdxlModelFolder refiner, IScheduler scheduler, GenerationRequest r, Plan plan, float[] latents, int width, int height,
        bool cfg, IRandomSource random, List<string> warnings, IProgress<GenerationProgress>? progress, Stopwatch watch, RunOptions runOptions, CancellationToken ct)
    {
        int batch = r.BatchSize;
        int lh = height / refiner.VaeScaleFactor, lw = width / refiner.VaeScaleFactor;
        var notes = new List<TruncationNote>();
        var (positive, negative) = EncodePrompts(refiner, r, cfg, notes, runOptions);
        foreach (var n in notes)
        {
            warnings.Add($"Refiner: the prompt has {n.TokenCount} tokens; only the first {n.KeptTokenCount} were used.");
        }

        var options = _settings.RefinerOptions!;
        var conditioning = new MicroConditioning { AestheticScore = options.AestheticScore, NegativeAestheticScore = options.NegativeAestheticScore }
            .Merge(ResolveConditioning(r, width, height, isRefiner: true));
        var (posIds, negIds) = TimeIds.ForImageToImage(conditioning, width, height, refiner.RequiresAestheticsScore);
        var cond = new DenoisingConditioning(
            Batching.NegativeThenPositive(negative.Hidden, positive.Hidden, batch, cfg),
            positive.SequenceLength,
            positive.HiddenSize,
            Batching.NegativeThenPositive(negative.Pooled, positive.Pooled, batch, cfg),
            Batching.NegativeThenPositive(negIds, posIds, batch, cfg),
            posIds.Length);

        var (run, _) = CustomSchedules.CreateRun(scheduler, r.Steps, r.Timesteps, r.Sigmas);
        var window = TimestepWindow.ForDenoisingStart(run, plan.HighNoiseFraction!.Value, refiner.SchedulerConfig.GetInt32("num_train_timesteps", 1000));
        if (window.Count == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(r.HighNoiseFraction), plan.HighNoiseFraction, $"HighNoiseFraction {plan.HighNoiseFraction} leaves the refiner no step of this schedule.");
        }

        var timesteps = TimestepWindow.Slice(run, window.BeginIndex, window.Count);
        var stepWatch = Stopwatch.StartNew();
        var extensions = WithStepReporter(CreateDenoisingExtensions(refiner, r, cond, width, height, isRefiner: true), r, progress, GenerationPhase.Refining, watch, runOptions, run.Order);
        DenoisingLoop.Run(refiner.UNet, run, timesteps, latents, batch, lh, lw, cond, cfg ? r.GuidanceScale : 1f, r.GuidanceRescale, random,
            onStep: null, runOptions, ct, inpaint: null, extensions);
        SdxlLog.Refined(_logger, timesteps.Length, stepWatch.ElapsedMilliseconds);
    }

    private (SdxlModelFolder Model, IScheduler Scheduler) GetRefiner(GenerationRequest r, CancellationToken ct)
    {
        lock (_refinerLock)
        {
            if (_refiner is null)
            {
                var watch = Stopwatch.StartNew();
                var refiner = TextualInversions.OpenFolder(_settings.RefinerDirectory!, _settings.Provider, _settings.Embeddings, loadVaeEncoder: false, cancellationToken: ct);
                try
                {
                    _refinerScheduler = CreateConfiguredScheduler(_settings, refiner);
                }
                catch
                {
                    refiner.Dispose();
                    throw;
                }

                _refiner = refiner;
                SdxlLog.RefinerLoaded(_logger, _settings.RefinerDirectory!, watch.ElapsedMilliseconds);
            }

            var scheduler = CustomSchedules.WithEta(r.Scheduler is { } name ? CreateNamedScheduler(name, _refiner.SchedulerConfig) : _refinerScheduler!, r.Eta);
            return (_refiner, scheduler);
        }
    }

    /// <summary>
    /// What plugs into one denoising run (the seams of docs/architecture.md): providers of the UNet's extra inputs and
    /// step observers. Each feature contributes its own small class here; the loop itself knows none of them.
    /// </summary>
    private DenoisingExtensions CreateDenoisingExtensions(SdxlModelFolder model, GenerationRequest r, DenoisingConditioning conditioning,
        int width, int height, bool isRefiner)
    {
        var inputs = new List<IUNetInputProvider>();
        var observers = new List<IDenoisingObserver>();
        if (model.GuidanceEmbeddingDim is { } condDim)
        {
            inputs.Add(new GuidanceEmbedding(r.GuidanceScale, condDim));
        }

        // ControlNet guides the base model only (diffusers has no ControlNet refiner).
        if (!isRefiner && ControlNet.ControlNetStage.CreateProvider(model, _controlNets, r, conditioning, width, height) is { } controlNet)
        {
            inputs.Add(controlNet);
        }

        if (r.StepEnd is { } stepEnd)
        {
            observers.Add(new StepEndCallbackObserver(stepEnd, isRefiner ? GenerationPhase.Refining : GenerationPhase.Denoising));
        }

        return inputs.Count == 0 && observers.Count == 0 ? DenoisingExtensions.None : new DenoisingExtensions(inputs, observers);
    }

    /// <summary>Appends the progress reporter (steps, timesteps, previews) when someone listens; it runs after every other observer.</summary>
    private DenoisingExtensions WithStepReporter(DenoisingExtensions extensions, GenerationRequest r, IProgress<GenerationProgress>? progress,
        GenerationPhase phase, Stopwatch watch, RunOptions runOptions, int order) =>
        StepReporter.For(progress, phase, watch, r.Preview, _previewDecoders, runOptions, order) is { } reporter
            ? extensions with { Observers = [.. extensions.Observers, reporter] }
            : extensions;

    /// <summary>
    /// The CFG-batched conditioning of a base-model run: token and pooled embeddings [negative × B, positive × B] and
    /// time_ids in diffusers' row layout — <c>cat([neg, pos]).repeat(B)</c> in the text-to-image pipeline, each part
    /// repeated first in the image-to-image and inpainting pipelines (and for refiner-style aesthetic-score UNets).
    /// </summary>
    private DenoisingConditioning BaseConditioning(GenerationRequest r, int width, int height, PromptEmbedding positive, PromptEmbedding negative,
        int batch, bool cfg, bool textToImage)
    {
        var conditioning = ResolveConditioning(r, width, height, isRefiner: false);
        bool baseLayout = textToImage && !_model.RequiresAestheticsScore;
        var (posIds, negIds) = baseLayout
            ? TimeIds.ForBase(conditioning, width, height)
            : TimeIds.ForImageToImage(conditioning, width, height, _model.RequiresAestheticsScore);
        return new DenoisingConditioning(
            Batching.NegativeThenPositive(negative.Hidden, positive.Hidden, batch, cfg),
            positive.SequenceLength,
            positive.HiddenSize,
            Batching.NegativeThenPositive(negative.Pooled, positive.Pooled, batch, cfg),
            baseLayout ? Batching.BaseTimeIds(negIds, posIds, batch, cfg) : Batching.NegativeThenPositive(negIds, posIds, batch, cfg),
            posIds.Length);
    }

    private MicroConditioning ResolveConditioning(GenerationRequest r, int width, int height, bool isRefiner)
    {
        var context = new MicroConditioningContext(width, height, isRefiner);
        var conditioning = new MicroConditioning();
        foreach (var provider in _settings.Conditioning)
        {
            conditioning = provider.Apply(context, conditioning) ?? throw new InvalidOperationException($"The conditioning provider {provider.GetType().Name} returned null.");
            RequestValidation.CheckConditioning(conditioning, $"The conditioning provider {provider.GetType().Name} returned {nameof(MicroConditioning)}");
        }

        return conditioning.Merge(r.Conditioning);
    }

    private static (PromptEmbedding Positive, PromptEmbedding Negative) EncodePrompts(
        SdxlModelFolder model, GenerationRequest r, bool cfg, List<TruncationNote> notes, RunOptions runOptions) =>
        PromptEncoders.For(r.PromptSyntax).EncodePair(model, PromptTexts.From(r), cfg, notes, runOptions);

    private static List<GeneratedImage> Decode(VaeDecoderModel decoder, VaeLatentScaling vaeLatents, int vaeScale, float[] latents,
        int batch, int lh, int lw, IReadOnlyList<long>? seeds, long? seed, TiledVaeOptions? tiling, RunOptions runOptions, CancellationToken ct)
    {
        int per = latents.Length / batch;
        var scaled = new float[per];
        var images = new List<GeneratedImage>(batch);
        for (int b = 0; b < batch; b++)
        {
            ct.ThrowIfCancellationRequested();

            // latents / scaling_factor, or latents · std / scaling_factor + mean for VAEs that declare them.
            vaeLatents.ToDecoder(latents.AsSpan(b * per, per), scaled, lh * lw);

            int channels = per / (lh * lw);
            int height = lh * vaeScale, width = lw * vaeScale;
            var decoded = new float[3 * height * width];
            decoder.Decode(scaled, [1, channels, lh, lw], vaeScale, decoded, tiling, runOptions);
            if (!AllFinite(decoded))
            {
                throw new SdxlNumericException(NumericDiagnosis.ForVae("decoder", decoder.FloatType));
            }

            // (x * 0.5 + 0.5).clamp(0, 1)
            TensorPrimitives.Multiply(decoded, 0.5f, decoded);
            TensorPrimitives.Add(decoded, 0.5f, decoded);
            TensorPrimitives.Clamp(decoded, 0f, 1f, decoded);
            images.Add(new GeneratedImage(b, width, height, decoded, seeds is not null ? seeds[b] : seed));
        }

        return images;
    }

    private static bool AllFinite(ReadOnlySpan<float> values)
    {
        // NaN and ±Inf make the sum non-finite; one pass, no branches per element.
        float sum = TensorPrimitives.Sum(values);
        if (float.IsFinite(sum))
        {
            return true;
        }

        foreach (var v in values)
        {
            if (!float.IsFinite(v))
            {
                return false;
            }
        }

        return true;
    }
}
