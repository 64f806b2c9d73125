using Microsoft.ML.OnnxRuntime;
using Sdxl.Net.Models;
using Sdxl.Net.Runtime;

namespace Sdxl.Net.Previews;

/// <summary>
/// The TAESD-XL tiny decoder as a preview source. TAESD shares the SD VAE's "latent API" but, unlike the VAE, takes the
/// latents as the UNet sees them (madebyollin/taesd; ComfyUI feeds the sampler's latents straight in): diffusers'
/// <c>AutoencoderTiny</c> has <c>scaling_factor</c> 1.0, so latents / scaling_factor are the UNet's latents, and its
/// decoder returns [−1, 1] (<c>DecoderTiny</c> ends with <c>x.mul(2).sub(1)</c>).
/// </summary>
internal sealed class TaesdPreviewDecoder : IDisposable
{
    private readonly VaeDecoderModel _decoder;
    private readonly float _scalingFactor;

    private TaesdPreviewDecoder(VaeDecoderModel decoder, float scalingFactor)
    {
        _decoder = decoder;
        _scalingFactor = scalingFactor;
    }

    /// <summary>Pixels per latent cell (TAESD upsamples three times).</summary>
    public const int Scale = 8;

    /// <summary>Opens <c>DIR/vae_decoder/model.onnx</c> or <c>DIR/model.onnx</c>, with the <c>config.json</c> next to it or in DIR.</summary>
    /// <exception cref="SdxlModelException">No decoder in the folder, or it is not <c>vae_decoder</c>-shaped.</exception>
    public static TaesdPreviewDecoder Open(string directory, ExecutionProviderOptions provider)
    {
        var model = new[] { Path.Combine(directory, "vae_decoder", "model.onnx"), Path.Combine(directory, "model.onnx") }.FirstOrDefault(File.Exists)
            ?? throw new SdxlModelException($"TAESD preview decoder: no vae_decoder/model.onnx or model.onnx in '{directory}'. Export madebyollin/taesdxl's decoder to ONNX (latent_sample → sample).");
        var config = new[] { Path.Combine(Path.GetDirectoryName(model)!, "config.json"), Path.Combine(directory, "config.json") }.FirstOrDefault(File.Exists);
        float scaling = config is null ? 1f : (float)JsonConfig.Load(config, "taesd", required: false).GetDouble("scaling_factor", 1.0);
        if (!(scaling > 0))
        {
            throw new SdxlModelException($"TAESD preview decoder: scaling_factor must be positive; found {scaling} in '{config}'.");
        }

        try
        {
            return new TaesdPreviewDecoder(new VaeDecoderModel(model, provider with { EnableCudaGraph = false }), scaling);
        }
        catch (SdxlModelException e)
        {
            throw new SdxlModelException($"TAESD preview decoder: {e.Message}", e);
        }
    }

    /// <summary>Decodes one image's UNet-space latents [C, h, w] into planar RGB [3, 8h, 8w] in [−1, 1].</summary>
    public void Decode(ReadOnlySpan<float> latents, int channels, int height, int width, Span<float> scratch, Span<float> planar, RunOptions runOptions)
    {
        for (int i = 0; i < latents.Length; i++)
        {
            scratch[i] = latents[i] / _scalingFactor;
        }

        _decoder.Decode(scratch[..latents.Length], [1, channels, height, width], planar, runOptions);
    }

    public void Dispose() => _decoder.Dispose();
}

/// <summary>The TAESD decoders a pipeline has opened for previews, one per folder, kept until the pipeline is disposed.</summary>
internal sealed class PreviewDecoderCache(ExecutionProviderOptions provider) : IDisposable
{
    private readonly Dictionary<string, TaesdPreviewDecoder> _decoders = new(StringComparer.Ordinal);
    private bool _disposed;

    /// <summary>The decoder of <paramref name="directory"/>, opened on first use.</summary>
    public TaesdPreviewDecoder Get(string directory)
    {
        var key = Path.GetFullPath(directory);
        lock (_decoders)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_decoders.TryGetValue(key, out var decoder))
            {
                decoder = TaesdPreviewDecoder.Open(key, provider);
                _decoders.Add(key, decoder);
            }

            return decoder;
        }
    }

    public void Dispose()
    {
        lock (_decoders)
        {
            _disposed = true;
            foreach (var decoder in _decoders.Values)
            {
                decoder.Dispose();
            }

            _decoders.Clear();
        }
    }
}
