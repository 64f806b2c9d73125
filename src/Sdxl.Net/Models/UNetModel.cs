using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Sdxl.Net.Denoising;
using Sdxl.Net.Runtime;

namespace Sdxl.Net.Models;

/// <summary>
/// The SDXL UNet (<c>sample</c>, <c>timestep</c>, <c>encoder_hidden_states</c>, <c>text_embeds</c>, <c>time_ids</c> →
/// <c>out_sample</c>), adapting to every exported timestep form: rank-0 float (optimum ≥ 1.24), float[1] (Olive) and
/// int64[1] (optimum &lt; 1.23), in float32 or float16.
/// </summary>
internal sealed class UNetModel : IDisposable
{
    private static readonly TensorElementType[] Floats = [TensorElementType.Float, TensorElementType.Float16];
    private readonly OnnxModel _model;
    private readonly TensorSpec _sample;
    private readonly TensorSpec _timestep;
    private readonly TensorSpec _hidden;
    private readonly TensorSpec _textEmbeds;
    private readonly TensorSpec _timeIds;
    private readonly string[] _inputNames = ["sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids"];
    private readonly string[] _outputNames;
    private readonly bool _cudaGraph;
    private readonly object _cacheGate = new();
    private readonly Dictionary<UNetShape, UNetBinding> _graphBindings = [];
    private readonly HashSet<UNetShape> _graphBindingsInUse = [];

    public UNetModel(string path, ExecutionProviderOptions options, SessionResidency? residency = null, SessionCustomization? customization = null)
    {
        _model = new OnnxModel("unet", path, options, residency, customization);
        try
        {
            _sample = _model.RequireInput("sample", Floats);
            _timestep = _model.RequireInput("timestep", TensorElementType.Float, TensorElementType.Float16, TensorElementType.Int64, TensorElementType.Int32, TensorElementType.Double);
            _hidden = _model.RequireInput("encoder_hidden_states", Floats);
            _textEmbeds = _model.RequireInput("text_embeds", Floats);
            _timeIds = _model.RequireInput("time_ids", Floats);
            CheckRank(_sample, 4);
            CheckRank(_hidden, 3);
            CheckRank(_textEmbeds, 2);
            CheckRank(_timeIds, 2);
            if (_timestep.Rank > 1)
            {
                throw Mismatch($"input 'timestep' must be a scalar or a vector; found {_timestep}");
            }

            // Inputs beyond the standard five (a guidance embedding, ControlNet residuals, ...) are supplied per run by
            // the features that understand them (Denoising/IUNetInputProvider); CreateBinding checks that every one is.
            var extra = new Dictionary<string, TensorSpec>(StringComparer.Ordinal);
            foreach (var (name, spec) in _model.Inputs)
            {
                if (Array.IndexOf(_inputNames, name) < 0)
                {
                    extra.Add(name, spec);
                }
            }

            ExtraInputs = extra;

            var output = _model.Outputs.ContainsKey("out_sample") ? "out_sample"
                : _model.Outputs.Count == 1 ? _model.Outputs.Keys.First()
                : throw Mismatch("no output 'out_sample'");
            _outputNames = [output];
            _cudaGraph = SessionFactory.UsesCudaGraph("unet", _model.Provider, options);
        }
        catch
        {
            _model.Dispose();
            throw;
        }
    }

    public string Signature => _model.Signature;

    /// <summary>The model's inputs beyond the standard five, by name (empty for a plain SDXL UNet).</summary>
    public IReadOnlyDictionary<string, TensorSpec> ExtraInputs { get; }

    /// <summary>The path of the model file (for error messages).</summary>
    public string ModelPath => _model.Path;

    /// <summary>Whether the session is open (see <see cref="MemoryMode.LoadPerPhase"/>).</summary>
    public bool IsLoaded => _model.IsLoaded;

    public TensorSpec SampleSpec => _sample;

    public TensorSpec TimestepSpec => _timestep;

    public TensorSpec HiddenSpec => _hidden;

    public TensorSpec TextEmbedsSpec => _textEmbeds;

    public TensorSpec TimeIdsSpec => _timeIds;

    public string OutputName => _outputNames[0];

    public TensorSpec OutputSpec => _model.Outputs[_outputNames[0]];

    /// <summary>Whether the UNet session runs on a GPU provider with CUDA graph capture.</summary>
    public bool UsesCudaGraph => _cudaGraph;

    /// <summary>
    /// Creates the I/O binding for one denoising run of <paramref name="shape"/>. With CUDA graphs the binding (and
    /// its device buffers, which the captured graph refers to) is kept per shape and handed out to one run at a time.
    /// </summary>
    public UNetBinding CreateBinding(UNetShape shape) => CreateBinding(shape, []);

    /// <summary>
    /// Creates the I/O binding for one denoising run of <paramref name="shape"/> with the given extra inputs, which must
    /// be exactly the model's <see cref="ExtraInputs"/>.
    /// </summary>
    /// <exception cref="SdxlModelException">The model takes an input nothing supplies, or an input is supplied that the model does not take.</exception>
    public UNetBinding CreateBinding(UNetShape shape, IReadOnlyList<UNetExtraInput> extraInputs)
    {
        CheckSequenceLength(shape.SequenceLength);
        foreach (var name in ExtraInputs.Keys)
        {
            bool supplied = false;
            foreach (var e in extraInputs)
            {
                supplied |= e.Name == name;
            }

            if (!supplied)
            {
                throw Unsupplied(name);
            }
        }

        foreach (var e in extraInputs)
        {
            if (!ExtraInputs.ContainsKey(e.Name))
            {
                throw new SdxlModelException($"unet: this generation supplies input '{e.Name}', which the model does not take; found {_model.Signature}. File: '{_model.Path}'.");
            }
        }

        if (!_cudaGraph)
        {
            return new UNetBinding(_model, this, shape, extraInputs, BindingPlacement.Host, graphId: 0, returnToCache: null);
        }

        if (extraInputs.Count > 0)
        {
            // The graph cache is keyed by the standard shapes; runs with extra inputs are bound on the device without
            // graph capture rather than replaying a graph captured with other inputs.
            return new UNetBinding(_model, this, shape, extraInputs, BindingPlacement.Device, graphId: 0, returnToCache: null);
        }

        lock (_cacheGate)
        {
            // A captured graph replays fixed addresses: concurrent runs of one shape wait for each other.
            while (_graphBindingsInUse.Contains(shape))
            {
                Monitor.Wait(_cacheGate);
            }

            if (!_graphBindings.TryGetValue(shape, out var binding))
            {
                binding = new UNetBinding(_model, this, shape, [], BindingPlacement.Device, graphId: _graphBindings.Count + 1, ReturnBinding);
                _graphBindings.Add(shape, binding);
            }

            _graphBindingsInUse.Add(shape);
            return binding;
        }
    }

    /// <summary>Latent channels the model takes (4, or 9 for inpainting UNets); -1 when dynamic.</summary>
    public int InChannels => _sample.Dimensions[1];

    /// <summary>The cross-attention width (e.g. 2048 for base, 1280 for the refiner); -1 when dynamic.</summary>
    public int CrossAttentionDim => _hidden.Dimensions[2];

    /// <summary>The pooled text embedding width; -1 when dynamic.</summary>
    public int TextEmbedsDim => _textEmbeds.Dimensions[1];

    /// <summary>The number of micro-conditioning values (6 for base, 5 for the refiner); -1 when dynamic.</summary>
    public int TimeIdsWidth => _timeIds.Dimensions[1];

    public TensorElementType FloatType => _sample.ElementType;

    /// <summary>
    /// Runs one UNet evaluation over the whole (CFG) batch and writes the prediction into <paramref name="output"/>,
    /// creating every tensor for this call (the reference for <see cref="UNetBinding"/>, which the denoising loop uses).
    /// </summary>
    public void Run(
        ReadOnlySpan<float> sample, long[] sampleShape,
        float timestep,
        ReadOnlySpan<float> hiddenStates, long[] hiddenShape,
        ReadOnlySpan<float> textEmbeds, long[] textEmbedsShape,
        ReadOnlySpan<float> timeIds, long[] timeIdsShape,
        Span<float> output,
        RunOptions? runOptions)
    {
        if (ExtraInputs.Count > 0)
        {
            throw new InvalidOperationException($"The UNet takes extra inputs ({string.Join(", ", ExtraInputs.Keys)}); run it through a binding.");
        }

        using var sampleValue = OnnxModel.CreateFloatTensor(_sample, sample, sampleShape);
        using var timestepValue = OnnxModel.CreateScalar(_timestep, timestep);
        using var hiddenValue = OnnxModel.CreateFloatTensor(_hidden, hiddenStates, hiddenShape);
        using var embedsValue = OnnxModel.CreateFloatTensor(_textEmbeds, textEmbeds, textEmbedsShape);
        using var timeIdsValue = OnnxModel.CreateFloatTensor(_timeIds, timeIds, timeIdsShape);
        using var outputs = _model.Run(_inputNames, [sampleValue, timestepValue, hiddenValue, embedsValue, timeIdsValue], _outputNames, runOptions);
        OnnxModel.ReadFloat(outputs.First(), output);
    }

    public void Dispose()
    {
        lock (_cacheGate)
        {
            foreach (var binding in _graphBindings.Values)
            {
                binding.Release();
            }

            _graphBindings.Clear();
        }

        _model.Dispose();
    }

    private void ReturnBinding(UNetBinding binding)
    {
        lock (_cacheGate)
        {
            _graphBindingsInUse.Remove(binding.Shape);
            Monitor.PulseAll(_cacheGate);
        }
    }

    /// <summary>
    /// Fails clearly when the export fixes <c>encoder_hidden_states</c>' token axis to another length (a long weighted
    /// prompt gives 77·k tokens; optimum exports leave the axis dynamic, some static-shape exports fix it at 77).
    /// </summary>
    public void CheckSequenceLength(int sequenceLength)
    {
        int fixedLength = _hidden.Dimensions[1];
        if (fixedLength > 0 && fixedLength != sequenceLength)
        {
            throw new ArgumentException(
                $"The prompt is encoded as {sequenceLength} tokens ({sequenceLength / 77.0:0.#} chunks of 77), but this UNet's input 'encoder_hidden_states' is fixed at "
                + $"{fixedLength} tokens ({_hidden}). Shorten the prompt to one chunk (75 tokens, no BREAK) or use an export with a dynamic sequence axis. File: '{_model.Path}'.",
                "Prompt");
        }
    }

    private void CheckRank(TensorSpec spec, int rank)
    {
        if (spec.Rank != rank)
        {
            throw Mismatch($"input '{spec.Name}' must have rank {rank}; found {spec}");
        }
    }

    private SdxlModelException Unsupplied(string name) => name switch
    {
        "timestep_cond" => new($"unet: the model takes 'timestep_cond' (a guidance-distilled LCM UNet, time_cond_proj_dim), and this generation does not supply it. File: '{_model.Path}'."),
        _ when name.EndsWith("_additional_residual", StringComparison.Ordinal) =>
            new($"unet: the model takes ControlNet residual '{name}', and this generation has no ControlNet that supplies it. File: '{_model.Path}'."),
        _ => new($"unet: the model takes input '{name}', which Sdxl.Net does not know how to supply; found {_model.Signature}. File: '{_model.Path}'."),
    };

    private SdxlModelException Mismatch(string what) =>
        new($"unet: {what}. Expected inputs sample [B,4,h,w], timestep (scalar or [1]), encoder_hidden_states [B,77,D], text_embeds [B,P], time_ids [B,6|5] → out_sample; found {_model.Signature}. File: '{_model.Path}'.");
}
