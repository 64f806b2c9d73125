namespace Sdxl.Net.Randomness;

/// <summary>
/// A source of random numbers for one generation: initial latents, VAE posterior samples,
/// img2img noise and the noise of stochastic schedulers are all drawn from it, in diffusers' order.
/// </summary>
/// <remarks>
/// An instance is stateful and not thread-safe; the pipeline creates one per generation.
/// The default implementation, <c>TorchCpuGenerator</c>, reproduces
/// <c>torch.Generator("cpu").manual_seed(seed)</c> so that a seed means the same picture as in diffusers.
/// </remarks>
public interface IRandomSource
{
    /// <summary>
    /// Fills <paramref name="destination"/> with standard normal samples, exactly as one call of
    /// <c>torch.randn(shape, generator=g, dtype=torch.float32)</c> with <c>numel == destination.Length</c> would.
    /// </summary>
    void NextNormal(Span<float> destination);

    /// <summary>
    /// Fills <paramref name="destination"/> with uniform samples in [0, 1), exactly as one call of
    /// <c>torch.rand(shape, generator=g, dtype=torch.float32)</c> would.
    /// </summary>
    void NextUniform(Span<float> destination);
}
