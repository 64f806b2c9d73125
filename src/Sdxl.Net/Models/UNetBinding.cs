using Microsoft.ML.OnnxRuntime;
using Sdxl.Net.Denoising;
using Sdxl.Net.Runtime;

namespace Sdxl.Net.Models;

/// <summary>The shapes of one denoising run: everything an I/O binding's tensors depend on.</summary>
/// <param name="Rows">The UNet batch (2 × images with classifier-free guidance).</param>
/// <param name="InputChannels">Channels of <c>sample</c> (4, or 9 for inpainting UNets).</param>
/// <param name="OutputChannels">Channels of the prediction (4).</param>
/// <param name="LatentHeight">h.</param>
/// <param name="LatentWidth">w.</param>
/// <param name="SequenceLength">Tokens per prompt row (77).</param>
/// <param name="HiddenSize">The width of <c>encoder_hidden_states</c>.</param>
/// <param name="PooledSize">The width of <c>text_embeds</c>.</param>
/// <param name="TimeIdsWidth">The width of <c>time_ids</c>.</param>
internal readonly record struct UNetShape(
    int Rows, int InputChannels, int OutputChannels, int LatentHeight, int LatentWidth, int SequenceLength, int HiddenSize, int PooledSize, int TimeIdsWidth);

/// <summary>
/// The UNet's inputs and output for one denoising run, allocated once and bound with an <see cref="OrtIoBinding"/>:
/// the conditioning (<c>encoder_hidden_states</c>, <c>text_embeds</c>, <c>time_ids</c>) is written once, and each step
/// writes only <c>sample</c> and <c>timestep</c> in place and reads the prediction in place — no OrtValue is created
/// per step. With CUDA graphs the tensors live on the device at fixed addresses and the binding is kept by the
/// <see cref="UNetModel"/> for later runs of the same shape.
/// </summary>
internal sealed class UNetBinding : IDisposable
{
    private readonly OnnxModel _model;
    private readonly OnnxModel.SessionLease _lease;
    private readonly OrtIoBinding _io;
    private readonly OrtAllocator? _deviceAllocator;
    private readonly BoundTensor _sample;
    private readonly BoundTensor _timestep;
    private readonly BoundTensor _hidden;
    private readonly BoundTensor _textEmbeds;
    private readonly BoundTensor _timeIds;
    private readonly BoundTensor _output;
    private readonly Dictionary<string, BoundTensor> _extra = new(StringComparer.Ordinal);
    private readonly Action<UNetBinding>? _return;
    private readonly string? _graphId;
    private float _boundTimestep = float.NaN;

    internal UNetBinding(OnnxModel model, UNetModel unet, UNetShape shape, IReadOnlyList<UNetExtraInput> extraInputs, BindingPlacement placement, int graphId,
        Action<UNetBinding>? returnToCache)
    {
        _model = model;
        Shape = shape;
        Placement = placement;
        _return = returnToCache;
        _graphId = graphId > 0 ? graphId.ToString(System.Globalization.CultureInfo.InvariantCulture) : null;
        _lease = model.Acquire();
        var created = new List<IDisposable>();
        try
        {
            OrtAllocator allocator = OrtAllocator.DefaultInstance;
            int deviceId = model.Options.DeviceId;
            if (placement == BindingPlacement.Device)
            {
                using var memoryInfo = new OrtMemoryInfo(OrtMemoryInfo.allocatorCUDA, OrtAllocatorType.DeviceAllocator, deviceId, OrtMemType.Default);
                _deviceAllocator = new OrtAllocator(_lease.Session, memoryInfo);
                allocator = _deviceAllocator;
            }

            BoundTensor Add(string name, Microsoft.ML.OnnxRuntime.Tensors.TensorElementType type, long[] dims)
            {
                var t = BoundTensor.Create(allocator, type, dims, placement, deviceId);
                created.Add(t);
                return t;
            }

            int rows = shape.Rows, h = shape.LatentHeight, w = shape.LatentWidth;
            _sample = Add("sample", unet.SampleSpec.ElementType, [rows, shape.InputChannels, h, w]);
            _timestep = Add("timestep", unet.TimestepSpec.ElementType, unet.TimestepSpec.Rank == 0 ? [] : [1]);
            _hidden = Add("encoder_hidden_states", unet.HiddenSpec.ElementType, [rows, shape.SequenceLength, shape.HiddenSize]);
            _textEmbeds = Add("text_embeds", unet.TextEmbedsSpec.ElementType, [rows, shape.PooledSize]);
            _timeIds = Add("time_ids", unet.TimeIdsSpec.ElementType, [rows, shape.TimeIdsWidth]);
            _output = Add(unet.OutputName, unet.OutputSpec.ElementType, [rows, shape.OutputChannels, h, w]);
            foreach (var extra in extraInputs)
            {
                _extra.Add(extra.Name, Add(extra.Name, unet.ExtraInputs[extra.Name].ElementType, extra.Dimensions));
            }

            _io = _lease.Session.CreateIoBinding();
            _io.BindInput("sample", _sample.Value);
            _io.BindInput("timestep", _timestep.Value);
            _io.BindInput("encoder_hidden_states", _hidden.Value);
            _io.BindInput("text_embeds", _textEmbeds.Value);
            _io.BindInput("time_ids", _timeIds.Value);
            foreach (var (name, tensor) in _extra)
            {
                _io.BindInput(name, tensor.Value);
            }

            _io.BindOutput(unet.OutputName, _output.Value);
        }
        catch
        {
            foreach (var d in created)
            {
                d.Dispose();
            }

            _deviceAllocator?.Dispose();
            _lease.Dispose();
            throw;
        }
    }

    public UNetShape Shape { get; }

    public BindingPlacement Placement { get; }

    /// <summary>The <c>sample</c> input as float32 [rows, C, h, w]: write the model input here before <see cref="Run"/>.</summary>
    public Span<float> Sample => _sample.Writable;

    /// <summary>The prediction [rows, 4, h, w] of the last <see cref="Run"/>, as float32.</summary>
    public ReadOnlySpan<float> Output => _output.Readable;

    /// <summary>
    /// An extra input declared for this run: write its values into <see cref="BoundTensor.Writable"/> (float32, converted
    /// to the model's element type), then call <see cref="BoundTensor.Upload"/>.
    /// </summary>
    public BoundTensor ExtraInput(string name) =>
        _extra.TryGetValue(name, out var tensor) ? tensor : throw new ArgumentException($"'{name}' is not an extra input of this binding.", nameof(name));

    /// <summary>Writes the values of an extra input and uploads them.</summary>
    public void WriteExtraInput(string name, ReadOnlySpan<float> values) => Write(ExtraInput(name), values, name);

    /// <summary>Writes the generation's conditioning (once per generation).</summary>
    public void SetConditioning(ReadOnlySpan<float> hidden, ReadOnlySpan<float> textEmbeds, ReadOnlySpan<float> timeIds)
    {
        Write(_hidden, hidden, "encoder_hidden_states");
        Write(_textEmbeds, textEmbeds, "text_embeds");
        Write(_timeIds, timeIds, "time_ids");
    }

    /// <summary>Runs the UNet on the current <see cref="Sample"/> at <paramref name="timestep"/>; the result is in <see cref="Output"/>.</summary>
    public void Run(float timestep, RunOptions runOptions)
    {
        _sample.Upload();
        if (!timestep.Equals(_boundTimestep))
        {
            _timestep.Writable.Fill(timestep);
            _timestep.Upload();
            _boundTimestep = timestep;
        }

        if (_graphId is not null)
        {
            // Each shape has its own captured graph.
            runOptions.AddRunConfigEntry("gpu_graph_id", _graphId);
        }

        _model.RunWithBinding(_lease.Session, _io, runOptions);
        _output.Download();
    }

    /// <summary>Ends the run: a cached (CUDA graph) binding goes back to its model; any other is released.</summary>
    public void Dispose()
    {
        if (_return is not null)
        {
            _return(this);
            return;
        }

        Release();
    }

    /// <summary>Frees the tensors and the session lease.</summary>
    internal void Release()
    {
        _io.Dispose();
        _sample.Dispose();
        _timestep.Dispose();
        _hidden.Dispose();
        _textEmbeds.Dispose();
        _timeIds.Dispose();
        _output.Dispose();
        foreach (var tensor in _extra.Values)
        {
            tensor.Dispose();
        }

        _deviceAllocator?.Dispose();
        _lease.Dispose();
    }

    private static void Write(BoundTensor tensor, ReadOnlySpan<float> values, string name)
    {
        if (values.Length != tensor.ElementCount)
        {
            throw new ArgumentException($"{name}: {values.Length} values given; the bound tensor [{string.Join(", ", tensor.Shape)}] holds {tensor.ElementCount}.", nameof(values));
        }

        values.CopyTo(tensor.Writable);
        tensor.Upload();
    }
}
