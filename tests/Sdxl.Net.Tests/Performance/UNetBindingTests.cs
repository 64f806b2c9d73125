using Microsoft.ML.OnnxRuntime;
using Sdxl.Net.Models;
using Sdxl.Net.Runtime;
using Sdxl.Net.Synthetic;
using Sdxl.Net.Tests.Synthetic;

namespace Sdxl.Net.Tests.Performance;

/// <summary>
/// The I/O-bound UNet path (tensors created once, conditioning written once, sample and timestep written in place)
/// must give exactly what the per-call path gives, step after step.
/// </summary>
public sealed class UNetBindingTests
{
    [Theory]
    [InlineData(false, TimestepInput.FloatScalar)]
    [InlineData(true, TimestepInput.FloatScalar)]
    [InlineData(false, TimestepInput.Int64Vector1)]
    [InlineData(true, TimestepInput.FloatVector1)]
    public void Bound_runs_equal_per_call_runs_bit_for_bit(bool float16, TimestepInput timestep)
    {
        using var dir = new TempDirectory();
        SyntheticSdxlModel.Write(dir.Path, new SyntheticModelOptions { Float16 = float16, Timestep = timestep });
        using var folder = SdxlModelFolder.Open(dir.Path, ExecutionProviderOptions.Cpu);
        var unet = folder.UNet;
        const int rows = 2, h = 8, w = 8, seq = 77;
        int hidden = unet.CrossAttentionDim, pooled = unet.TextEmbedsDim, k = unet.TimeIdsWidth;
        var random = new Random(3);
        var hiddenStates = Fill(new float[rows * seq * hidden], random);
        var textEmbeds = Fill(new float[rows * pooled], random);
        var timeIds = Fill(new float[rows * k], random);
        var sample = new float[rows * 4 * h * w];
        var expected = new float[sample.Length];
        using var runOptions = new RunOptions();

        using var binding = unet.CreateBinding(new UNetShape(rows, 4, 4, h, w, seq, hidden, pooled, k));
        binding.SetConditioning(hiddenStates, textEmbeds, timeIds);
        foreach (var t in new[] { 999f, 999f, 500.5f, 1f })
        {
            Fill(sample, random);
            unet.Run(sample, [rows, 4, h, w], t, hiddenStates, [rows, seq, hidden], textEmbeds, [rows, pooled], timeIds, [rows, k], expected, runOptions);

            sample.CopyTo(binding.Sample);
            binding.Run(t, runOptions);

            Assert.Equal(expected.Length, binding.Output.Length);
            Assert.True(expected.AsSpan().SequenceEqual(binding.Output), $"timestep {t}: the bound run differs from the per-call run");
            Assert.Contains(binding.Output.ToArray(), v => v != 0f);
        }
    }

    [Fact]
    public void Conditioning_of_the_wrong_size_is_rejected_with_the_expected_shape()
    {
        using var dir = new TempDirectory();
        SyntheticSdxlModel.Write(dir.Path);
        using var folder = SdxlModelFolder.Open(dir.Path, ExecutionProviderOptions.Cpu);
        var unet = folder.UNet;
        using var binding = unet.CreateBinding(new UNetShape(2, 4, 4, 8, 8, 77, unet.CrossAttentionDim, unet.TextEmbedsDim, unet.TimeIdsWidth));
        var e = Assert.Throws<ArgumentException>(() => binding.SetConditioning(new float[10], new float[2 * unet.TextEmbedsDim], new float[2 * unet.TimeIdsWidth]));
        Assert.Contains("encoder_hidden_states", e.Message);
        Assert.Contains($"[2, 77, {unet.CrossAttentionDim}]", e.Message);
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
