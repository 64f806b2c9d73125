using System.Globalization;
using System.Numerics.Tensors;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Sdxl.Net.Denoising;

/// <summary>
/// The message of an <see cref="SdxlNumericException"/>: the likely causes of NaN or infinite values, from what the
/// request and the model are. Every config value that reaches the math (betas, sigmas, scaling factors, latents mean
/// and std) is validated at <c>Build()</c> and the request's numbers before generating, so those are ruled out and
/// the message says so; what remains is precision, extreme guidance or inputs, custom code, or broken weights.
/// </summary>
internal static class NumericDiagnosis
{
    private const string RuledOut = "(The model folder's configuration and the request's values were validated and are not the cause.)";

    /// <summary>Why denoising with <paramref name="stage"/> left non-finite latents.</summary>
    public static string ForLatents(string stage, TensorElementType unetType, GenerationRequest request, bool customScheduler)
    {
        var causes = new List<string>
        {
            unetType == TensorElementType.Float16
                ? "the model is float16, whose activations can overflow: use a float32 export, or lower GuidanceScale"
                : "the UNet's activations overflowed: lower GuidanceScale or try another scheduler",
        };
        if (request.GuidanceScale > 15)
        {
            causes.Add(string.Create(CultureInfo.InvariantCulture, $"GuidanceScale {request.GuidanceScale} is far above SDXL's usual 5 to 9"));
        }

        if (request.InitialLatents is { } given && TensorPrimitives.MaxMagnitude(given.Span) is var max && Math.Abs(max) > 10)
        {
            causes.Add(string.Create(CultureInfo.InvariantCulture, $"InitialLatents reach |x| = {Math.Abs(max)}, far beyond standard normal noise"));
        }

        if (customScheduler)
        {
            causes.Add("the scheduler is a custom IScheduler: check its Step");
        }

        causes.Add("the UNet's weights hold NaN or infinity (a damaged export)");
        return $"Denoising with the {stage} produced NaN or infinite latents. Likely causes: {string.Join("; ", causes)}. {RuledOut}";
    }

    /// <summary>Why a VAE (<paramref name="part"/>: "decoder" or "encoder") produced non-finite values from finite input.</summary>
    public static string ForVae(string part, TensorElementType vaeType)
    {
        if (vaeType == TensorElementType.Float16)
        {
            return $"The VAE {part} produced NaN or infinite values. The usual cause is an fp16 SDXL VAE, which overflows: "
                + $"use a float32 vae_{part} (export with --dtype fp32 or keep the VAE in fp32) or the fp16-fixed VAE (madebyollin/sdxl-vae-fp16-fix).";
        }

        return $"The VAE {part} produced NaN or infinite values from finite input although it runs in float32. Likely causes: "
            + $"its weights hold NaN or infinity (a damaged export), or its input was extreme (latents far from unit scale, from a custom scheduler or initial latents). {RuledOut}";
    }
}
