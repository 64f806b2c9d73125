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
    private readonly List<UserOwnedTensor> _values;

    private LoraOverlay(string key, Dictionary<string, SessionCustomization> components, List<UserOwnedTensor> values, List<string> warnings, List<AppliedLora> applied)
    {
        Key = key;
        _components = components;
        _values = values;
        Warnings = warnings;
        Applied = applied;
    }

    /// <summary>Identifies the adapter set: file hashes and weights, independent of the order adapters were given in.</summary>
    public string Key { get; }

    /// <summary>Unmatched-key notes for the result.</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>The adapters, for results and recipes.</summary>
    public IReadOnlyList<AppliedLora> Applied { get; }

    /// <summary>Whether no initializer changes (every weight 0).</summary>
    public bool IsEmpty => _components.Count == 0;

    /// <summary>The customization of <paramref name="component"/>'s sessions, or <see langword="null"/> when it is unchanged.</summary>
    public SessionCustomization? For(string component) => _components.GetValueOrDefault(component);

    /// <summary>The components whose weights change.</summary>
    public IEnumerable<string> Components => _components.Keys;

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
    /// <exception cref="ArgumentException">A file is unreadable, of an unsupported kind, or does not fit the model.</exception>
    public static LoraOverlay Build(LoraTargets targets, IReadOnlyList<LoraReference> loras, LoraFileCache files, ILogger logger)
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

        // Per initializer: its target and the (module, file, scale) contributions, in a fixed order.
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

        var perComponent = new Dictionary<string, List<KeyValuePair<string, OrtValue>>>(StringComparer.Ordinal);
        var convolutions = new HashSet<string>(StringComparer.Ordinal);
        var values = new List<UserOwnedTensor>();
        try
        {
            foreach (var ((component, name), (target, items)) in contributions)
            {
                var graph = targets.Index(component)!.Graph;
                var weight = graph.ReadAsSingle(target.Weight);
                foreach (var (module, file, scale) in items)
                {
                    var up = file.File.ReadAsSingle(module.Up);
                    var down = file.File.ReadAsSingle(module.Down);
                    LoraMath.AddDelta(weight, target.Layout, up, down, module.Rank, scale);
                }

                var value = ToOrtValue(target.Weight, weight);
                values.Add(value);
                var componentName = LoraFile.ComponentName(component);
                if (!perComponent.TryGetValue(componentName, out var list))
                {
                    perComponent[componentName] = list = [];
                }

                list.Add(new KeyValuePair<string, OrtValue>(name, value.Value));
                if (target.Layout == WeightLayout.Convolution)
                {
                    convolutions.Add(componentName);
                }
            }
        }
        catch
        {
            foreach (var v in values)
            {
                v.Dispose();
            }

            throw;
        }

        var components = perComponent.ToDictionary(p => p.Key, p => new SessionCustomization(p.Value, disablePrepacking: false)
        {
            CapAtExtendedOptimization = convolutions.Contains(p.Key),
        }, StringComparer.Ordinal);
        return new LoraOverlay(KeyOf(loras, files), components, values, warnings, applied);
    }

    public void Dispose()
    {
        foreach (var value in _values)
        {
            value.Dispose();
        }

        _values.Clear();
    }

    /// <summary>A user-owned tensor of the initializer's own type holding <paramref name="weight"/> (rounded once for 16-bit types).</summary>
    private static UserOwnedTensor ToOrtValue(OnnxInitializer initializer, float[] weight)
    {
        var type = initializer.ElementType switch
        {
            OnnxDataType.Float => TensorElementType.Float,
            OnnxDataType.Float16 => TensorElementType.Float16,
            OnnxDataType.BFloat16 => TensorElementType.BFloat16,
            _ => throw new InvalidOperationException($"Initializer '{initializer.Name}' of ONNX type {initializer.DataType} cannot be adapted."),
        };
        var tensor = new UserOwnedTensor(type, initializer.Dimensions);
        switch (type)
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

        return tensor;
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
        var info = new FileInfo(full);
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
