using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Sdxl.Net.Runtime;

namespace Sdxl.Net.Models;

/// <summary>
/// A CLIP text encoder exported by optimum (<c>input_ids</c> → <c>last_hidden_state</c>, <c>hidden_states.0..L</c>,
/// and <c>pooler_output</c> or, with projection, <c>text_embeds</c>).
/// </summary>
internal sealed class TextEncoderModel : IDisposable
{
    private readonly OnnxModel _model;
    private readonly TensorSpec _ids;
    private readonly string[] _outputNames;

    public TextEncoderModel(string component, string path, ExecutionProviderOptions options, bool requirePooled, SessionResidency? residency = null,
        SessionCustomization? customization = null)
    {
        _model = new OnnxModel(component, path, options, residency, customization);
        try
        {
            _ids = _model.RequireInput("input_ids", TensorElementType.Int64, TensorElementType.Int32);
            if (_ids.Rank != 2)
            {
                throw new SdxlModelException($"{component}: input 'input_ids' must have rank 2 [batch, sequence]; found {_ids}. File: '{path}'.");
            }

            // diffusers takes hidden_states[-2]: the output of the last-but-one layer. optimum exports every layer's
            // state as hidden_states.0 (embeddings) .. hidden_states.L, so the penultimate one is hidden_states.{L-1}.
            int layers = -1;
            foreach (var name in _model.Outputs.Keys)
            {
                if (name.StartsWith("hidden_states.", StringComparison.Ordinal)
                    && int.TryParse(name.AsSpan("hidden_states.".Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var k))
                {
                    layers = Math.Max(layers, k);
                }
            }

            if (layers < 1)
            {
                throw new SdxlModelException(
                    $"{component}: the model exports no per-layer outputs 'hidden_states.N'; SDXL needs the penultimate layer's state. "
                    + $"Export with optimum (`optimum-cli export onnx --task stable-diffusion-xl`), which adds them. Found {_model.Signature}. File: '{path}'.");
            }

            Layers = layers;
            var hidden = _model.RequireOutput($"hidden_states.{layers - 1}", TensorElementType.Float, TensorElementType.Float16);
            HiddenSize = hidden.Rank == 3 ? hidden.Dimensions[2] : -1;
            if (requirePooled)
            {
                var pooled = _model.RequireOutput("text_embeds", TensorElementType.Float, TensorElementType.Float16);
                PooledSize = pooled.Rank == 2 ? pooled.Dimensions[1] : -1;
            }

            _outputNames = requirePooled ? [$"hidden_states.{layers - 1}", "text_embeds"] : [$"hidden_states.{layers - 1}"];
        }
        catch
        {
            _model.Dispose();
            throw;
        }
    }

    public string Component => _model.Component;

    /// <summary>The number of transformer layers (the highest hidden_states index).</summary>
    public int Layers { get; }

    /// <summary>The width of the hidden states, or -1 when the model leaves it dynamic.</summary>
    public int HiddenSize { get; }

    /// <summary>The width of <c>text_embeds</c>, or -1 when dynamic or absent.</summary>
    public int PooledSize { get; }

    public string Signature => _model.Signature;

    /// <summary>Whether the session is open (see <see cref="MemoryMode.LoadPerPhase"/>).</summary>
    public bool IsLoaded => _model.IsLoaded;

    public TensorElementType FloatType => _model.Outputs[_outputNames[0]].ElementType;

    /// <summary>Encodes <paramref name="batch"/> rows of <paramref name="sequenceLength"/> ids.</summary>
    /// <returns>The penultimate hidden states [batch, seq, hidden] and, when requested, the pooled projection [batch, P].</returns>
    /// <param name="ids">The token ids, row-major.</param>
    /// <param name="batch">Rows.</param>
    /// <param name="sequenceLength">Ids per row.</param>
    /// <param name="runOptions">ONNX run options.</param>
    /// <param name="clipSkip">
    /// diffusers' <c>clip_skip</c> for SDXL: the state of <c>hidden_states[-(clipSkip + 2)]</c>; 0 is the default
    /// penultimate layer.
    /// </param>
    public (float[] Hidden, int HiddenSize, float[]? Pooled) Encode(ReadOnlySpan<int> ids, int batch, int sequenceLength, RunOptions? runOptions, int clipSkip = 0)
    {
        var outputNames = clipSkip == 0 ? _outputNames : OutputNamesForClipSkip(clipSkip);
        using var input = OnnxModel.CreateIds(_ids, ids, [batch, sequenceLength]);
        using var outputs = _model.Run(["input_ids"], [input], outputNames, runOptions);
        var hiddenValue = outputs.First();
        var shape = OnnxModel.ShapeOf(hiddenValue);
        var hidden = OnnxModel.ReadFloat(hiddenValue);
        float[]? pooled = _outputNames.Length > 1 ? OnnxModel.ReadFloat(outputs.ElementAt(1)) : null;
        return (hidden, (int)shape[^1], pooled);
    }

    /// <summary>Whether the export outputs <c>last_hidden_state</c> (the final layer after the final layer norm).</summary>
    public bool HasLastHiddenState => _model.Outputs.ContainsKey("last_hidden_state");

    /// <summary>The final layer's states [batch, seq, hidden] (after the final layer norm), which the pooled projection reads.</summary>
    public float[] EncodeLastHiddenState(ReadOnlySpan<int> ids, int batch, int sequenceLength, RunOptions? runOptions)
    {
        using var input = OnnxModel.CreateIds(_ids, ids, [batch, sequenceLength]);
        using var outputs = _model.Run(["input_ids"], [input], ["last_hidden_state"], runOptions);
        return OnnxModel.ReadFloat(outputs.First());
    }

    /// <summary>Fails unless <paramref name="clipSkip"/> names a layer this export outputs.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The encoder has too few layers, or the export lacks that layer's output.</exception>
    public void CheckClipSkip(int clipSkip) => OutputNamesForClipSkip(clipSkip);

    // hidden_states has L + 1 entries (0 = token embeddings); hidden_states[-(k + 2)] is hidden_states.{L - 1 - k}.
    private string[] OutputNamesForClipSkip(int clipSkip)
    {
        int index = Layers - 1 - clipSkip;
        if (clipSkip < 0 || index < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(clipSkip), clipSkip,
                $"ClipSkip {clipSkip} is out of range for {Component}, which has {Layers} layers: ClipSkip must be from 0 to {Layers - 1} (hidden_states[-(ClipSkip + 2)]).");
        }

        var name = $"hidden_states.{index}";
        if (!_model.Outputs.ContainsKey(name))
        {
            throw new ArgumentOutOfRangeException(nameof(clipSkip), clipSkip,
                $"ClipSkip {clipSkip} needs {Component}'s output '{name}', which this export does not have (it has {_model.Signature}). "
                + "Re-export with optimum, which outputs every hidden_states.N.");
        }

        return _outputNames.Length > 1 ? [name, _outputNames[1]] : [name];
    }

    public void Dispose() => _model.Dispose();
}
