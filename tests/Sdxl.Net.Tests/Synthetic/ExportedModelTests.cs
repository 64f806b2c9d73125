using Onnx;
using Sdxl.Net.Synthetic.Export;

namespace Sdxl.Net.Tests.Synthetic;

/// <summary>The synthetic folders with the real SDXL network structure (the ones `sdxl synth --size full` writes).</summary>
public sealed class ExportedModelTests
{
    // The parameter counts of stabilityai/stable-diffusion-xl-base-1.0's components as diffusers/transformers report
    // them (sum of p.numel() over each model's parameters): an independent check that every module of the real
    // structure is present with its real shape.
    [Fact]
    public void The_base_architecture_has_sdxl_base_parameter_counts()
    {
        var counts = ExportedSdxlModel.CountParameters(SdxlArchitecture.Base);
        Assert.Equal(2_567_463_684L, counts["unet"]);
        Assert.Equal(123_060_480L, counts["text_encoder"]);
        Assert.Equal(694_659_840L, counts["text_encoder_2"]);
        Assert.Equal(83_653_863L, counts["vae_encoder"] + counts["vae_decoder"]);
    }

    [Fact]
    public void The_refiner_architecture_conditions_on_big_g_alone()
    {
        var counts = ExportedSdxlModel.CountParameters(SdxlArchitecture.Refiner);
        Assert.False(counts.ContainsKey("text_encoder"));
        Assert.Equal(694_659_840L, counts["text_encoder_2"]);
        Assert.Equal(1280, SdxlArchitecture.Refiner.CrossAttentionDim);
        Assert.Equal(5, SdxlArchitecture.Refiner.TimeIdsWidth);
        Assert.InRange(counts["unet"], 2_200_000_000L, 2_400_000_000L);
    }

    [Fact]
    public async Task A_miniature_folder_loads_and_generates_through_the_pipeline()
    {
        using var dir = new TempDirectory();
        ExportedSdxlModel.Write(dir.Path, new ExportedModelOptions { Architecture = SdxlArchitecture.Miniature });
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(dir.Path).UseCpu().Build();
        Assert.Equal(32, pipeline.PixelMultiple);
        var result = await pipeline.GenerateAsync(new GenerationRequest { Prompt = "a lighthouse", Steps = 2, Seed = 3, Width = 64, Height = 64 });
        var image = Assert.Single(result.Images);
        Assert.Equal(64, image.Width);
        Assert.All(image.Pixels.ToArray(), v => Assert.True(float.IsFinite(v)));
        Assert.Contains(image.Pixels.ToArray(), v => v is > 0.01f and < 0.99f);
    }

    // The layout a real optimum export has, which LoRA mapping and external-data loading rely on: module-path node
    // names, linear weights as transposed onnx::MatMul_* initializers, state_dict names elsewhere, and every large
    // tensor in model.onnx_data at a 4 KiB-aligned offset.
    [Fact]
    public void Graphs_carry_export_names_and_aligned_external_data()
    {
        using var dir = new TempDirectory();
        ExportedSdxlModel.Write(dir.Path, new ExportedModelOptions { Architecture = SdxlArchitecture.Miniature, IncludeVaeEncoder = false });
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(dir.Path, "unet", "model.onnx")));
        var initializers = model.Graph.Initializer.ToDictionary(t => t.Name);
        var toQ = model.Graph.Node.Single(n => n.Name == "/down_blocks.1/attentions.0/transformer_blocks.0/attn1/to_q/MatMul");
        var weight = initializers[toQ.Input[1]];
        Assert.StartsWith("onnx::MatMul_", weight.Name);
        Assert.Equal(new long[] { 64, 64 }, weight.Dims);
        var ffIn = model.Graph.Node.Single(n => n.Name == "/down_blocks.1/attentions.0/transformer_blocks.0/ff/net.0/proj/MatMul");
        Assert.Equal(new long[] { 64, 512 }, initializers[ffIn.Input[1]].Dims);
        Assert.True(initializers.ContainsKey("down_blocks.0.resnets.0.conv1.weight"));
        Assert.True(initializers.ContainsKey("mid_block.attentions.0.proj_in.bias"));

        var dataLength = new FileInfo(Path.Combine(dir.Path, "unet", "model.onnx_data")).Length;
        var external = model.Graph.Initializer.Where(t => t.DataLocation == TensorProto.Types.DataLocation.External).ToList();
        Assert.NotEmpty(external);
        foreach (var t in external)
        {
            var entries = t.ExternalData.ToDictionary(e => e.Key, e => e.Value);
            Assert.Equal("model.onnx_data", entries["location"]);
            long offset = long.Parse(entries["offset"], System.Globalization.CultureInfo.InvariantCulture);
            long length = long.Parse(entries["length"], System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(0, offset % 4096);
            Assert.Equal(t.Dims.Aggregate(4L, (p, d) => p * d), length);
            Assert.True(offset + length <= dataLength);
        }

        var clip = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(dir.Path, "text_encoder", "model.onnx")));
        Assert.Contains(clip.Graph.Node, n => n.Name == "/text_model/encoder/layers.0/self_attn/q_proj/MatMul");
        Assert.Contains(clip.Graph.Initializer, t => t.Name == "text_model.embeddings.token_embedding.weight");
        Assert.Equal(4, clip.Graph.Output.Count(o => o.Name.StartsWith("hidden_states.", StringComparison.Ordinal)) + 1);
    }

    [Fact]
    public async Task A_float16_miniature_runs_with_float16_weights_and_io()
    {
        using var dir = new TempDirectory();
        ExportedSdxlModel.Write(dir.Path, new ExportedModelOptions { Architecture = SdxlArchitecture.Miniature, Float16 = true });
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(dir.Path, "unet", "model.onnx")));
        Assert.All(model.Graph.Initializer.Where(t => t.Name.StartsWith("onnx::MatMul_", StringComparison.Ordinal)),
            t => Assert.Equal((int)TensorProto.Types.DataType.Float16, t.DataType));
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(dir.Path).UseCpu().Build();
        var result = await pipeline.GenerateAsync(new GenerationRequest { Prompt = "a lighthouse", Steps = 2, Seed = 3, Width = 64, Height = 64 });
        Assert.All(result.Images[0].Pixels.ToArray(), v => Assert.True(float.IsFinite(v)));
    }
}
