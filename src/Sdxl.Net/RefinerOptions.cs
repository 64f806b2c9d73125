namespace Sdxl.Net;

/// <summary>How the refiner stage runs (SDXL's ensemble of expert denoisers).</summary>
public sealed record RefinerOptions
{
    /// <summary>
    /// The fraction of the schedule the base model denoises (diffusers' <c>denoising_end</c> on the base and
    /// <c>denoising_start</c> on the refiner); the refiner takes the rest. Default 0.8, in (0, 1).
    /// </summary>
    public double HighNoiseFraction { get; init; } = 0.8;

    /// <summary>The aesthetic score the refiner is conditioned on (diffusers default 6.0).</summary>
    public double AestheticScore { get; init; } = 6.0;

    /// <summary>The negative aesthetic score (diffusers default 2.5).</summary>
    public double NegativeAestheticScore { get; init; } = 2.5;

    /// <summary>Decode with the refiner folder's VAE when it has one (as diffusers' refiner pipeline does); otherwise the base VAE.</summary>
    public bool UseRefinerVae { get; init; } = true;
}
