using Microsoft.ML.OnnxRuntime;

namespace Sdxl.Net.Runtime;

/// <summary>
/// Changes to a model's session beyond the provider settings: the "weights overlay" seam. LoRA adapters and
/// textual-inversion embeddings replace initializers of the graph with tensors the owner computed, without rewriting
/// the model file.
/// </summary>
/// <remarks>
/// ONNX Runtime uses the memory of an added initializer in place (on the CPU, without a copy), so the owner keeps every
/// <see cref="OrtValue"/> alive for as long as any session created with this customization exists, and disposes them
/// afterwards. The same customization is applied again when a session is reopened (<see cref="MemoryMode.LoadPerPhase"/>).
/// </remarks>
internal sealed class SessionCustomization
{
    /// <summary>No change.</summary>
    public static readonly SessionCustomization None = new([], disablePrepacking: false);

    /// <param name="initializerOverrides">Initializers replaced by name; each name must be an initializer of the graph.</param>
    /// <param name="disablePrepacking">
    /// Whether ONNX Runtime may pre-pack weights into its own layout at session creation. Off (<see langword="true"/>)
    /// when the owner updates an overridden initializer's memory in place between runs, which pre-packed copies would
    /// not see.
    /// </param>
    public SessionCustomization(IReadOnlyList<KeyValuePair<string, OrtValue>> initializerOverrides, bool disablePrepacking)
    {
        InitializerOverrides = initializerOverrides;
        DisablePrepacking = disablePrepacking;
    }

    /// <summary>Initializers replaced by name.</summary>
    public IReadOnlyList<KeyValuePair<string, OrtValue>> InitializerOverrides { get; }

    /// <summary>Whether weight pre-packing is disabled.</summary>
    public bool DisablePrepacking { get; }

    /// <summary>
    /// Caps graph optimization at <see cref="GraphOptimizationLevel.ORT_ENABLE_EXTENDED"/>. ONNX Runtime's layout
    /// optimizations (level ALL: the CPU's NCHWc convolution kernels) reorder Conv weights from the model's original
    /// initializer and ignore an override of it (measured: an overridden Conv weight left the output unchanged), so a
    /// customization that overrides Conv weights sets this.
    /// </summary>
    public bool CapAtExtendedOptimization { get; init; }

    /// <summary>Whether this changes nothing.</summary>
    public bool IsEmpty => InitializerOverrides.Count == 0 && !DisablePrepacking && !CapAtExtendedOptimization;

    /// <summary>
    /// Both customizations at once (e.g. textual-inversion rows and LoRA deltas on one text encoder); <see langword="null"/>
    /// when both are.
    /// </summary>
    /// <exception cref="InvalidOperationException">Both replace the same initializer.</exception>
    public static SessionCustomization? Combine(SessionCustomization? first, SessionCustomization? second)
    {
        if (first is null || second is null)
        {
            return first ?? second;
        }

        var overrides = new List<KeyValuePair<string, OrtValue>>(first.InitializerOverrides);
        foreach (var o in second.InitializerOverrides)
        {
            if (overrides.Exists(p => p.Key == o.Key))
            {
                throw new InvalidOperationException($"Two weights overlays replace initializer '{o.Key}'.");
            }

            overrides.Add(o);
        }

        return new SessionCustomization(overrides, first.DisablePrepacking || second.DisablePrepacking)
        {
            CapAtExtendedOptimization = first.CapAtExtendedOptimization || second.CapAtExtendedOptimization,
        };
    }

    /// <summary>
    /// Applies the customization to options about to create a session. <see cref="DisablePrepacking"/> is not applied
    /// here: <see cref="SessionFactory"/> combines it with the provider options' own setting and sets the key once.
    /// </summary>
    internal void ApplyTo(SessionOptions options)
    {
        if (CapAtExtendedOptimization && options.GraphOptimizationLevel > GraphOptimizationLevel.ORT_ENABLE_EXTENDED)
        {
            options.GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_EXTENDED;
        }

        foreach (var (name, value) in InitializerOverrides)
        {
            options.AddInitializer(name, value);
        }
    }
}
