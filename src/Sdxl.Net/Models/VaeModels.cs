using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Sdxl.Net.Runtime;

namespace Sdxl.Net.Models;

/// <summary>The VAE decoder (<c>latent_sample</c> [B,4,h,w] → <c>sample</c> [B,3,8h,8w]).</summary>
internal sealed class VaeDecoderModel : IDisposable
{
    private readonly OnnxModel _model;
    private readonly TensorSpec _input;
    private readonly string[] _outputNames;

    public VaeDecoderModel(string path, ExecutionProviderOptions options, SessionResidency? residency = null)
    {
        _model = new OnnxModel("vae_decoder", path, options, residency);
        try
        {
            _input = _model.RequireInput("latent_sample", TensorElementType.Float, TensorElementType.Float16);
            var output = _model.Outputs.ContainsKey("sample") ? "sample"
                : _model.Outputs.Count == 1 ? _model.Outputs.Keys.First()
                : throw new SdxlModelException($"vae_decoder: no output 'sample'; found {_model.Signature}. File: '{path}'.");
            _outputNames = [output];
            if (_input.Rank != 4)
            {
                throw new SdxlModelException($"vae_decoder: input 'latent_sample' must have rank 4; found {_input}. File: '{path}'.");
            }
        }
        catch
        {
            _model.Dispose();
            throw;
        }
    }

    public TensorElementType FloatType => _input.ElementType;

    public string Signature => _model.Signature;

    /// <summary>
    /// Decodes one latent cell and checks that the decoder makes <paramref name="expectedFactor"/> pixels of it, as
    /// the VAE config's level count says, so a config from another VAE fails at build instead of after denoising.
    /// Only where it is cheap and cannot mislead: CPU or CUDA, sessions kept loaded, dynamic latent sides; a decoder
    /// that cannot run a 1×1 latent is not judged here (the size check in <c>Decode</c> remains).
    /// </summary>
    public void CheckScaleFactor(int expectedFactor, int latentChannels, string configPath)
    {
        var options = _model.Options;
        if (options.MemoryMode != MemoryMode.KeepLoaded || _model.Provider is not (ExecutionProviderKind.Cpu or ExecutionProviderKind.Cuda)
            || _input.Dimensions[2] > 0 || _input.Dimensions[3] > 0 || (_input.Dimensions[1] > 0 && _input.Dimensions[1] != latentChannels))
        {
            return;
        }

        long[] produced;
        try
        {
            using var input = OnnxModel.CreateFloatTensor(_input, new float[latentChannels], [1, latentChannels, 1, 1]);
            using var outputs = _model.Run(["latent_sample"], [input], _outputNames, null);
            produced = OnnxModel.ShapeOf(outputs.First());
        }
        catch (SdxlModelException)
        {
            return;
        }

        if (produced.Length == 4 && (produced[2] != expectedFactor || produced[3] != expectedFactor))
        {
            throw new SdxlModelException(
                $"vae_decoder: the decoder makes {produced[2]}x{produced[3]} pixels of one latent cell, but '{configPath}' (block_out_channels: "
                + $"{System.Numerics.BitOperations.Log2((uint)expectedFactor) + 1} levels) says {expectedFactor}x{expectedFactor}. Is config.json from another VAE? File: '{_model.Path}'.");
        }
    }

    /// <summary>Whether the session is open (see <see cref="MemoryMode.LoadPerPhase"/>).</summary>
    public bool IsLoaded => _model.IsLoaded;

    /// <summary>Decodes one batch of latents (already divided by the scaling factor) into <paramref name="output"/> (values ≈ [-1, 1]).</summary>
    public void Decode(ReadOnlySpan<float> latents, long[] shape, Span<float> output, RunOptions? runOptions)
    {
        using var input = OnnxModel.CreateFloatTensor(_input, latents, shape);
        using var outputs = _model.Run(["latent_sample"], [input], _outputNames, runOptions);
        var value = outputs.First();
        var produced = OnnxModel.ShapeOf(value);
        long count = 1;
        foreach (var d in produced)
        {
            count *= d;
        }

        if (count != output.Length)
        {
            // The config's level count sets the pixels per latent cell; a decoder that scales otherwise belongs to
            // another VAE than its config.json.
            throw new SdxlModelException(
                $"vae_decoder: decodes latents [{string.Join(", ", shape)}] to [{string.Join(", ", produced)}], but its config.json "
                + $"(block_out_channels) predicts {output.Length} values, a factor {System.Math.Round(System.Math.Sqrt(output.Length / 3.0 / (shape[2] * shape[3])))} per latent cell. Is config.json from another VAE? File: '{_model.Path}'.");
        }

        OnnxModel.ReadFloat(value, output);
    }

    /// <summary>
    /// Decodes one image's latents [1, C, h, w], in tiles when <paramref name="tiling"/> asks for it and the latents
    /// exceed one tile, else whole. Returns the number of decoder runs.
    /// </summary>
    public int Decode(ReadOnlySpan<float> latents, long[] shape, int vaeScale, Span<float> output, TiledVaeOptions? tiling, RunOptions? runOptions)
    {
        int channels = (int)shape[1], h = (int)shape[2], w = (int)shape[3];
        if (shape[0] != 1 || !TiledVaeDecoder.ShouldTile(tiling, h, w))
        {
            Decode(latents, shape, output, runOptions);
            return 1;
        }

        return TiledVaeDecoder.Decode(this, latents, channels, h, w, vaeScale, tiling!, output, runOptions);
    }

    public void Dispose() => _model.Dispose();
}

/// <summary>
/// The VAE encoder: <c>sample</c> [B,3,H,W] → <c>latent_parameters</c> [B,8,h,w] (mean ‖ log-variance, optimum ≥ 1.23)
/// or <c>latent_sample</c> [B,4,h,w] (a sample drawn inside the graph, older optimum and Olive exports).
/// </summary>
internal sealed class VaeEncoderModel : IDisposable
{
    private readonly OnnxModel _model;
    private readonly TensorSpec _input;
    private readonly string[] _outputNames;

    public VaeEncoderModel(string path, ExecutionProviderOptions options, SessionResidency? residency = null)
    {
        _model = new OnnxModel("vae_encoder", path, options, residency);
        try
        {
            _input = _model.RequireInput("sample", TensorElementType.Float, TensorElementType.Float16);
            if (_model.Outputs.ContainsKey("latent_parameters"))
            {
                OutputsParameters = true;
                _outputNames = ["latent_parameters"];
            }
            else if (_model.Outputs.ContainsKey("latent_sample"))
            {
                _outputNames = ["latent_sample"];
            }
            else
            {
                throw new SdxlModelException($"vae_encoder: expected an output 'latent_parameters' or 'latent_sample'; found {_model.Signature}. File: '{path}'.");
            }
        }
        catch
        {
            _model.Dispose();
            throw;
        }
    }

    /// <summary>Whether the output holds distribution parameters (sampled on the host) rather than a sample.</summary>
    public bool OutputsParameters { get; }

    /// <summary>The element type of the encoder's input (float32 or float16).</summary>
    public TensorElementType FloatType => _input.ElementType;

    public string Signature => _model.Signature;

    /// <summary>Whether the session is open (see <see cref="MemoryMode.LoadPerPhase"/>).</summary>
    public bool IsLoaded => _model.IsLoaded;

    /// <summary>Encodes images in [-1, 1]; returns the raw output and its shape.</summary>
    public (float[] Output, long[] Shape) Encode(ReadOnlySpan<float> images, long[] shape, RunOptions? runOptions)
    {
        using var input = OnnxModel.CreateFloatTensor(_input, images, shape);
        using var outputs = _model.Run(["sample"], [input], _outputNames, runOptions);
        var value = outputs.First();
        return (OnnxModel.ReadFloat(value), OnnxModel.ShapeOf(value));
    }

    public void Dispose() => _model.Dispose();
}
