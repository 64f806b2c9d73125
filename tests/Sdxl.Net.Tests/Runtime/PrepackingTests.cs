using Sdxl.Net.Runtime;
using Sdxl.Net.Tests.Reliability;

namespace Sdxl.Net.Tests.Runtime;

/// <summary>
/// <see cref="ExecutionProviderOptions.PrepackWeights"/> only changes how ONNX Runtime lays weights out for its kernels,
/// never the picture: the reference is the same generation with the default (prepacked) sessions.
/// </summary>
public sealed class PrepackingTests
{
    [Theory]
    [InlineData(MemoryMode.KeepLoaded)]
    [InlineData(MemoryMode.LoadPerPhase)]
    public async Task Weights_not_prepacked_give_the_prepacked_image(MemoryMode mode)
    {
        var request = Faults.Tiny(seed: 7);
        using var prepacked = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get())
            .UseExecutionProvider(ExecutionProviderOptions.Cpu with { MemoryMode = mode }).Build();
        using var mapped = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get())
            .UseExecutionProvider(ExecutionProviderOptions.Cpu with { MemoryMode = mode, PrepackWeights = false }).Build();
        var expected = (await prepacked.GenerateAsync(request)).Images[0].Pixels.ToArray();
        var actual = (await mapped.GenerateAsync(request)).Images[0].Pixels.ToArray();

        // Packed and unpacked GEMM kernels may sum in another order: the images agree to float32 rounding.
        Assert.Equal(expected.Length, actual.Length);
        float worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            worst = Math.Max(worst, Math.Abs(expected[i] - actual[i]));
        }

        Assert.True(worst < 1e-4f, $"max |prepacked - not prepacked| = {worst}");
    }
}
