using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Sdxl.Net.Models;
using Sdxl.Net.Runtime;

namespace Sdxl.Net.Lora;

/// <summary>
/// Sessions of the UNet and text encoders with a request's LoRA set merged in, keyed by the set (file hashes and
/// weights) and reference-counted: requests with the same set share one set of sessions, requests with different sets
/// never see each other's weights, and idle sets beyond <see cref="IdleCapacity"/> are released (least recently used
/// first). A new set gets sessions created with the merged initializers added to their options; on the CPU an idle
/// set's sessions are switched instead by rewriting those initializers in place when the new set adapts the same
/// weights (the fastest correct mechanism measured, docs/lora.md).
/// </summary>
internal sealed class LoraSessionCache : IDisposable
{
    /// <summary>How many unused adapter sets stay loaded (each holds its own UNet session).</summary>
    public const int IdleCapacity = 1;

    private readonly SdxlModelFolder _model;
    private readonly ExecutionProviderOptions _options;
    private readonly IReadOnlyList<LoraReference> _fixed;
    private readonly LoraTargets _targets;
    private readonly LoraFileCache _files;
    private readonly ILogger _logger;
    private readonly object _gate = new();
    private readonly object _buildGate = new();
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private long _clock;
    private bool _disposed;

    /// <param name="model">The base folder (opened with <paramref name="fixedLoras"/> already merged).</param>
    /// <param name="options">The execution provider of the adapted sessions.</param>
    /// <param name="fixedLoras">The pipeline's own adapters, merged into every set.</param>
    /// <param name="targets">The folder's adaptable modules.</param>
    /// <param name="files">Parsed adapter files.</param>
    /// <param name="logger">Receives load timings and unmatched key names.</param>
    public LoraSessionCache(SdxlModelFolder model, ExecutionProviderOptions options, IReadOnlyList<LoraReference> fixedLoras,
        LoraTargets targets, LoraFileCache files, ILogger logger)
    {
        _model = model;
        _options = options;
        _fixed = fixedLoras;
        _targets = targets;
        _files = files;
        _logger = logger;
    }

    /// <summary>The model folder to run <paramref name="requestLoras"/> with, held until the lease is disposed.</summary>
    /// <exception cref="ArgumentException">An adapter file is unreadable or does not fit the model.</exception>
    public Lease Acquire(IReadOnlyList<LoraReference> requestLoras)
    {
        var all = new List<LoraReference>(_fixed.Count + requestLoras.Count);
        all.AddRange(_fixed);
        all.AddRange(requestLoras);
        var key = LoraOverlay.KeyOf(all, _files);
        lock (_buildGate)
        {
            lock (_gate)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (_entries.TryGetValue(key, out var cached))
                {
                    cached.References++;
                    cached.LastUsed = ++_clock;
                    return new Lease(this, cached);
                }
            }

            if (TryRecycle(key, all) is { } recycled)
            {
                return recycled;
            }

            var entry = Build(key, all);
            lock (_gate)
            {
                if (_disposed)
                {
                    entry.Dispose();
                    throw new ObjectDisposedException(nameof(LoraSessionCache));
                }

                entry.References = 1;
                entry.LastUsed = ++_clock;
                _entries[key] = entry;
                return new Lease(this, entry);
            }
        }
    }

    /// <summary>The number of adapter sets loaded now (in use or idle).</summary>
    public int LoadedSets
    {
        get
        {
            lock (_gate)
            {
                return _entries.Count;
            }
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            foreach (var entry in _entries.Values)
            {
                entry.Dispose();
            }

            _entries.Clear();
        }
    }

    /// <summary>
    /// On the CPU, switches an idle set's sessions to <paramref name="loras"/> by rewriting their merged weights in place
    /// (measured about 8× faster than new sessions, docs/lora.md); <see langword="null"/> when no idle set can take it.
    /// Called under the build gate: the entry leaves the table while its buffers change, so no run can use it.
    /// </summary>
    private Lease? TryRecycle(string key, List<LoraReference> loras)
    {
        if (_options.Kind != ExecutionProviderKind.Cpu)
        {
            return null;
        }

        Entry? idle;
        lock (_gate)
        {
            idle = _entries.Values.Where(e => e.References == 0).OrderBy(e => e.LastUsed).FirstOrDefault();
            if (idle is null)
            {
                return null;
            }

            _entries.Remove(idle.Key);
        }

        bool rewritten;
        var watch = Stopwatch.StartNew();
        try
        {
            rewritten = idle.Overlay.TryRewrite(_targets, loras, _files, _logger);
        }
        catch
        {
            lock (_gate)
            {
                _entries[idle.Key] = idle; // TryRewrite fails before writing anything (while planning)
            }

            throw;
        }

        lock (_gate)
        {
            if (!rewritten)
            {
                _entries[idle.Key] = idle;
                return null;
            }

            var entry = new Entry(key, idle.Model, idle.Overlay, idle.Owned) { References = 1, LastUsed = ++_clock };
            _entries[key] = entry;
            _logger.LogInformation("LoRA set switched in place in {Elapsed} ms: {Adapters}", watch.ElapsedMilliseconds,
                string.Join(", ", entry.Overlay.Applied.Select(a => $"{a.Name}:{a.Weight}")));
            return new Lease(this, entry);
        }
    }

    private Entry Build(string key, List<LoraReference> loras)
    {
        var watch = Stopwatch.StartNew();
        var overlay = LoraOverlay.Build(_targets, loras, _files, _logger, updatableInPlace: _options.Kind == ExecutionProviderKind.Cpu);
        var owned = new List<IDisposable>();
        try
        {
            TextEncoderModel? te1 = null, te2 = null;
            UNetModel? unet = null;
            // The text encoders keep the pipeline's textual-inversion rows (an overlay of their own) beside the deltas.
            if (overlay.For("text_encoder") is { } c1 && _model.TextEncoder is not null)
            {
                te1 = Track(owned, new TextEncoderModel("text_encoder", _targets.ModelFile(LoraComponent.TextEncoder), _options, requirePooled: false,
                    customization: SessionCustomization.Combine(_model.Embeddings?.Customize("text_encoder"), c1)));
            }

            if (overlay.For("text_encoder_2") is { } c2)
            {
                te2 = Track(owned, new TextEncoderModel("text_encoder_2", _targets.ModelFile(LoraComponent.TextEncoder2), _options, requirePooled: true,
                    customization: SessionCustomization.Combine(_model.Embeddings?.Customize("text_encoder_2"), c2)));
            }

            if (overlay.For("unet") is { } cu)
            {
                unet = Track(owned, new UNetModel(_targets.ModelFile(LoraComponent.Unet), _options, customization: cu));
            }

            _logger.LogInformation("LoRA set loaded in {Elapsed} ms: {Adapters}", watch.ElapsedMilliseconds,
                string.Join(", ", overlay.Applied.Select(a => $"{a.Name}:{a.Weight}")));
            return new Entry(key, _model.WithComponents(te1, te2, unet), overlay, owned);
        }
        catch
        {
            foreach (var o in owned)
            {
                o.Dispose();
            }

            overlay.Dispose();
            throw;
        }
    }

    private static T Track<T>(List<IDisposable> owned, T item) where T : IDisposable
    {
        owned.Add(item);
        return item;
    }

    private void Release(Entry entry)
    {
        lock (_gate)
        {
            entry.References--;
            if (_disposed)
            {
                return;
            }

            // Keep at most IdleCapacity unused sets, dropping the least recently used.
            var idle = _entries.Values.Where(e => e.References == 0).OrderBy(e => e.LastUsed).ToList();
            for (int i = 0; i < idle.Count - IdleCapacity; i++)
            {
                _entries.Remove(idle[i].Key);
                idle[i].Dispose();
            }
        }
    }

    /// <summary>One adapter set's sessions and merged weights.</summary>
    internal sealed class Entry(string key, SdxlModelFolder model, LoraOverlay overlay, List<IDisposable> owned) : IDisposable
    {
        public List<IDisposable> Owned { get; } = owned;

        public string Key { get; } = key;

        public SdxlModelFolder Model { get; } = model;

        public LoraOverlay Overlay { get; } = overlay;

        public int References { get; set; }

        public long LastUsed { get; set; }

        public void Dispose()
        {
            // Sessions first: they use the overlay's memory.
            foreach (var o in Owned)
            {
                o.Dispose();
            }

            Overlay.Dispose();
        }
    }

    /// <summary>The right to run with one adapter set until disposed.</summary>
    internal sealed class Lease : IDisposable
    {
        private readonly LoraSessionCache _owner;
        private readonly Entry _entry;
        private bool _released;

        internal Lease(LoraSessionCache owner, Entry entry)
        {
            _owner = owner;
            _entry = entry;
        }

        /// <summary>The folder view whose text encoders and UNet carry the adapters.</summary>
        public SdxlModelFolder Model => _entry.Model;

        public IReadOnlyList<string> Warnings => _entry.Overlay.Warnings;

        public IReadOnlyList<AppliedLora> Applied => _entry.Overlay.Applied;

        public void Dispose()
        {
            if (!_released)
            {
                _released = true;
                _owner.Release(_entry);
            }
        }
    }
}
