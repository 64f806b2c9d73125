namespace Sdxl.Net.Runtime;

/// <summary>
/// Keeps at most one phase's sessions resident (<see cref="MemoryMode.LoadPerPhase"/>): acquiring a session of one
/// phase releases the idle sessions of every other phase. A session in use (leased) is never released.
/// </summary>
internal sealed class SessionResidency
{
    private readonly object _gate = new();
    private readonly List<OnnxModel> _models = [];

    /// <summary>The phase a component belongs to: both text encoders run together; every other model is its own phase.</summary>
    public static string PhaseOf(string component) =>
        component is "text_encoder" or "text_encoder_2" ? "prompt" : component;

    internal object Gate => _gate;

    internal void Register(OnnxModel model)
    {
        lock (_gate)
        {
            _models.Add(model);
        }
    }

    /// <summary>Called under <see cref="Gate"/> before <paramref name="model"/> creates its session.</summary>
    internal void ReleaseOtherPhases(OnnxModel model)
    {
        var phase = PhaseOf(model.Component);
        foreach (var other in _models)
        {
            if (!ReferenceEquals(other, model) && PhaseOf(other.Component) != phase)
            {
                other.ReleaseIfIdle();
            }
        }
    }
}
