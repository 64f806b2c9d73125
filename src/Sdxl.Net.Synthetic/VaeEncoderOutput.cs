namespace Sdxl.Net.Synthetic;

/// <summary>What the VAE encoder returns, which differs between exporters and exporter versions.</summary>
public enum VaeEncoderOutput
{
    /// <summary>
    /// <c>latent_parameters</c> [B, 8, H/8, W/8]: the mean and log-variance of the latent distribution, concatenated on
    /// the channel axis; the caller samples. Written by optimum 1.23 and later.
    /// </summary>
    LatentParameters,

    /// <summary>
    /// <c>latent_sample</c> [B, 4, H/8, W/8]: a latent already taken from the distribution inside the graph. Written by
    /// optimum before 1.23 and by Microsoft Olive.
    /// </summary>
    LatentSample,
}
