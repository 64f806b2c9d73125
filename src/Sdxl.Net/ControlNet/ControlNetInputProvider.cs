using System.Numerics.Tensors;
using Microsoft.ML.OnnxRuntime;
using Sdxl.Net.Denoising;
using Sdxl.Net.Models;
using Sdxl.Net.Runtime;

namespace Sdxl.Net.ControlNet;

/// <summary>One ControlNet of a run: the net, its preprocessed image [3, H, W] in [0, 1], its scale and window.</summary>
internal sealed record ControlUnit(ControlNetModel Net, float[] Image, double Scale, double GuidanceStart, double GuidanceEnd)
{
    /// <summary>
    /// diffusers' <c>controlnet_keep[i]</c>: 0 when the step lies outside [start, end] as fractions of the steps
    /// (<c>i / n &lt; start or (i + 1) / n &gt; end</c>), else 1.
    /// </summary>
    public double Keep(int index, int count) =>
        ((double)index / count < GuidanceStart || (double)(index + 1) / count > GuidanceEnd) ? 0.0 : 1.0;
}

/// <summary>
/// Supplies a ControlNet-enabled UNet's residual inputs, reproducing diffusers' StableDiffusionXLControlNetPipeline:
/// every step each active net runs on the step's scaled model input (all CFG rows with the negative and positive
/// embeddings; in guess mode only the positive rows, the negative rows' residuals being zero) and the residuals of
/// several nets are summed, each scaled by <c>conditioning_scale × controlnet_keep</c>. With no net, zero residuals are
/// fed, which equals the plain UNet (the residuals are added).
/// </summary>
internal sealed class ControlNetInputProvider : IUNetInputProvider
{
    private readonly IReadOnlyList<ControlUnit> _units;
    private readonly IReadOnlyList<string> _unetResiduals;
    private readonly IReadOnlyDictionary<string, TensorSpec> _unetInputs;
    private readonly ResidualShape[]? _zeroLayout;
    private readonly DenoisingConditioning _conditioning;
    private readonly int _batch;
    private readonly bool _guessMode;
    private readonly int _pixelHeight;
    private readonly int _pixelWidth;
    private ResidualShape[] _layout = [];
    private float[][] _sums = [];
    private float[][] _scratch = [];
    private float[][] _images = [];
    private float[] _sample = [];
    private float[] _hidden = [];
    private float[] _pooled = [];
    private float[] _timeIds = [];
    private int _controlRows;
    private bool _cfg;
    private int _latentHeight;
    private int _latentWidth;

    /// <param name="units">The active nets (empty: feed zeros).</param>
    /// <param name="unetResiduals">The UNet's residual input names, down 0..n-1 then mid.</param>
    /// <param name="unetInputs">The UNet's extra inputs (for the declared shapes).</param>
    /// <param name="zeroLayout">The residual shapes from the UNet's config, used when <paramref name="units"/> is empty.</param>
    /// <param name="conditioning">The run's CFG-batched conditioning (also fed to the nets).</param>
    /// <param name="batch">Images per run (the UNet rows are twice as many with classifier-free guidance).</param>
    /// <param name="guessMode">diffusers' guess_mode (or a net's global_pool_conditions).</param>
    /// <param name="pixelHeight">The control images' height (the generated height).</param>
    /// <param name="pixelWidth">The control images' width.</param>
    public ControlNetInputProvider(IReadOnlyList<ControlUnit> units, IReadOnlyList<string> unetResiduals, IReadOnlyDictionary<string, TensorSpec> unetInputs, ResidualShape[]? zeroLayout,
        DenoisingConditioning conditioning, int batch, bool guessMode, int pixelHeight, int pixelWidth)
    {
        _units = units;
        _unetResiduals = unetResiduals;
        _unetInputs = unetInputs;
        _zeroLayout = zeroLayout;
        _conditioning = conditioning;
        _batch = batch;
        _guessMode = guessMode;
        _pixelHeight = pixelHeight;
        _pixelWidth = pixelWidth;
    }

    public IEnumerable<UNetExtraInput> Declare(UNetShape shape)
    {
        int rows = shape.Rows;
        _cfg = rows == 2 * _batch;
        _latentHeight = shape.LatentHeight;
        _latentWidth = shape.LatentWidth;
        _layout = _units.Count == 0 ? _zeroLayout! : ResolveLayout(shape);
        if (_layout.Length != _unetResiduals.Count)
        {
            var net = _units.Count > 0 ? $"ControlNet '{_units[0].Net.Name}' outputs {_layout.Length - 1}" : $"unet/config.json describes {_layout.Length - 1}";
            throw new SdxlModelException($"{net} down-block residuals, and the ControlNet-enabled UNet takes {_unetResiduals.Count - 1}: they are not for the same base model.");
        }

        if (!ResidualLayout.ChannelsAgree(_layout.Select((r, k) => r with { Name = _unetResiduals[k] }).ToArray(), _unetInputs))
        {
            var found = string.Join(", ", _unetResiduals.Select(n => _unetInputs[n].ToString()));
            throw new SdxlModelException($"The ControlNet residuals have channels [{string.Join(", ", _layout.Select(r => r.Channels))}] and the UNet's residual inputs are {found}: they are not for the same base model.");
        }

        _sums = new float[_layout.Length][];
        var declared = new UNetExtraInput[_layout.Length];
        for (int k = 0; k < _layout.Length; k++)
        {
            var (h, w) = ResidualSize(_layout[k]);
            _sums[k] = new float[rows * _layout[k].Channels * h * w];
            declared[k] = new UNetExtraInput(_unetResiduals[k], [rows, _layout[k].Channels, h, w]);
        }

        if (_units.Count > 0)
        {
            PrepareControlInputs(shape);
        }

        return declared;
    }

    public void WriteFixed(UNetBinding binding)
    {
        if (_units.Count == 0)
        {
            // No net: zero residuals, written once (the plain UNet's result; the residuals are added).
            for (int k = 0; k < _sums.Length; k++)
            {
                binding.WriteExtraInput(_unetResiduals[k], _sums[k]);
            }
        }
    }

    public void WriteStep(in DenoisingStepInput step, UNetBinding binding, RunOptions runOptions)
    {
        if (_units.Count == 0)
        {
            return;
        }

        foreach (var sum in _sums)
        {
            Array.Clear(sum);
        }

        bool sampled = false;
        bool conditionalOnly = _guessMode && _cfg;
        for (int u = 0; u < _units.Count; u++)
        {
            var unit = _units[u];
            double scale = unit.Scale * unit.Keep(step.Index, step.Count);
            if (scale == 0)
            {
                // diffusers still runs the net and multiplies its residuals by 0: the same zeros.
                continue;
            }

            if (!sampled)
            {
                // guess mode with CFG: the net sees only the conditional rows (diffusers' latents, scaled).
                var rows = conditionalOnly ? step.ModelInput.Slice(step.ModelInput.Length / 2) : step.ModelInput;
                rows.CopyTo(_sample);
                sampled = true;
            }

            // In guess mode diffusers' ControlNetModel scales residual k by logspace(-1, 0, n + 1)[k] × scale (unless
            // the net pools its conditions); the graph then gets scale 1 and the factors are applied here.
            bool logspace = _guessMode && !unit.Net.GlobalPoolConditions;
            double fed = logspace ? 1.0 : scale;
            var inputs = new ControlNetInputs(_sample, _controlRows, _latentHeight, _latentWidth, step.Timestep,
                _hidden, _conditioning.SequenceLength, _conditioning.HiddenSize, _pooled, _timeIds,
                _images[u], _pixelHeight, _pixelWidth, fed);
            using var outputs = unit.Net.Run(inputs, runOptions);
            int k = 0;
            foreach (var value in outputs)
            {
                float factor = logspace ? LogspaceFactor(k, _layout.Length - 1) * (float)scale
                    : unit.Net.TakesScale ? 1f : (float)scale;
                Accumulate(unit, k, value, factor);
                k++;
            }
        }

        for (int k = 0; k < _sums.Length; k++)
        {
            binding.WriteExtraInput(_unetResiduals[k], _sums[k]);
        }
    }

    /// <summary>torch.logspace(-1, 0, n + 1)[k] in float32: 10^(-1 + k / n); the mid residual (k = n) gets 1.</summary>
    internal static float LogspaceFactor(int k, int downCount) => (float)Math.Pow(10.0, -1.0 + ((double)k / downCount));

    private ResidualShape[] ResolveLayout(UNetShape shape)
    {
        var probe = new ControlNetProbe(shape.InputChannels, shape.SequenceLength, shape.HiddenSize, shape.PooledSize, shape.TimeIdsWidth, _pixelHeight, _pixelWidth);
        var first = _units[0].Net.Layout(shape.LatentHeight, shape.LatentWidth, probe);
        foreach (var unit in _units)
        {
            var other = unit.Net.Layout(shape.LatentHeight, shape.LatentWidth, probe);
            if (!other.AsSpan().SequenceEqual(first))
            {
                throw new SdxlModelException($"ControlNets '{_units[0].Net.Name}' and '{unit.Net.Name}' produce residuals of different shapes: they are not for the same base model.");
            }
        }

        return first;
    }

    private void PrepareControlInputs(UNetShape shape)
    {
        int rows = shape.Rows;
        bool conditionalOnly = _guessMode && _cfg;
        _controlRows = conditionalOnly ? rows / 2 : rows;
        _sample = new float[_controlRows * shape.InputChannels * shape.LatentHeight * shape.LatentWidth];

        // guess mode with CFG: diffusers feeds the nets prompt_embeds.chunk(2)[1] (and the same for text_embeds and
        // time_ids): the second half of the rows, whatever their layout.
        _hidden = conditionalOnly ? SecondHalf(_conditioning.Hidden) : _conditioning.Hidden;
        _pooled = conditionalOnly ? SecondHalf(_conditioning.Pooled) : _conditioning.Pooled;
        _timeIds = conditionalOnly ? SecondHalf(_conditioning.TimeIds) : _conditioning.TimeIds;

        // The image repeated for the batch, then (without guess mode) once more for the CFG halves.
        _images = new float[_units.Count][];
        for (int u = 0; u < _units.Count; u++)
        {
            var image = _units[u].Image;
            _images[u] = new float[_controlRows * image.Length];
            Batching.Repeat(image, _controlRows, _images[u], 0);
        }

        _scratch = new float[_layout.Length][];
        for (int k = 0; k < _layout.Length; k++)
        {
            var (h, w) = ResidualSize(_layout[k]);
            _scratch[k] = new float[_controlRows * _layout[k].Channels * h * w];
        }

    }

    private void Accumulate(ControlUnit unit, int k, OrtValue value, float factor)
    {
        var scratch = _scratch[k];
        long count = value.GetTensorTypeAndShape().ElementCount;
        if (count != scratch.Length)
        {
            var (h, w) = ResidualSize(_layout[k]);
            throw new SdxlModelException($"controlnet '{unit.Net.Name}': output '{_layout[k].Name}' has shape [{string.Join(", ", OnnxModel.ShapeOf(value))}]; the run expects [{_controlRows}, {_layout[k].Channels}, {h}, {w}]. File: '{unit.Net.ModelPath}'.");
        }

        OnnxModel.ReadFloat(value, scratch);
        if (factor != 1f)
        {
            TensorPrimitives.Multiply(scratch, factor, scratch);
        }

        // Residuals of several nets are summed (diffusers' MultiControlNetModel); in guess mode with CFG they go to the
        // conditional half and the unconditional half stays zero.
        var sum = _sums[k].AsSpan(_sums[k].Length - scratch.Length);
        TensorPrimitives.Add(sum, scratch, sum);
    }

    private (int Height, int Width) ResidualSize(ResidualShape shape) => (_latentHeight / shape.Downscale, _latentWidth / shape.Downscale);

    private static float[] SecondHalf(float[] values) => values.AsSpan(values.Length / 2).ToArray();
}
