using Microsoft.ML.OnnxRuntime;
using Sdxl.Net.Models;

namespace Sdxl.Net.Denoising;

/// <summary>One UNet input beyond the five every SDXL UNet takes, declared for a denoising run.</summary>
/// <param name="Name">The ONNX input name (e.g. <c>timestep_cond</c>, <c>down_block_0_additional_residual</c>).</param>
/// <param name="Dimensions">The tensor's dimensions for this run.</param>
internal readonly record struct UNetExtraInput(string Name, long[] Dimensions);

/// <summary>What a step's extra inputs may depend on: the step and the model input the UNet is about to see.</summary>
/// <param name="Index">The step's index in the visited timesteps (0-based).</param>
/// <param name="Count">The number of visited timesteps.</param>
/// <param name="Timestep">The timestep of this evaluation.</param>
/// <param name="ModelInput">The UNet's <c>sample</c> for all rows (scaled by the scheduler; CFG rows [negative, positive]).</param>
/// <param name="Rows">The UNet batch (2 × images with classifier-free guidance).</param>
internal readonly ref struct DenoisingStepInput(int Index, int Count, float Timestep, ReadOnlySpan<float> ModelInput, int Rows)
{
    public int Index { get; } = Index;

    public int Count { get; } = Count;

    public float Timestep { get; } = Timestep;

    public ReadOnlySpan<float> ModelInput { get; } = ModelInput;

    public int Rows { get; } = Rows;
}

/// <summary>
/// Supplies UNet inputs beyond <c>sample</c>, <c>timestep</c>, <c>encoder_hidden_states</c>, <c>text_embeds</c> and
/// <c>time_ids</c> for one denoising run: the "UNet extra inputs" seam (guidance embeddings of LCM UNets, ControlNet
/// residuals, inputs a future export adds). One instance serves one run; it writes into the run's bound tensors.
/// </summary>
internal interface IUNetInputProvider
{
    /// <summary>The inputs this provider writes for a run of <paramref name="shape"/>.</summary>
    IEnumerable<UNetExtraInput> Declare(UNetShape shape);

    /// <summary>Writes the inputs that stay fixed for the run (once, before the first step).</summary>
    void WriteFixed(UNetBinding binding);

    /// <summary>Writes the inputs that change per step, before each UNet evaluation.</summary>
    void WriteStep(in DenoisingStepInput step, UNetBinding binding, RunOptions runOptions);
}

/// <summary>The state after one denoising step, for observers.</summary>
/// <param name="Index">The finished step's index (0-based).</param>
/// <param name="Count">The number of visited timesteps.</param>
/// <param name="Timestep">The step's timestep.</param>
/// <param name="Latents">The latents [B, C, h, w] after the step. Observers may read them and, when documented as such, replace them in place.</param>
/// <param name="Batch">B.</param>
/// <param name="LatentHeight">h.</param>
/// <param name="LatentWidth">w.</param>
internal readonly ref struct DenoisingStepEnd(int Index, int Count, float Timestep, Span<float> Latents, int Batch, int LatentHeight, int LatentWidth)
{
    public int Index { get; } = Index;

    public int Count { get; } = Count;

    public float Timestep { get; } = Timestep;

    public Span<float> Latents { get; } = Latents;

    public int Batch { get; } = Batch;

    public int LatentHeight { get; } = LatentHeight;

    public int LatentWidth { get; } = LatentWidth;
}

/// <summary>
/// Reads (and, for advanced uses, replaces) the latents after each step: the "step observers" seam (progress,
/// previews, streaming, step-end callbacks, serving events). Called on the generation's thread; keep it cheap or hand
/// work off.
/// </summary>
internal interface IDenoisingObserver
{
    /// <summary>Called after each step of a denoising loop.</summary>
    void OnStepEnd(in DenoisingStepEnd step);
}

/// <summary>What plugs into one denoising run: extra UNet inputs and step observers.</summary>
/// <param name="Inputs">Providers of UNet inputs beyond the standard five.</param>
/// <param name="Observers">Observers called after each step, in order.</param>
internal sealed record DenoisingExtensions(IReadOnlyList<IUNetInputProvider> Inputs, IReadOnlyList<IDenoisingObserver> Observers)
{
    /// <summary>Nothing plugged in.</summary>
    public static readonly DenoisingExtensions None = new([], []);
}
