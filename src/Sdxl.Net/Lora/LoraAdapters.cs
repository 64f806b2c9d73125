using Microsoft.Extensions.Logging;
using Sdxl.Net.Models;
using Sdxl.Net.Runtime;

namespace Sdxl.Net.Lora;

/// <summary>
/// A pipeline's LoRA support: the builder's fixed adapters, merged into the base sessions when the folder is opened,
/// and the per-request adapter sets served from a <see cref="LoraSessionCache"/>.
/// </summary>
internal sealed class LoraAdapters : IDisposable
{
    private readonly IReadOnlyList<LoraReference> _fixed;
    private readonly LoraTargets _targets;
    private readonly LoraFileCache _files = new();
    private readonly ILogger _logger;
    private readonly LoraOverlay? _fixedOverlay;
    private LoraSessionCache? _cache;

    /// <summary>Reads, checks and merges the fixed adapters of <paramref name="modelDirectory"/>.</summary>
    /// <exception cref="ArgumentException">A fixed adapter is unreadable or does not fit the model.</exception>
    public LoraAdapters(string modelDirectory, IReadOnlyList<LoraReference> fixedLoras, ILogger logger)
    {
        _fixed = fixedLoras;
        _targets = new LoraTargets(modelDirectory);
        _logger = logger;
        if (fixedLoras.Count > 0)
        {
            CheckReferences(fixedLoras);
            _fixedOverlay = LoraOverlay.Build(_targets, fixedLoras, _files, logger);
        }
    }

    /// <summary>The weights overlay of the base folder's sessions (the fixed adapters), or <see langword="null"/>.</summary>
    public Func<string, SessionCustomization?>? Customize =>
        _fixedOverlay is { IsEmpty: false } overlay ? component => overlay.For(component) : null;

    /// <summary>Starts serving per-request sets on top of the opened base folder.</summary>
    public void Attach(SdxlModelFolder model, ExecutionProviderOptions options) =>
        _cache = new LoraSessionCache(model, options, _fixed, _targets, _files, _logger);

    /// <summary>The models one generation runs with: the base folder, or a cached adapted view while the run lasts.</summary>
    /// <exception cref="ArgumentException">A request adapter is invalid, unreadable or does not fit the model.</exception>
    public LoraRun Begin(GenerationRequest request, SdxlModelFolder baseModel)
    {
        if (request.Loras is not { Count: > 0 } loras)
        {
            return new LoraRun(baseModel, null, _fixedOverlay?.Warnings ?? [], _fixedOverlay?.Applied ?? []);
        }

        CheckReferences(loras);
        var lease = _cache!.Acquire(loras);
        return new LoraRun(lease.Model, lease, lease.Warnings, lease.Applied);
    }

    public void Dispose()
    {
        // The base sessions use the fixed overlay's memory: the pipeline disposes its folder before this.
        _cache?.Dispose();
        _fixedOverlay?.Dispose();
    }

    private static void CheckReferences(IReadOnlyList<LoraReference> loras)
    {
        foreach (var lora in loras)
        {
            if (lora is null || string.IsNullOrWhiteSpace(lora.Path))
            {
                throw new ArgumentException("A LoRA reference has no file path.", nameof(GenerationRequest.Loras));
            }

            if (!double.IsFinite(lora.Weight) || lora.TextEncoderWeight is { } te && !double.IsFinite(te))
            {
                throw new ArgumentException($"LoRA '{lora.Path}': weights must be finite numbers; got {lora.Weight} / {lora.TextEncoderWeight}.", nameof(GenerationRequest.Loras));
            }
        }
    }
}

/// <summary>The models of one generation and the adapters applied to them; disposing releases a cached set.</summary>
/// <param name="Model">The folder to run.</param>
/// <param name="Lease">The cache lease, when the request has its own adapters.</param>
/// <param name="Warnings">Unmatched-key notes.</param>
/// <param name="Applied">The adapters applied.</param>
internal sealed record LoraRun(SdxlModelFolder Model, IDisposable? Lease, IReadOnlyList<string> Warnings, IReadOnlyList<AppliedLora> Applied) : IDisposable
{
    public void Dispose() => Lease?.Dispose();
}
