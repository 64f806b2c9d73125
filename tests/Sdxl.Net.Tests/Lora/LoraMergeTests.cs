using Sdxl.Net.Lora;
using Sdxl.Net.Tests.Synthetic;

namespace Sdxl.Net.Tests.Lora;

/// <summary>
/// LoRA files in each format applied to a synthetic model with real diffusers module names, against the same model
/// with the merged weights baked into its ONNX files by an independent double-precision merge (OnnxSharp protobuf
/// classes, not the library's reader).
/// </summary>
public sealed class LoraMergeTests
{
    /// <summary>float32 merge vs the baked model: the only difference is summation order (~1e-7 per weight).</summary>
    private const double Tolerance = 1e-4;

    [Theory]
    [InlineData("kohya", "F32")]
    [InlineData("kohya", "F16")]
    [InlineData("kohya-sgm", "F32")]
    [InlineData("peft", "BF16")]
    public async Task Lora_image_equals_the_image_of_the_baked_merged_model(string format, string dtype)
    {
        using var dir = new TempDirectory();
        var factors = LoraSyntheticModel.RandomFactors(seed: 1, dtype);
        var lora = Path.Combine(dir.Path, $"adapter-{format}.safetensors");
        LoraSyntheticModel.WriteLora(lora, factors, format, dtype);
        var baked = LoraSyntheticModel.Bake(Path.Combine(dir.Path, "baked"), [(factors, 0.8)]);

        using var withLora = SdxlPipeline.CreateBuilder().WithModel(LoraSyntheticModel.Folder).UseCpu().Build();
        using var bakedPipeline = SdxlPipeline.CreateBuilder().WithModel(baked).UseCpu().Build();
        var actual = await LoraSyntheticModel.GenerateAsync(withLora, [new LoraReference(lora, 0.8)]);
        var expected = await LoraSyntheticModel.GenerateAsync(bakedPipeline);
        var plain = await LoraSyntheticModel.GenerateAsync(withLora);

        Assert.True(LoraSyntheticModel.MaxAbsDifference(plain, expected) > 1e-3, "the adapter must change the image for this test to mean anything");
        double error = LoraSyntheticModel.MaxAbsDifference(actual, expected);
        Assert.True(error <= Tolerance, $"{format}/{dtype}: max abs error {error:E3} > {Tolerance:E0}");
    }

    [Fact]
    public async Task Builder_adapter_equals_the_baked_model_and_requests_add_to_it()
    {
        using var dir = new TempDirectory();
        var a = LoraSyntheticModel.RandomFactors(seed: 2);
        var b = LoraSyntheticModel.RandomFactors(seed: 3);
        var fileA = Path.Combine(dir.Path, "a.safetensors");
        var fileB = Path.Combine(dir.Path, "b.safetensors");
        LoraSyntheticModel.WriteLora(fileA, a, "kohya");
        LoraSyntheticModel.WriteLora(fileB, b, "peft");
        var bakedA = LoraSyntheticModel.Bake(Path.Combine(dir.Path, "baked-a"), [(a, 1.0)]);
        var bakedAb = LoraSyntheticModel.Bake(Path.Combine(dir.Path, "baked-ab"), [(a, 1.0), (b, -0.5)]);

        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(LoraSyntheticModel.Folder).UseCpu().AddLora(fileA).Build();
        using var onlyA = SdxlPipeline.CreateBuilder().WithModel(bakedA).UseCpu().Build();
        using var both = SdxlPipeline.CreateBuilder().WithModel(bakedAb).UseCpu().Build();

        Assert.True(LoraSyntheticModel.MaxAbsDifference(await LoraSyntheticModel.GenerateAsync(pipeline), await LoraSyntheticModel.GenerateAsync(onlyA)) <= Tolerance);
        var withB = await LoraSyntheticModel.GenerateAsync(pipeline, [new LoraReference(fileB, -0.5)]);
        Assert.True(LoraSyntheticModel.MaxAbsDifference(withB, await LoraSyntheticModel.GenerateAsync(both)) <= Tolerance);
    }

    [Fact]
    public async Task Weight_zero_gives_the_base_image_exactly()
    {
        using var dir = new TempDirectory();
        var lora = Path.Combine(dir.Path, "a.safetensors");
        LoraSyntheticModel.WriteLora(lora, LoraSyntheticModel.RandomFactors(seed: 4), "kohya");
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(LoraSyntheticModel.Folder).UseCpu().Build();

        var plain = await LoraSyntheticModel.GenerateAsync(pipeline);
        var zero = await LoraSyntheticModel.GenerateAsync(pipeline, [new LoraReference(lora, 0)]);
        Assert.Equal(plain, zero);
    }

    [Fact]
    public async Task Two_adapters_commute()
    {
        using var dir = new TempDirectory();
        var fileA = Path.Combine(dir.Path, "a.safetensors");
        var fileB = Path.Combine(dir.Path, "b.safetensors");
        LoraSyntheticModel.WriteLora(fileA, LoraSyntheticModel.RandomFactors(seed: 5), "kohya");
        LoraSyntheticModel.WriteLora(fileB, LoraSyntheticModel.RandomFactors(seed: 6), "kohya-sgm");
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(LoraSyntheticModel.Folder).UseCpu().Build();

        var ab = await LoraSyntheticModel.GenerateAsync(pipeline, [new LoraReference(fileA, 0.7), new LoraReference(fileB, 0.4)]);
        var ba = await LoraSyntheticModel.GenerateAsync(pipeline, [new LoraReference(fileB, 0.4), new LoraReference(fileA, 0.7)]);
        var onlyA = await LoraSyntheticModel.GenerateAsync(pipeline, [new LoraReference(fileA, 0.7)]);
        Assert.Equal(ab, ba);
        Assert.True(LoraSyntheticModel.MaxAbsDifference(ab, onlyA) > 1e-3, "the second adapter must contribute");
    }

    [Fact]
    public async Task Concurrent_requests_with_different_sets_never_see_each_others_weights()
    {
        using var dir = new TempDirectory();
        var fileA = Path.Combine(dir.Path, "a.safetensors");
        var fileB = Path.Combine(dir.Path, "b.safetensors");
        LoraSyntheticModel.WriteLora(fileA, LoraSyntheticModel.RandomFactors(seed: 7), "kohya");
        LoraSyntheticModel.WriteLora(fileB, LoraSyntheticModel.RandomFactors(seed: 8), "peft");
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(LoraSyntheticModel.Folder).UseCpu(intraOpThreads: 1).Build();
        IReadOnlyList<LoraReference>?[] sets = [null, [new LoraReference(fileA)], [new LoraReference(fileB)], [new LoraReference(fileA), new LoraReference(fileB, 0.5)]];

        var sequential = new List<float[]>();
        foreach (var set in sets)
        {
            sequential.Add(await LoraSyntheticModel.GenerateAsync(pipeline, set));
        }

        // Every set three times, interleaved, all at once.
        var tasks = Enumerable.Range(0, 3 * sets.Length).Select(i => LoraSyntheticModel.GenerateAsync(pipeline, sets[i % sets.Length])).ToArray();
        var concurrent = await Task.WhenAll(tasks);
        for (int i = 0; i < concurrent.Length; i++)
        {
            Assert.Equal(sequential[i % sets.Length], concurrent[i]);
        }

        for (int i = 1; i < sequential.Count; i++)
        {
            Assert.NotEqual(sequential[0], sequential[i]);
        }
    }

    [Fact]
    public async Task Result_records_the_adapters_and_counts_unmatched_keys()
    {
        using var dir = new TempDirectory();
        var factors = LoraSyntheticModel.RandomFactors(seed: 9);
        var lora = Path.Combine(dir.Path, "extra.safetensors");
        LoraSyntheticModel.WriteLora(lora, factors, "kohya");

        // Add a module the model does not have (as a kohya file trained on more blocks would).
        var tensors = new List<TestTensor>
        {
            new("lora_unet_down_blocks_7_attentions_0_proj_in.lora_down.weight", [4, 8], new float[32]),
            new("lora_unet_down_blocks_7_attentions_0_proj_in.lora_up.weight", [8, 4], new float[32]),
        };
        foreach (var f in factors)
        {
            var prefix = (f.Module.Component switch { "unet" => "lora_unet_", "text_encoder" => "lora_te1_", _ => "lora_te2_" }) + f.Module.Path.Replace('.', '_');
            tensors.Add(new TestTensor(prefix + ".lora_down.weight", f.DownShape, f.Down));
            tensors.Add(new TestTensor(prefix + ".lora_up.weight", f.UpShape, f.Up));
        }

        SafetensorsWriter.Write(lora, tensors);
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(LoraSyntheticModel.Folder).UseCpu().Build();
        var result = await pipeline.GenerateAsync(new GenerationRequest { Prompt = "x", Width = 64, Height = 64, Steps = 1, Seed = 1, Loras = [new LoraReference(lora, 0.5)] });

        var warning = Assert.Single(result.Warnings, w => w.Contains("extra.safetensors", StringComparison.Ordinal));
        Assert.Contains("1 of 10", warning, StringComparison.Ordinal);
        var applied = Assert.Single(result.Loras);
        Assert.Equal("extra.safetensors", applied.Name);
        Assert.Equal(LoraFileCache.Sha256Of(lora), applied.Sha256);
        Assert.Equal(0.5, applied.Weight);
        Assert.Equal(64, applied.Sha256.Length);
    }

    [Fact]
    public async Task A_lora_for_another_model_fails_clearly()
    {
        using var dir = new TempDirectory();
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(LoraSyntheticModel.Folder).UseCpu().Build();

        // SD 1.5 block names: nothing matches this model.
        var sd15 = Path.Combine(dir.Path, "sd15.safetensors");
        SafetensorsWriter.Write(sd15,
        [
            new("lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", [4, 320], new float[1280]),
            new("lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight", [320, 4], new float[1280]),
        ]);
        var e = await Assert.ThrowsAsync<ArgumentException>(() => LoraSyntheticModel.GenerateAsync(pipeline, [new LoraReference(sd15)]));
        Assert.Contains("none of its 1 modules matches", e.Message, StringComparison.Ordinal);
        Assert.Contains("sd15.safetensors", e.Message, StringComparison.Ordinal);

        // A module that exists, with another model's width.
        var wide = Path.Combine(dir.Path, "wide.safetensors");
        SafetensorsWriter.Write(wide,
        [
            new("lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_q.lora_down.weight", [4, 640], new float[2560]),
            new("lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_q.lora_up.weight", [640, 4], new float[2560]),
        ]);
        e = await Assert.ThrowsAsync<ArgumentException>(() => LoraSyntheticModel.GenerateAsync(pipeline, [new LoraReference(wide)]));
        Assert.Contains("gives ΔW [640, 640]", e.Message, StringComparison.Ordinal);

        // The pipeline still works afterwards.
        Assert.NotEmpty(await LoraSyntheticModel.GenerateAsync(pipeline));
    }
}
