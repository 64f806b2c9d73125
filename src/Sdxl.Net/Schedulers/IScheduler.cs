using Sdxl.Net.Randomness;

namespace Sdxl.Net.Schedulers;

/// <summary>
/// A sampler configuration: immutable, shareable between threads and generations.
/// It creates one <see cref="ISchedulerRun"/> per generation, which holds all mutable state.
/// </summary>
/// <remarks>
/// Implement this interface (and <see cref="ISchedulerRun"/>) to plug a custom sampler into
/// <c>SdxlPipelineBuilder.WithScheduler(...)</c>. The split mirrors ImageSharp's processor/processor-per-image
/// design so one pipeline can serve concurrent requests without any state leaking between them.
/// </remarks>
public interface IScheduler
{
    /// <summary>A short display name, e.g. <c>"euler"</c> or <c>"dpmpp-2m-karras"</c>.</summary>
    string Name { get; }

    /// <summary>The number of model evaluations per step (1 for first-order samplers, 2 for Heun/KDPM2).</summary>
    int Order { get; }

    /// <summary>
    /// Creates the per-generation state for a schedule of <paramref name="inferenceSteps"/> steps
    /// (diffusers' <c>set_timesteps(N)</c>).
    /// </summary>
    ISchedulerRun CreateRun(int inferenceSteps);
}

/// <summary>
/// The mutable state of one generation's sampler: the timesteps, sigmas and solver history.
/// Not thread-safe; used by one generation only.
/// </summary>
/// <remarks>
/// All sample spans hold the whole batch, laid out as <c>[N, C, H, W]</c> in row-major order.
/// Arithmetic is element-wise, so implementations do not need the shape, only the length.
/// </remarks>
public interface ISchedulerRun
{
    /// <summary>The timesteps of the full schedule, in the order they are visited (length N × order, minus one for second-order samplers).</summary>
    IReadOnlyList<float> Timesteps { get; }

    /// <summary>The noise levels of the schedule as diffusers holds them (usually <c>Timesteps.Count + 1</c> values; KDPM2 keeps its interleaved list), or <see langword="null"/> when the sampler has none (DDIM, DDPM, PNDM, LCM).</summary>
    IReadOnlyList<float>? Sigmas { get; }

    /// <summary>The standard deviation of the initial noise (diffusers' <c>init_noise_sigma</c>).</summary>
    float InitNoiseSigma { get; }

    /// <summary>The number of model evaluations per step (1 or 2).</summary>
    int Order { get; }

    /// <summary>
    /// Starts the run at timestep index <paramref name="beginIndex"/> instead of 0 (diffusers' <c>set_begin_index</c>):
    /// used by img2img strength and by the refiner's <c>denoising_start</c>.
    /// </summary>
    void SetBeginIndex(int beginIndex);

    /// <summary>
    /// Writes the UNet input for <paramref name="timestep"/> (diffusers' <c>scale_model_input</c>) into <paramref name="destination"/>.
    /// <paramref name="sample"/> and <paramref name="destination"/> may be the same span.
    /// </summary>
    void ScaleModelInput(ReadOnlySpan<float> sample, float timestep, Span<float> destination);

    /// <summary>
    /// Advances <paramref name="sample"/> in place by one step (diffusers' <c>step(...).prev_sample</c>).
    /// </summary>
    /// <param name="modelOutput">The (guided) UNet prediction for <paramref name="sample"/> at <paramref name="timestep"/>.</param>
    /// <param name="timestep">The timestep being stepped, one of <see cref="Timesteps"/>.</param>
    /// <param name="sample">The current latents; replaced by the previous (less noisy) sample.</param>
    /// <param name="random">The generation's random source, used by stochastic samplers only.</param>
    void Step(ReadOnlySpan<float> modelOutput, float timestep, Span<float> sample, IRandomSource random);

    /// <summary>
    /// Writes <paramref name="original"/> noised to <paramref name="timestep"/> with <paramref name="noise"/>
    /// into <paramref name="destination"/> (diffusers' <c>add_noise</c>; img2img and inpainting).
    /// </summary>
    void AddNoise(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, float timestep, Span<float> destination);
}
