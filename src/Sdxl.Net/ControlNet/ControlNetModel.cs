using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Sdxl.Net.Models;
using Sdxl.Net.Runtime;

namespace Sdxl.Net.ControlNet;

/// <summary>
/// An SDXL ControlNet exported to ONNX in OnnxStack's form: a folder with <c>model.onnx</c> (inputs <c>sample</c>,
/// <c>timestep</c>, <c>encoder_hidden_states</c>, optional <c>text_embeds</c> and <c>time_ids</c>,
/// <c>controlnet_cond</c>, optional <c>conditioning_scale</c>; outputs <c>down_block_{i}_additional_residual</c> and
/// <c>mid_block_additional_residual</c>) and an optional diffusers <c>config.json</c>. Element types and ranks are read
/// from the model: exports differ (<c>timestep</c> rank 0 or 1-D, <c>conditioning_scale</c> float or double).
/// </summary>
internal sealed class ControlNetModel : IDisposable
{
    private static readonly TensorElementType[] Floats = [TensorElementType.Float, TensorElementType.Float16];
    private readonly OnnxModel _model;
    private readonly JsonConfig _config;
    private readonly TensorSpec _sample;
    private readonly TensorSpec _timestep;
    private readonly TensorSpec _hidden;
    private readonly TensorSpec _cond;
    private readonly TensorSpec? _textEmbeds;
    private readonly TensorSpec? _timeIds;
    private readonly TensorSpec? _scale;
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;
    private readonly object _layoutGate = new();
    private readonly Dictionary<(int H, int W), ResidualShape[]> _probedLayouts = [];

    public ControlNetModel(string name, string directory, ExecutionProviderOptions options)
    {
        Name = name;
        Directory = Path.GetFullPath(directory);
        var path = Path.Combine(Directory, "model.onnx");
        if (!File.Exists(path))
        {
            throw new SdxlModelException($"controlnet '{name}': model file not found: '{path}'. Expected a ControlNet folder with model.onnx (and optionally config.json); see docs/controlnet.md.");
        }

        _config = JsonConfig.Load(Path.Combine(Directory, "config.json"), $"controlnet '{name}'", required: false);
        _model = new OnnxModel("controlnet", path, options);
        try
        {
            _sample = _model.RequireInput("sample", Floats);
            _timestep = _model.RequireInput("timestep", TensorElementType.Float, TensorElementType.Float16, TensorElementType.Int64, TensorElementType.Int32, TensorElementType.Double);
            _hidden = _model.RequireInput("encoder_hidden_states", Floats);
            _cond = _model.RequireInput("controlnet_cond", Floats);
            _textEmbeds = OptionalInput("text_embeds", Floats);
            _timeIds = OptionalInput("time_ids", Floats);
            _scale = OptionalInput("conditioning_scale", TensorElementType.Float, TensorElementType.Double, TensorElementType.Float16);
            if (_sample.Rank != 4 || _cond.Rank != 4 || _hidden.Rank != 3 || _timestep.Rank > 1 || _scale is { Rank: > 1 })
            {
                throw Mismatch("sample and controlnet_cond must have rank 4, encoder_hidden_states rank 3, timestep and conditioning_scale rank 0 or 1");
            }

            var known = new HashSet<string>(StringComparer.Ordinal) { "sample", "timestep", "encoder_hidden_states", "controlnet_cond", "text_embeds", "time_ids", "conditioning_scale" };
            foreach (var input in _model.Inputs.Keys)
            {
                if (!known.Contains(input))
                {
                    throw Mismatch($"input '{input}' is not one Sdxl.Net can supply");
                }
            }

            _inputNames = [.. _model.Inputs.Keys.Where(known.Contains)];
            _outputNames = ResidualLayout.Names(_model.Outputs.Keys, $"controlnet '{name}'", path)
                ?? throw Mismatch("no outputs named down_block_{i}_additional_residual / mid_block_additional_residual");
            foreach (var output in _outputNames)
            {
                _model.RequireOutput(output, Floats);
            }

            GlobalPoolConditions = _config.GetBoolean("global_pool_conditions", false);
        }
        catch
        {
            _model.Dispose();
            throw;
        }
    }

    /// <summary>The name requests refer to it by.</summary>
    public string Name { get; }

    /// <summary>The folder it was loaded from.</summary>
    public string Directory { get; }

    /// <summary>The model file.</summary>
    public string ModelPath => _model.Path;

    /// <summary>The ONNX signature, for messages.</summary>
    public string Signature => _model.Signature;

    /// <summary>The number of down-block residuals (9 for SDXL).</summary>
    public int DownCount => _outputNames.Length - 1;

    /// <summary>The residual names in order: down 0..n-1, then mid.</summary>
    public IReadOnlyList<string> ResidualNames => _outputNames;

    /// <summary>config.json <c>global_pool_conditions</c>: diffusers then always runs the net in guess mode.</summary>
    public bool GlobalPoolConditions { get; }

    /// <summary>Whether the graph scales its residuals by a <c>conditioning_scale</c> input (otherwise the caller does).</summary>
    public bool TakesScale => _scale is not null;

    public TensorSpec SampleSpec => _sample;

    /// <summary>
    /// The residual shapes for latents of <paramref name="latentHeight"/> × <paramref name="latentWidth"/>: from
    /// config.json when it describes this net, otherwise probed once per size by running the net on zeros.
    /// </summary>
    public ResidualShape[] Layout(int latentHeight, int latentWidth, ControlNetProbe probe)
    {
        if (ResidualLayout.FromConfig(_config, DownCount) is { } fromConfig && ResidualLayout.ChannelsAgree(fromConfig, _model.Outputs))
        {
            return fromConfig;
        }

        lock (_layoutGate)
        {
            if (_probedLayouts.TryGetValue((latentHeight, latentWidth), out var cached))
            {
                return cached;
            }
        }

        var inputs = new ControlNetInputs(
            new float[probe.SampleChannels * latentHeight * latentWidth], 1, latentHeight, latentWidth, 0f,
            new float[probe.SequenceLength * probe.HiddenSize], probe.SequenceLength, probe.HiddenSize,
            new float[probe.PooledSize], new float[probe.TimeIdsWidth],
            new float[3 * probe.PixelHeight * probe.PixelWidth], probe.PixelHeight, probe.PixelWidth, 1.0);
        using var runOptions = new RunOptions();
        using var outputs = Run(inputs, runOptions);
        var shapes = new ResidualShape[_outputNames.Length];
        int i = 0;
        foreach (var value in outputs)
        {
            var dims = OnnxModel.ShapeOf(value);
            if (dims.Length != 4 || dims[2] < 1 || latentHeight % dims[2] != 0)
            {
                throw Mismatch($"output '{_outputNames[i]}' has shape [{string.Join(", ", dims)}] for {latentHeight}x{latentWidth} latents; expected [B, C, h/2^k, w/2^k]");
            }

            shapes[i] = new ResidualShape(_outputNames[i], (int)dims[1], (int)(latentHeight / dims[2]));
            i++;
        }

        lock (_layoutGate)
        {
            _probedLayouts[(latentHeight, latentWidth)] = shapes;
        }

        return shapes;
    }

    /// <summary>Runs the net; the outputs come in <see cref="ResidualNames"/> order and the caller disposes them.</summary>
    public IDisposableReadOnlyCollection<OrtValue> Run(in ControlNetInputs inputs, RunOptions runOptions)
    {
        int rows = inputs.Rows;
        var values = new List<OrtValue>(_inputNames.Length);
        try
        {
            foreach (var name in _inputNames)
            {
                values.Add(name switch
                {
                    "sample" => Input(_sample, inputs.Sample, [rows, inputs.Sample.Length / (rows * inputs.LatentHeight * inputs.LatentWidth), inputs.LatentHeight, inputs.LatentWidth]),

                    // A 1-D timestep is the batch's timesteps (diffusers expands the scalar to the batch).
                    "timestep" => OnnxModel.CreateScalar(_timestep, inputs.Timestep, _timestep.Rank == 0 ? 1 : _timestep.Dimensions[0] > 0 ? _timestep.Dimensions[0] : rows),
                    "encoder_hidden_states" => Input(_hidden, inputs.Hidden, [rows, inputs.SequenceLength, inputs.HiddenSize]),
                    "text_embeds" => Input(_textEmbeds!, inputs.Pooled, [rows, inputs.Pooled.Length / rows]),
                    "time_ids" => Input(_timeIds!, inputs.TimeIds, [rows, inputs.TimeIds.Length / rows]),
                    "controlnet_cond" => Input(_cond, inputs.Image, [rows, 3, inputs.PixelHeight, inputs.PixelWidth]),
                    _ => Scale(_scale!, inputs.Scale),
                });
            }

            return _model.Run(_inputNames, values, _outputNames, runOptions);
        }
        finally
        {
            foreach (var v in values)
            {
                v.Dispose();
            }
        }
    }

    public void Dispose() => _model.Dispose();

    private static OrtValue Input(TensorSpec spec, float[] data, long[] shape) =>

        // float32 inputs wrap the managed array (pinned while the value lives); others are converted.
        spec.ElementType == TensorElementType.Float
            ? OrtValue.CreateTensorValueFromMemory(data, shape)
            : OnnxModel.CreateFloatTensor(spec, data, shape);

    private static OrtValue Scale(TensorSpec spec, double scale)
    {
        long[] shape = spec.Rank == 0 ? [] : [1];
        if (spec.ElementType == TensorElementType.Double)
        {
            var value = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, TensorElementType.Double, shape);
            value.GetTensorMutableDataAsSpan<double>()[0] = scale;
            return value;
        }

        return OnnxModel.CreateFloatTensor(spec, [(float)scale], shape);
    }

    private TensorSpec? OptionalInput(string name, params TensorElementType[] allowed) =>
        _model.Inputs.ContainsKey(name) ? _model.RequireInput(name, allowed) : null;

    private SdxlModelException Mismatch(string what) =>
        new($"controlnet '{Name}': {what}. Expected OnnxStack's SDXL ControlNet signature: inputs sample [B,4,h,w], timestep, encoder_hidden_states [B,77,D], text_embeds, time_ids, controlnet_cond [B,3,H,W], conditioning_scale → outputs down_block_{{i}}_additional_residual, mid_block_additional_residual; found {_model.Signature}. File: '{_model.Path}'.");
}

/// <summary>The sizes a layout probe runs the net with (one row of zeros).</summary>
internal readonly record struct ControlNetProbe(int SampleChannels, int SequenceLength, int HiddenSize, int PooledSize, int TimeIdsWidth, int PixelHeight, int PixelWidth);

/// <summary>One ControlNet evaluation's inputs, float32, row-major, each array exactly the tensor's size.</summary>
internal readonly record struct ControlNetInputs(
    float[] Sample, int Rows, int LatentHeight, int LatentWidth, float Timestep,
    float[] Hidden, int SequenceLength, int HiddenSize, float[] Pooled, float[] TimeIds,
    float[] Image, int PixelHeight, int PixelWidth, double Scale);
