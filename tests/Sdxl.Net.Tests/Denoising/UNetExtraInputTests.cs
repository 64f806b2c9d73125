using Microsoft.ML.OnnxRuntime;
using Sdxl.Net.Denoising;
using Sdxl.Net.Models;
using Sdxl.Net.Runtime;

namespace Sdxl.Net.Tests.Denoising;

/// <summary>
/// The "UNet extra inputs" seam: a UNet that takes more than the standard five inputs is bound with what a provider
/// declares, and refused clearly when nothing supplies an input.
/// </summary>
public sealed class UNetExtraInputTests
{
    // The golden LCM variant adds a bias-free projection of timestep_cond to the time embedding (golden README), so
    // with timestep_cond = 0 it must equal the base UNet on the same inputs: an independent reference for the
    // extra-input path. A non-zero guidance embedding must change the prediction.
    [TinySdxlFact]
    public void An_extra_input_is_bound_and_fed_to_the_model()
    {
        var tiny = TestPaths.TinySdxl!;
        using var baseUnet = new UNetModel(Path.Combine(tiny, "tiny-sdxl-base", "unet", "model.onnx"), ExecutionProviderOptions.Cpu);
        using var lcmUnet = new UNetModel(Path.Combine(tiny, "variants", "lcm", "unet", "model.onnx"), ExecutionProviderOptions.Cpu);
        var spec = Assert.Single(lcmUnet.ExtraInputs);
        Assert.Equal("timestep_cond", spec.Key);
        int condDim = spec.Value.Dimensions[1];
        Assert.Empty(baseUnet.ExtraInputs);

        const int rows = 2, h = 8, w = 8, seq = 77;
        var shape = new UNetShape(rows, 4, 4, h, w, seq, baseUnet.CrossAttentionDim, baseUnet.TextEmbedsDim, baseUnet.TimeIdsWidth);
        var random = new Random(5);
        var hidden = Fill(new float[rows * seq * shape.HiddenSize], random);
        var pooled = Fill(new float[rows * shape.PooledSize], random);
        var timeIds = Fill(new float[rows * shape.TimeIdsWidth], random);
        var sample = Fill(new float[rows * 4 * h * w], random);
        using var runOptions = new RunOptions();

        float[] RunBase()
        {
            using var binding = baseUnet.CreateBinding(shape);
            binding.SetConditioning(hidden, pooled, timeIds);
            sample.CopyTo(binding.Sample);
            binding.Run(500f, runOptions);
            return binding.Output.ToArray();
        }

        float[] RunLcm(float[] cond)
        {
            using var binding = lcmUnet.CreateBinding(shape, [new UNetExtraInput("timestep_cond", [rows, condDim])]);
            binding.SetConditioning(hidden, pooled, timeIds);
            binding.WriteExtraInput("timestep_cond", cond);
            sample.CopyTo(binding.Sample);
            binding.Run(500f, runOptions);
            return binding.Output.ToArray();
        }

        var expected = RunBase();
        var zero = RunLcm(new float[rows * condDim]);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - zero[i]) <= 1e-5f, $"element {i}: base {expected[i]}, LCM with zero guidance embedding {zero[i]}");
        }

        var guided = RunLcm(Fill(new float[rows * condDim], random));
        Assert.Contains(Enumerable.Range(0, expected.Length), i => Math.Abs(expected[i] - guided[i]) > 1e-3f);
    }

    [TinySdxlFact]
    public void A_model_input_that_nothing_supplies_is_refused_by_name()
    {
        var tiny = TestPaths.TinySdxl!;
        using var lcmUnet = new UNetModel(Path.Combine(tiny, "variants", "lcm", "unet", "model.onnx"), ExecutionProviderOptions.Cpu);
        var shape = new UNetShape(1, 4, 4, 8, 8, 77, lcmUnet.CrossAttentionDim, lcmUnet.TextEmbedsDim, lcmUnet.TimeIdsWidth);
        var e = Assert.Throws<SdxlModelException>(() => lcmUnet.CreateBinding(shape));
        Assert.Contains("timestep_cond", e.Message);
        Assert.Contains("LCM", e.Message);

        var extra = Assert.Throws<SdxlModelException>(() => lcmUnet.CreateBinding(shape,
            [new UNetExtraInput("timestep_cond", [1, 256]), new UNetExtraInput("mid_block_additional_residual", [1, 48, 4, 4])]));
        Assert.Contains("mid_block_additional_residual", extra.Message);
    }

    private static float[] Fill(float[] values, Random random)
    {
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = (float)((random.NextDouble() * 2) - 1);
        }

        return values;
    }
}
