using System.Globalization;
using System.Numerics.Tensors;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Sdxl.Net.Runtime;

namespace Sdxl.Net.Lora;

/// <summary>
/// The merged weights of a set of LoRA adapters for one model folder: per component, the initializers that change
/// (<c>W + Σ weight · alpha/rank · up · down</c>, merged in float32 and rounded once to the initializer's type), as
/// ONNX Runtime values that sessions are created with (the weights overlay seam). Owns those values.
/// </summary>
internal sealed class LoraOverlay : IDisposable
{
    private readonly Dictionary<string, SessionCustomization> _components;
    private readonly Dictionary<(LoraComponent Component, string Name), (LoraTarget Target, UserOwnedTensor Tensor)> _tensors;
    private readonly bool _hasConvolutions;

    private LoraOverlay(MergePlan plan, Dictionary<string, SessionCustomization> components,
        Dictionary<(LoraComponent, string), (LoraTarget, UserOwnedTensor)> tensors, bool hasConvolutions)
    {
        Key = plan.Key;
        Warnings = plan.Warnings;
        Applied = plan.Applied;
        _components = components;
        _tensors = tensors;
        _hasConvolutions = hasConvolutions;
    }

    /// <summary>Identifies the adapter set: file hashes and weights, independent of the order adapters were given in.</summary>
    public string Key { get; private set; }

    /// <summary>Unmatched-key notes for the result.</summary>
    public IReadOnlyList<string> Warnings { get; private set; }

    /// <summary>The adapters, for results and recipes.</summary>
    public IReadOnlyList<AppliedLora> Applied { get; private set; }

    /// <summary>Whether no initializer changes (every weight 0).</summary>
    public bool IsEmpty => _components.Count == 0;

    /// <summary>The customization of <paramref name="component"/>'s sessions, or <see langword="null"/> when it is unchanged.</summary>
    public SessionCustomization? For(string component) => _components.GetValueOrDefault(component);

    /// <summary>The key an adapter set has, without merging anything (for cache lookups).</summary>
    public static string KeyOf(IReadOnlyList<LoraReference> loras, LoraFileCache files)
    {
        var parts = new List<string>(loras.Count);
        foreach (var lora in loras)
        {
            var (_, sha) = files.Get(lora.Path);
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"{sha}:{lora.Weight:R}:{lora.EffectiveTextEncoderWeight:R}"));
        }

        // Adapters sum, so the set is what matters, not the order given (merging in this order also makes two orders
        // give bit-identical weights).
        parts.Sort(StringComparer.Ordinal);
        return string.Join('|', parts);
    }

    /// <summary>Reads, matches, checks and merges <paramref name="loras"/> onto the model of <paramref name="targets"/>.</summary>
    /// <param name="targets">The model's adaptable modules.</param>
    /// <param name="loras">The adapters.</param>
    /// <param name="files">Parsed adapter files.</param>
    /// <param name="logger">Receives unmatched key names.</param>
    /// <param name="updatableInPlace">
    /// Create sessions that read the merged buffers at run time (pre-packing off), so <see cref="TryRewrite"/> can later
    /// switch them to another adapter set without a new session (CPU only).
    /// </param>
    /// <exception cref="ArgumentException">A file is unreadable, of an unsupported kind, or does not fit the model.</exception>
    public static LoraOverlay Build(LoraTargets targets, IReadOnlyList<LoraReference> loras, LoraFileCache files, ILogger logger, bool updatableInPlace = false)
    {
        var plan = Plan(targets, loras, files, logger);
        var tensors = new Dictionary<(LoraComponent, string), (LoraTarget, UserOwnedTensor)>();
        try
        {
            foreach (var ((component, name), (target, items)) in plan.Contributions)
            {
                var tensor = CreateTensor(target.Weight);
                tensors[(component, name)] = (target, tensor);
                WriteMerged(targets, component, target, items, tensor);
            }
        }
        catch
        {
            foreach (var (_, tensor) in tensors.Values)
            {
                tensor.Dispose();
            }

            throw;
        }

        var components = new Dictionary<string, SessionCustomization>(StringComparer.Ordinal);
        bool convolutions = false;
        foreach (var group in tensors.GroupBy(t => t.Key.Item1))
        {
            bool conv = group.Any(t => t.Value.Item1.Layout == WeightLayout.Convolution);
            convolutions |= conv;
            var overrides = group.Select(t => new KeyValuePair<string, OrtValue>(t.Key.Item2, t.Value.Item2.Value)).ToList();
            components[LoraFile.ComponentName(group.Key)] = new SessionCustomization(overrides, disablePrepacking: updatableInPlace)
            {
                CapAtExtendedOptimization = conv,
            };
        }

        return new LoraOverlay(plan, components, tensors, convolutions);
    }

    /// <summary>
    /// Rewrites this overlay's buffers, in place, to the merged weights of another adapter set — for sessions created with
    /// <c>updatableInPlace</c> that no run is using. Possible when the new set adapts only initializers this overlay
    /// already holds and no convolution (graph optimizations may have copied Conv weights); the others return to base.
    /// </summary>
    /// <returns>Whether the buffers now hold the new set (false: nothing was changed).</returns>
    public bool TryRewrite(LoraTargets targets, IReadOnlyList<LoraReference> loras, LoraFileCache files, ILogger logger)
    {
        if (_hasConvolutions)
        {
            return false;
        }

        var plan = Plan(targets, loras, files, logger);
        foreach (var (key, (target, _)) in plan.Contributions)
        {
            if (!_tensors.ContainsKey(key) || target.Layout == WeightLayout.Convolution)
            {
                return false;
            }
        }

        foreach (var ((component, name), (target, tensor)) in _tensors)
        {
            var items = plan.Contributions.TryGetValue((component, name), out var c) ? c.Items : [];
            WriteMerged(targets, component, target, items, tensor);
        }

        Key = plan.Key;
        Warnings = plan.Warnings;
        Applied = plan.Applied;
        return true;
    }

    public void Dispose()
    {
        foreach (var (_, tensor) in _tensors.Values)
        {
            tensor.Dispose();
        }

        _tensors.Clear();
    }

    /// <summary>What a set of adapters changes: per initializer, its target and the (module, file, scale) terms, in a fixed order.</summary>
    private sealed record MergePlan(
        string Key,
        Dictionary<(LoraComponent, string), (LoraTarget Target, List<(LoraModule Module, LoraFile File, float Scale)> Items)> Contributions,
        List<string> Warnings,
        List<AppliedLora> Applied);

    private static MergePlan Plan(LoraTargets targets, IReadOnlyList<LoraReference> loras, LoraFileCache files, ILogger logger)
    {
        var warnings = new List<string>();
        var applied = new List<AppliedLora>();
        var ordered = new List<(LoraReference Reference, LoraFile File, string Sha)>();
        foreach (var lora in loras)
        {
            var (file, sha) = files.Get(lora.Path);
            ordered.Add((lora, file, sha));
        }

        ordered.Sort((a, b) =>
        {
            int c = string.CompareOrdinal(a.Sha, b.Sha);
            return c != 0 ? c : a.Reference.Weight.CompareTo(b.Reference.Weight);
        });

        var contributions = new Dictionary<(LoraComponent, string), (LoraTarget Target, List<(LoraModule Module, LoraFile File, float Scale)> Items)>();
        foreach (var (reference, file, sha) in ordered)
        {
            var match = targets.Match(file);
            targets.Validate(match);
            applied.Add(new AppliedLora(Path.GetFileName(file.Path), sha, reference.Weight, reference.EffectiveTextEncoderWeight));
            if (match.UnmatchedCount > 0)
            {
                warnings.Add(string.Create(CultureInfo.InvariantCulture,
                    $"LoRA '{Path.GetFileName(file.Path)}': {match.UnmatchedCount} of {file.Modules.Count + file.UnrecognisedKeys.Count} modules/keys match nothing in the model and were ignored."));
                logger.LogDebug("LoRA {File}: unmatched {Keys}", file.Path,
                    string.Join(", ", match.Unmatched.Select(m => m.DisplayName).Concat(file.UnrecognisedKeys)));
            }

            foreach (var (module, target) in match.Matched)
            {
                double weight = module.Component == LoraComponent.Unet ? reference.Weight : reference.EffectiveTextEncoderWeight;
                if (weight == 0)
                {
                    continue; // weight 0 leaves the weight untouched, so the image is exactly the base model's
                }

                var key = (module.Component, target.Weight.Name);
                if (!contributions.TryGetValue(key, out var entry))
                {
                    contributions[key] = entry = (target, []);
                }

                entry.Items.Add((module, file, (float)weight * module.AlphaScale));
            }
        }

        return new MergePlan(KeyOf(loras, files), contributions, warnings, applied);
    }

    /// <summary>Writes base + Σ terms (float32, rounded once to the tensor's type) into <paramref name="tensor"/>.</summary>
    private static void WriteMerged(LoraTargets targets, LoraComponent component, LoraTarget target,
        List<(LoraModule Module, LoraFile File, float Scale)> items, UserOwnedTensor tensor)
    {
        var weight = targets.Index(component)!.Graph.ReadAsSingle(target.Weight);
        foreach (var (module, file, scale) in items)
        {
            var up = file.File.ReadAsSingle(module.Up);
            var down = file.File.ReadAsSingle(module.Down);
            LoraMath.AddDelta(weight, target.Layout, up, down, module.Rank, scale);
        }

        Store(weight, tensor);
    }

    private static UserOwnedTensor CreateTensor(OnnxInitializer initializer)
    {
        var type = initializer.ElementType switch
        {
            OnnxDataType.Float => TensorElementType.Float,
            OnnxDataType.Float16 => TensorElementType.Float16,
            OnnxDataType.BFloat16 => TensorElementType.BFloat16,
            _ => throw new InvalidOperationException($"Initializer '{initializer.Name}' of ONNX type {initializer.DataType} cannot be adapted."),
        };
        return new UserOwnedTensor(type, initializer.Dimensions);
    }

    /// <summary>Stores float32 <paramref name="weight"/> in the tensor's own type (rounded once for 16-bit types).</summary>
    private static void Store(float[] weight, UserOwnedTensor tensor)
    {
        switch (tensor.ElementType)
        {
            case TensorElementType.Float:
                weight.CopyTo(tensor.AsSpan<float>());
                break;
            case TensorElementType.Float16:
                TensorPrimitives.ConvertToHalf(weight, tensor.AsSpan<Half>());
                break;
            default:
                var destination = tensor.AsSpan<ushort>();
                for (int i = 0; i < weight.Length; i++)
                {
                    // Round to nearest even on the upper 16 bits.
                    uint bits = BitConverter.SingleToUInt32Bits(weight[i]);
                    destination[i] = (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
                }

                break;
        }
    }
}

/// <summary>Parsed LoRA files and their SHA-256, cached by path, size and modification time.</summary>
internal sealed class LoraFileCache
{
    private readonly object _gate = new();
    private readonly Dictionary<string, (long Length, DateTime Modified, LoraFile File, string Sha)> _files = new(StringComparer.Ordinal);

    /// <summary>The parsed file and its hash.</summary>
    /// <exception cref="ArgumentException">The file is missing, malformed or of an unsupported adapter kind.</exception>
    public (LoraFile File, string Sha256) Get(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = Path.GetFullPath(path);
        var info = FileAccessCheck.ResolveOrSelf(full);   // a cached file is recognised by its target's length and time
        if (!info.Exists)
        {
            throw new ArgumentException($"LoRA file not found: '{path}'.", nameof(GenerationRequest.Loras));
        }

        lock (_gate)
        {
            if (_files.TryGetValue(full, out var cached) && cached.Length == info.Length && cached.Modified == info.LastWriteTimeUtc)
            {
                return (cached.File, cached.Sha);
            }

            LoraFile file;
            try
            {
                file = LoraFile.Open(full);
            }
            catch (InvalidDataException e)
            {
                throw new ArgumentException(e.Message, nameof(GenerationRequest.Loras), e);
            }

            var sha = Sha256Of(full);
            _files[full] = (info.Length, info.LastWriteTimeUtc, file, sha);
            return (file, sha);
        }
    }

    /// <summary>The lowercase hex SHA-256 of a file.</summary>
    public static string Sha256Of(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}
