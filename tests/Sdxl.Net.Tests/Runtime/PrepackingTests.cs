using Microsoft.ML.OnnxRuntime;
using Sdxl.Net.Runtime;
using Sdxl.Net.Synthetic;
using Sdxl.Net.Tests.Synthetic;
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

    /// <summary>
    /// The option reaches ONNX Runtime. Observable through a user-owned weight buffer: a prepacked MatMul keeps the
    /// packed copy it made at creation, so rewriting the buffer afterwards changes nothing; without prepacking the
    /// kernel reads the buffer on every run, so the rewrite shows in the next output (y = x·W with x = 1 gives the
    /// column sums of W: 64 before, 128 after doubling every entry of a ones matrix).
    /// </summary>
    [Theory]
    [InlineData(true, 64f)]
    [InlineData(false, 128f)]
    public void Prepacking_decides_whether_a_session_reads_its_weights_after_creation(bool prepack, float expectedAfterRewrite)
    {
        const int n = 64;
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "model.onnx");
        var graph = new OnnxGraphBuilder("matmul", new WeightRandom(1), float16Io: false);
        var x = graph.FloatInput("x", 1, n);
        var w = graph.Filled("w", 1f, n, n);
        graph.FloatOutput("y", graph.Node("MatMul", [x, w]), 1, n);
        graph.Save(path, externalData: true);

        var weights = new float[n * n];
        Array.Fill(weights, 1f);
        using var weightValue = OrtValue.CreateTensorValueFromMemory(weights, [n, n]);
        var customization = new SessionCustomization([new("w", weightValue)], disablePrepacking: false);
        var options = ExecutionProviderOptions.Cpu with { PrepackWeights = prepack };
        using var session = SessionFactory.Create(path, "probe", options, out _, customization);

        var input = new float[n];
        Array.Fill(input, 1f);
        float Run()
        {
            using var inputValue = OrtValue.CreateTensorValueFromMemory(input, [1, n]);
            using var outputs = session.Run(new RunOptions(), ["x"], [inputValue], ["y"]);
            return outputs[0].GetTensorDataAsSpan<float>()[0];
        }

        Assert.Equal(n, Run());
        Array.Fill(weights, 2f);
        Assert.Equal(expectedAfterRewrite, Run());
    }
}
