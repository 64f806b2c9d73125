using Microsoft.ML.OnnxRuntime;
using Sdxl.Net.Models;
using Sdxl.Net.Randomness;
using Sdxl.Net.Schedulers;

namespace Sdxl.Net.Denoising;

/// <summary>
/// One request's part of a batched denoising run: everything that makes its images its own. Each group has its own
/// scheduler run and random source, so its arithmetic is exactly that of the request run alone; only the UNet call is
/// shared.
/// </summary>
internal sealed class RowGroup
{
    /// <summary>The group's latents [B, C, h, w], denoised in place.</summary>
    public required float[] Latents { get; init; }

    /// <summary>B: the group's images.</summary>
    public required int Images { get; init; }

    /// <summary>The group's scheduler run (begin index set).</summary>
    public required ISchedulerRun Run { get; init; }

    /// <summary>The group's random source.</summary>
    public required IRandomSource Random { get; init; }

    /// <summary>The group's conditioning, laid out as its lone run would lay it out ([uncond × B, cond × B] with CFG).</summary>
    public required DenoisingConditioning Conditioning { get; init; }

    /// <summary>The group's guidance scale.</summary>
    public required float GuidanceScale { get; init; }

    /// <summary>The group's guidance rescale.</summary>
    public required float GuidanceRescale { get; init; }

    /// <summary>Cancels the group alone.</summary>
    public CancellationToken CancellationToken { get; init; }

    /// <summary>Called after each step with (finished steps, total).</summary>
    public Action<int, int>? OnStep { get; init; }

    /// <summary>Whether the group is still denoising (false once cancelled).</summary>
    public bool Active { get; set; } = true;

    /// <summary>Scratch for the guided prediction.</summary>
    internal float[]? Guided { get; set; }
}

/// <summary>
/// Denoises several <see cref="RowGroup"/>s with one UNet call per step: the unconditional rows of every group come
/// first, then the conditional rows (diffusers' CFG layout, per group). A cancelled group leaves before the next step
/// and the UNet batch shrinks; the others are not touched.
/// </summary>
internal static class RowBatchLoop
{
    public static void Run(UNetModel unet, IReadOnlyList<RowGroup> groups, IReadOnlyList<float> timesteps, int latentHeight, int latentWidth,
        bool cfg, RunOptions runOptions, CancellationToken cancellationToken)
    {
        var active = new List<RowGroup>(groups.Count);
        UNetBinding? binding = null;
        try
        {
            for (int i = 0; i < timesteps.Count; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                bool changed = binding is null;
                foreach (var g in groups)
                {
                    if (g.Active && g.CancellationToken.IsCancellationRequested)
                    {
                        g.Active = false;
                        changed = true;
                    }
                }

                if (changed)
                {
                    active.Clear();
                    foreach (var g in groups)
                    {
                        if (g.Active)
                        {
                            active.Add(g);
                        }
                    }

                    binding?.Dispose();
                    binding = null;
                    if (active.Count == 0)
                    {
                        return;
                    }

                    binding = Bind(unet, active, latentHeight, latentWidth, cfg);
                }

                Step(binding!, active, timesteps[i], cfg, runOptions);
                foreach (var g in active)
                {
                    g.OnStep?.Invoke(i + 1, timesteps.Count);
                }
            }
        }
        finally
        {
            binding?.Dispose();
        }
    }

    private static void Step(UNetBinding binding, List<RowGroup> active, float t, bool cfg, RunOptions runOptions)
    {
        int per = binding.Shape.OutputChannels * binding.Shape.LatentHeight * binding.Shape.LatentWidth;
        int images = cfg ? binding.Shape.Rows / 2 : binding.Shape.Rows;
        var sample = binding.Sample;
        int offset = 0;
        foreach (var g in active)
        {
            // latent_model_input = cat([latents] * 2), scaled once and copied, as the lone run does.
            var uncondInput = sample.Slice(offset * per, g.Latents.Length);
            g.Run.ScaleModelInput(g.Latents, t, uncondInput);
            if (cfg)
            {
                uncondInput.CopyTo(sample.Slice((images + offset) * per, g.Latents.Length));
            }

            offset += g.Images;
        }

        binding.Run(t, runOptions);
        var output = binding.Output;
        offset = 0;
        foreach (var g in active)
        {
            if (cfg)
            {
                var uncond = output.Slice(offset * per, g.Latents.Length);
                var text = output.Slice((images + offset) * per, g.Latents.Length);
                g.Guided ??= new float[g.Latents.Length];
                Guidance.Combine(uncond, text, g.GuidanceScale, g.Guided);
                if (g.GuidanceRescale > 0)
                {
                    Guidance.Rescale(g.Guided, text, g.Images, g.GuidanceRescale);
                }

                g.Run.Step(g.Guided, t, g.Latents, g.Random);
            }
            else
            {
                g.Run.Step(output.Slice(offset * per, g.Latents.Length), t, g.Latents, g.Random);
            }

            offset += g.Images;
        }
    }

    private static UNetBinding Bind(UNetModel unet, List<RowGroup> active, int latentHeight, int latentWidth, bool cfg)
    {
        int images = 0;
        foreach (var g in active)
        {
            images += g.Images;
        }

        var first = active[0].Conditioning;
        int plane = latentHeight * latentWidth;
        int channels = active[0].Latents.Length / active[0].Images / plane;
        int halves = cfg ? 2 : 1;
        int rows = images * halves;
        int pooledWidth = first.Pooled.Length / (active[0].Images * halves);
        var hidden = new float[rows * first.SequenceLength * first.HiddenSize];
        var pooled = new float[rows * pooledWidth];
        var timeIds = new float[rows * first.TimeIdsWidth];

        // Row r of half h of a group goes to row h × images + offset + r of the batch.
        int offset = 0;
        foreach (var g in active)
        {
            var c = g.Conditioning;
            for (int h = 0; h < halves; h++)
            {
                CopyRows(c.Hidden, first.SequenceLength * first.HiddenSize, h * g.Images, g.Images, hidden, (h * images) + offset);
                CopyRows(c.Pooled, pooledWidth, h * g.Images, g.Images, pooled, (h * images) + offset);
                CopyRows(c.TimeIds, first.TimeIdsWidth, h * g.Images, g.Images, timeIds, (h * images) + offset);
            }

            offset += g.Images;
        }

        var shape = new UNetShape(rows, channels, channels, latentHeight, latentWidth, first.SequenceLength, first.HiddenSize, pooledWidth, first.TimeIdsWidth);
        var binding = unet.CreateBinding(shape);
        try
        {
            binding.SetConditioning(hidden, pooled, timeIds);
        }
        catch
        {
            binding.Dispose();
            throw;
        }

        return binding;
    }

    private static void CopyRows(float[] source, int width, int firstRow, int count, float[] destination, int destinationRow) =>
        source.AsSpan(firstRow * width, count * width).CopyTo(destination.AsSpan(destinationRow * width));
}
