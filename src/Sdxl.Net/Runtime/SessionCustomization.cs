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

    /// <summary>Whether this changes nothing.</summary>
    public bool IsEmpty => InitializerOverrides.Count == 0 && !DisablePrepacking;

    /// <summary>Applies the customization to options about to create a session.</summary>
    internal void ApplyTo(SessionOptions options)
    {
        if (DisablePrepacking)
        {
            options.AddSessionConfigEntry("session.disable_prepacking", "1");
        }

        foreach (var (name, value) in InitializerOverrides)
        {
            options.AddInitializer(name, value);
        }
    }
}
