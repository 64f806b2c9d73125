using Microsoft.ML.OnnxRuntime;
using Sdxl.Net.Denoising;
using Sdxl.Net.Models;

namespace Sdxl.Net.Distilled;

/// <summary>
/// The guidance embedding of guidance-distilled UNets (LCM-SDXL): the UNet input <c>timestep_cond</c> that replaces
/// classifier-free guidance, diffusers' <c>get_guidance_scale_embedding(w − 1, time_cond_proj_dim)</c> repeated per row.
/// </summary>
internal sealed class GuidanceEmbedding(float guidanceScale, int dimension) : IUNetInputProvider
{
    /// <summary>The ONNX input name optimum gives the guidance embedding.</summary>
    public const string InputName = "timestep_cond";

    private int _rows;

    /// <summary>
    /// <c>get_guidance_scale_embedding</c> for one value of w (VDM's sinusoidal embedding of 1000·w), in float32 as torch
    /// computes it: <c>[sin(1000 w · f_k), cos(1000 w · f_k)]</c> with <c>f_k = exp(−k · ln(10000) / (half − 1))</c>,
    /// zero-padded to an odd <paramref name="dimension"/>.
    /// </summary>
    public static float[] Compute(float w, int dimension)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dimension, 1);
        var embedding = new float[dimension];
        int half = dimension / 2;
        if (half == 0)
        {
            return embedding;
        }

        float scaled = w * 1000f;

        // torch.log(torch.tensor(10000.0)) / (half_dim - 1): float32 throughout (half_dim = 1 divides by zero → inf, as torch).
        float step = MathF.Log(10000f) / (half - 1);
        for (int k = 0; k < half; k++)
        {
            float frequency = TorchExp(k * -step);
            float angle = scaled * frequency;
            embedding[k] = MathF.Sin(angle);
            embedding[half + k] = MathF.Cos(angle);
        }

        return embedding;
    }

    /// <summary>
    /// torch's vectorized float32 <c>exp</c> on CPU (SLEEF's <c>expf</c>, 1-ulp variant, with fused multiply-adds as its
    /// AVX2 build): Cody–Waite reduction by ln 2, a degree-7 polynomial, scaling by 2^q. Matching it to the ulp matters
    /// here because the embedding multiplies the frequency by 1000·w before sin/cos, where one ulp moves the result by ~5e-4.
    /// </summary>
    internal static float TorchExp(float d)
    {
        const float inverseLn2 = 1.442695040888963407359924681001892137426645954152985934135449406931f;
        const float ln2Upper = 0.693145751953125f;
        const float ln2Lower = 1.428606765330187045e-06f;
        if (d < -104f)
        {
            return 0f;
        }

        if (d > 1e38f)
        {
            return float.PositiveInfinity;
        }

        int q = (int)MathF.Round(d * inverseLn2, MidpointRounding.ToEven);
        float s = MathF.FusedMultiplyAdd(q, -ln2Upper, d);
        s = MathF.FusedMultiplyAdd(q, -ln2Lower, s);
        float u = 0.000198527617612853646278381f;
        u = MathF.FusedMultiplyAdd(u, s, 0.00139304355252534151077271f);
        u = MathF.FusedMultiplyAdd(u, s, 0.00833336077630519866943359f);
        u = MathF.FusedMultiplyAdd(u, s, 0.0416664853692054748535156f);
        u = MathF.FusedMultiplyAdd(u, s, 0.166666671633720397949219f);
        u = MathF.FusedMultiplyAdd(u, s, 0.5f);
        u = 1f + MathF.FusedMultiplyAdd(s * s, u, s);
        return MathF.ScaleB(u, q);
    }

    /// <summary>
    /// The embedding's width for <paramref name="unet"/>: the static second dimension of its <c>timestep_cond</c> input,
    /// else the config's <c>time_cond_proj_dim</c>; <see langword="null"/> when the UNet takes no guidance embedding.
    /// </summary>
    /// <exception cref="SdxlModelException">The UNet takes <c>timestep_cond</c> but its width is known from neither source.</exception>
    public static int? DimensionOf(UNetModel unet, int? configuredDimension)
    {
        if (!unet.ExtraInputs.TryGetValue(InputName, out var spec))
        {
            return null;
        }

        if (spec.Rank != 2)
        {
            throw new SdxlModelException($"unet: input '{InputName}' must be [batch, time_cond_proj_dim]; found {spec}. File: '{unet.ModelPath}'.");
        }

        int dimension = spec.Dimensions[1] > 0 ? spec.Dimensions[1] : configuredDimension ?? -1;
        if (dimension < 1)
        {
            throw new SdxlModelException($"unet: input '{InputName}' has a dynamic width and unet/config.json sets no time_cond_proj_dim. File: '{unet.ModelPath}'.");
        }

        return dimension;
    }

    /// <inheritdoc />
    public IEnumerable<UNetExtraInput> Declare(UNetShape shape)
    {
        _rows = shape.Rows;
        return [new UNetExtraInput(InputName, [shape.Rows, dimension])];
    }

    /// <inheritdoc />
    public void WriteFixed(UNetBinding binding)
    {
        // diffusers: torch.tensor(guidance_scale - 1).repeat(batch_size * num_images_per_prompt); the same every step.
        var row = Compute((float)(guidanceScale - 1.0), dimension);
        var values = new float[_rows * dimension];
        Batching.Repeat(row, _rows, values, 0);
        binding.WriteExtraInput(InputName, values);
    }

    /// <inheritdoc />
    public void WriteStep(in DenoisingStepInput step, UNetBinding binding, RunOptions runOptions)
    {
    }
}
