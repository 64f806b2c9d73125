using System.Numerics.Tensors;

namespace Sdxl.Net.Models;

/// <summary>
/// How latents map to and from the VAE's space, from the VAE config: <c>scaling_factor</c>, and the per-channel
/// <c>latents_mean</c>/<c>latents_std</c> some SDXL-architecture VAEs declare. diffusers' SDXL pipelines decode
/// <c>latents · std / scaling_factor + mean</c> when both are present, else <c>latents / scaling_factor</c>, and encode
/// the inverse (they do not use <c>shift_factor</c>).
/// </summary>
internal sealed class VaeLatentScaling
{
    public VaeLatentScaling(float scalingFactor, float[]? mean, float[]? std)
    {
        ScalingFactor = scalingFactor;
        if (mean is not null && std is not null && mean.Length == std.Length)
        {
            Mean = mean;
            Std = std;
        }
    }

    public float ScalingFactor { get; }

    public float[]? Mean { get; }

    public float[]? Std { get; }

    /// <summary>Denoised latents [C, h, w] → the VAE decoder's input.</summary>
    public void ToDecoder(ReadOnlySpan<float> latents, Span<float> destination, int plane)
    {
        if (Mean is null || Std is null)
        {
            TensorPrimitives.Divide(latents, ScalingFactor, destination);
            return;
        }

        for (int c = 0; c < latents.Length / plane; c++)
        {
            var dest = destination.Slice(c * plane, plane);
            TensorPrimitives.Multiply(latents.Slice(c * plane, plane), Std[c % Std.Length], dest);
            TensorPrimitives.Divide(dest, ScalingFactor, dest);
            TensorPrimitives.Add(dest, Mean[c % Mean.Length], dest);
        }
    }

    /// <summary>A VAE encoder sample [C, h, w] → latents, in place.</summary>
    public void FromEncoder(Span<float> sample, int plane)
    {
        if (Mean is null || Std is null)
        {
            TensorPrimitives.Multiply(sample, ScalingFactor, sample);
            return;
        }

        for (int c = 0; c < sample.Length / plane; c++)
        {
            var s = sample.Slice(c * plane, plane);
            TensorPrimitives.Subtract(s, Mean[c % Mean.Length], s);
            TensorPrimitives.Multiply(s, ScalingFactor, s);
            TensorPrimitives.Divide(s, Std[c % Std.Length], s);
        }
    }
}
