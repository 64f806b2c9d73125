using Microsoft.Extensions.Logging.Abstractions;
using Sdxl.Net.Lora;
using Sdxl.Net.Models;
using Sdxl.Net.Runtime;
using Sdxl.Net.Tests.Synthetic;

namespace Sdxl.Net.Tests.Lora;

/// <summary>Switching adapter sets on the CPU by rewriting an idle set's merged weights in place.</summary>
public sealed class LoraSwitchingTests
{
    private static readonly LoraSyntheticModel.Module[] Linear = LoraSyntheticModel.Modules.Where(m => !m.Node.EndsWith("/Conv", StringComparison.Ordinal)).ToArray();

    [Fact]
    public async Task Switching_back_and_forth_gives_each_sets_own_image()
    {
        using var dir = new TempDirectory();
        var fileA = Path.Combine(dir.Path, "a.safetensors");
        var fileB = Path.Combine(dir.Path, "b.safetensors");
        LoraSyntheticModel.WriteLora(fileA, LoraSyntheticModel.RandomFactors(seed: 31, modules: Linear), "kohya");
        LoraSyntheticModel.WriteLora(fileB, LoraSyntheticModel.RandomFactors(seed: 32, modules: Linear), "peft");

        // References: a new pipeline per set (every session created fresh with that set's weights).
        var expected = new Dictionary<string, float[]>();
        foreach (var file in new[] { fileA, fileB })
        {
            using var fresh = SdxlPipeline.CreateBuilder().WithModel(LoraSyntheticModel.Folder).UseCpu().Build();
            expected[file] = await LoraSyntheticModel.GenerateAsync(fresh, [new LoraReference(file)]);
        }

        Assert.NotEqual(expected[fileA], expected[fileB]);
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(LoraSyntheticModel.Folder).UseCpu().Build();
        var plain = await LoraSyntheticModel.GenerateAsync(pipeline);
        foreach (var file in new[] { fileA, fileB, fileA, fileB, fileA })
        {
            Assert.Equal(expected[file], await LoraSyntheticModel.GenerateAsync(pipeline, [new LoraReference(file)]));
        }

        Assert.Equal(plain, await LoraSyntheticModel.GenerateAsync(pipeline));
    }

    [Fact]
    public void An_idle_set_is_rewritten_in_place_and_a_set_in_use_never_is()
    {
        using var dir = new TempDirectory();
        var fileA = Path.Combine(dir.Path, "a.safetensors");
        var fileB = Path.Combine(dir.Path, "b.safetensors");
        var fileConv = Path.Combine(dir.Path, "conv.safetensors");
        LoraSyntheticModel.WriteLora(fileA, LoraSyntheticModel.RandomFactors(seed: 33, modules: Linear), "kohya");
        LoraSyntheticModel.WriteLora(fileB, LoraSyntheticModel.RandomFactors(seed: 34, modules: Linear), "kohya");
        LoraSyntheticModel.WriteLora(fileConv, LoraSyntheticModel.RandomFactors(seed: 35), "kohya");
        var options = ExecutionProviderOptions.Cpu;
        using var folder = SdxlModelFolder.Open(LoraSyntheticModel.Folder, options);
        using var cache = new LoraSessionCache(folder, options, [], new LoraTargets(LoraSyntheticModel.Folder), new LoraFileCache(), NullLogger.Instance);

        UNetModel unetA;
        using (var a = cache.Acquire([new LoraReference(fileA)]))
        {
            unetA = a.Model.UNet;
            Assert.NotSame(folder.UNet, unetA);

            // A is in use: B gets sessions of its own.
            using var b = cache.Acquire([new LoraReference(fileB)]);
            Assert.NotSame(unetA, b.Model.UNet);
            Assert.Equal(2, cache.LoadedSets);
        }

        // Both idle now; one stays loaded (IdleCapacity 1). The next set reuses the idle sessions.
        Assert.Equal(1, cache.LoadedSets);
        using (var again = cache.Acquire([new LoraReference(fileA, 0.5)]))
        {
            Assert.Equal(1, cache.LoadedSets);
            Assert.Equal(0.5, Assert.Single(again.Applied).Weight);
        }

        // A set with convolutions cannot be switched in place (graph optimizations may copy Conv weights).
        using var conv = cache.Acquire([new LoraReference(fileConv)]);
        Assert.Equal(2, cache.LoadedSets);
    }
}
