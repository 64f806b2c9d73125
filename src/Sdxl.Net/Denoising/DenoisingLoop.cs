using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using Sdxl.Net.Models;
using Sdxl.Net.Randomness;
using Sdxl.Net.Schedulers;

namespace Sdxl.Net.Denoising;

/// <summary>The conditioning of one denoising run, already batched for classifier-free guidance.</summary>
/// <param name="Hidden">Token embeddings [rows, seq, D]: with CFG the rows are [negative × B, positive × B].</param>
/// <param name="SequenceLength">Tokens per row.</param>
/// <param name="HiddenSize">Embedding width D.</param>
/// <param name="Pooled">Pooled embeddings [rows, P].</param>
/// <param name="TimeIds">Micro-conditioning [rows, K], in diffusers' row order.</param>
/// <param name="TimeIdsWidth">K.</param>
internal sealed record DenoisingConditioning(float[] Hidden, int SequenceLength, int HiddenSize, float[] Pooled, float[] TimeIds, int TimeIdsWidth);

/// <summary>
/// The denoising loop of diffusers' SDXL pipelines: scale the model input, run the UNet over the CFG batch, combine
/// with guidance (and rescale), step the scheduler. Buffers and the UNet's bound tensors are allocated once per run
/// and reused every step.
/// </summary>
internal static class DenoisingLoop
{
    /// <param name="unet">The UNet.</param>
    /// <param name="run">The scheduler run, with its begin index already set.</param>
    /// <param name="timesteps">The timesteps to visit (a window of the run's schedule).</param>
    /// <param name="latents">The latents [B, 4, h, w]; denoised in place.</param>
    /// <param name="batch">B.</param>
    /// <param name="latentHeight">h.</param>
    /// <param name="latentWidth">w.</param>
    /// <param name="conditioning">The CFG-batched conditioning.</param>
    /// <param name="guidanceScale">The guidance scale; CFG is on when it is above 1.</param>
    /// <param name="guidanceRescale">The guidance rescale factor.</param>
    /// <param name="random">The generation's random source (stochastic samplers).</param>
    /// <param name="onStep">Called after each step with (finished steps, total), counted in sampler steps: a second-order
    /// sampler's two model evaluations are one step, as in diffusers' progress bar.</param>
    /// <param name="runOptions">ONNX run options (terminated on cancellation).</param>
    /// <param name="cancellationToken">Checked before each step.</param>
    /// <param name="inpaint">Inpainting inputs, or <see langword="null"/>.</param>
    /// <param name="extensions">Extra UNet inputs and step observers, or <see langword="null"/> for none.</param>
    public static void Run(
        UNetModel unet,
        ISchedulerRun run,
        IReadOnlyList<float> timesteps,
        float[] latents,
        int batch,
        int latentHeight,
        int latentWidth,
        DenoisingConditioning conditioning,
        float guidanceScale,
        float guidanceRescale,
        IRandomSource random,
        Action<int, int>? onStep,
        RunOptions runOptions,
        CancellationToken cancellationToken,
        InpaintState? inpaint = null,
        DenoisingExtensions? extensions = null)
    {
        extensions ??= DenoisingExtensions.None;
        bool cfg = guidanceScale > 1;
        int rows = cfg ? 2 * batch : batch;
        int per = latents.Length / batch;
        int plane = latentHeight * latentWidth;
        int latentChannels = per / plane;
        bool nine = inpaint?.NineChannel == true;
        int inputPer = nine ? per + plane + per : per;
        var scaled = nine ? new float[latents.Length] : null;
        var blend = inpaint is { NineChannel: false } ? new float[latents.Length] : null;
        var guided = cfg ? new float[latents.Length] : null;

        // The UNet's tensors are created once for the run; the conditioning is written once, and each step writes
        // the model input into the bound sample tensor and reads the prediction from the bound output in place.
        var shape = new UNetShape(rows, inputPer / plane, latentChannels, latentHeight, latentWidth, conditioning.SequenceLength,
            conditioning.HiddenSize, conditioning.Pooled.Length / rows, conditioning.TimeIdsWidth);
        var extraInputs = new List<UNetExtraInput>();
        foreach (var provider in extensions.Inputs)
        {
            extraInputs.AddRange(provider.Declare(shape));
        }

        using var binding = unet.CreateBinding(shape, extraInputs);
        binding.SetConditioning(conditioning.Hidden, conditioning.Pooled, conditioning.TimeIds);
        foreach (var provider in extensions.Inputs)
        {
            provider.WriteFixed(binding);
        }

        var steps = new StepCounter(run.Order, timesteps.Count);

        for (int i = 0; i < timesteps.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            float t = timesteps[i];
            var modelInput = binding.Sample;

            // latent_model_input = cat([latents] * 2); scale_model_input is element-wise, so scale once and copy.
            if (nine)
            {
                // cat([scaled latents, mask, masked-image latents], dim=1) per row.
                run.ScaleModelInput(latents, t, scaled);
                for (int r = 0; r < rows; r++)
                {
                    int b = r % batch;
                    var row = modelInput.Slice(r * inputPer, inputPer);
                    scaled.AsSpan(b * per, per).CopyTo(row);
                    inpaint!.Mask.AsSpan(b * plane, plane).CopyTo(row[per..]);
                    inpaint.MaskedImageLatents!.AsSpan(b * per, per).CopyTo(row[(per + plane)..]);
                }
            }
            else
            {
                run.ScaleModelInput(latents, t, modelInput[..latents.Length]);
                if (cfg)
                {
                    modelInput[..latents.Length].CopyTo(modelInput[latents.Length..]);
                }
            }

            if (extensions.Inputs.Count > 0)
            {
                var stepInput = new DenoisingStepInput(i, timesteps.Count, t, binding.Sample, rows);
                foreach (var provider in extensions.Inputs)
                {
                    provider.WriteStep(stepInput, binding, runOptions);
                }
            }

            binding.Run(t, runOptions);
            var noisePred = binding.Output;

            if (cfg)
            {
                var uncond = noisePred[..latents.Length];
                var text = noisePred[latents.Length..];
                Guidance.Combine(uncond, text, guidanceScale, guided);
                if (guidanceRescale > 0)
                {
                    Guidance.Rescale(guided, text, batch, guidanceRescale);
                }

                run.Step(guided, t, latents, random);
            }
            else
            {
                run.Step(noisePred, t, latents, random);
            }

            if (blend is not null)
            {
                BlendKnownRegion(run, inpaint!, timesteps, i, latents, blend, batch, plane, latentChannels);
            }

            if (extensions.Observers.Count > 0)
            {
                var stepEnd = new DenoisingStepEnd(i, timesteps.Count, t, latents, batch, latentHeight, latentWidth);
                foreach (var observer in extensions.Observers)
                {
                    observer.OnStepEnd(stepEnd);
                }
            }

            if (onStep is not null && steps.Advance(i) is { } finished)
            {
                onStep(finished, steps.Total);
            }
        }

        Debug.Assert(latents.Length == batch * per, "latents keep their size");
    }

    private static void BlendKnownRegion(ISchedulerRun run, InpaintState inpaint, IReadOnlyList<float> timesteps, int i, float[] latents, float[] proper, int batch, int plane, int channels)
    {
        // init_latents_proper = image_latents, re-noised to the next timestep unless this was the last step.
        if (i < timesteps.Count - 1)
        {
            run.AddNoise(inpaint.ImageLatents, inpaint.Noise, timesteps[i + 1], proper);
        }
        else
        {
            inpaint.ImageLatents.AsSpan().CopyTo(proper);
        }

        // latents = (1 - mask) * proper + mask * latents
        for (int b = 0; b < batch; b++)
        {
            var mask = inpaint.Mask.AsSpan(b * plane, plane);
            for (int c = 0; c < channels; c++)
            {
                int o = ((b * channels) + c) * plane;
                for (int k = 0; k < plane; k++)
                {
                    float m = mask[k];
                    latents[o + k] = ((1 - m) * proper[o + k]) + (m * latents[o + k]);
                }
            }
        }
    }
}
