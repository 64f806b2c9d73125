using Sdxl.Net.ControlNet;
using Sdxl.Net.Lora;
using Sdxl.Net.Synthetic;
using Sdxl.Net.Tests.Lora;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Sdxl.Net.Tests.ControlNet;

/// <summary>
/// LoRA adapters are mapped onto unet/model.onnx; OnnxStack's separate controlnet/model.onnx is another export whose
/// generated initializer names need not denote the same tensors. Until adapters are mapped onto that file too, the
/// combination is refused, never run with the adapters silently missing or misplaced.
/// </summary>
public sealed class ControlNetWithLoraTests
{
    private static readonly SyntheticModelOptions OnnxStackWithNames = LoraSyntheticModel.Options with { ControlNetUNet = ControlNetUNetLayout.OnnxStackFolder };

    [Fact]
    public void A_pipeline_lora_with_a_separate_controlnet_unet_is_refused_at_build()
    {
        var folder = SyntheticModels.Get(OnnxStackWithNames);
        using var dir = new Synthetic.TempDirectory();
        var lora = Path.Combine(dir.Path, "style.safetensors");
        LoraSyntheticModel.WriteLora(lora, LoraSyntheticModel.RandomFactors(3), "kohya");
        var net = Path.Combine(dir.Path, "net");
        SyntheticSdxlModel.WriteControlNet(net, new SyntheticModelOptions(), new SyntheticControlNetOptions());

        var e = Assert.Throws<ArgumentException>(() => SdxlPipeline.CreateBuilder().WithModel(folder).UseCpu().AddControlNet(net).AddLora(lora, 0.8).Build());
        Assert.Contains("controlnet/model.onnx", e.Message);

        // Without a ControlNet the same adapter applies as usual.
        using var plain = SdxlPipeline.CreateBuilder().WithModel(folder).UseCpu().AddLora(lora, 0.8).Build();
    }

    [Fact]
    public async Task A_request_lora_with_control_images_on_a_separate_controlnet_unet_is_refused()
    {
        var folder = SyntheticModels.Get(OnnxStackWithNames);
        using var dir = new Synthetic.TempDirectory();
        var lora = Path.Combine(dir.Path, "style.safetensors");
        LoraSyntheticModel.WriteLora(lora, LoraSyntheticModel.RandomFactors(4), "kohya");
        var net = Path.Combine(dir.Path, "net");
        SyntheticSdxlModel.WriteControlNet(net, new SyntheticModelOptions(), new SyntheticControlNetOptions());
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(folder).UseCpu().AddControlNet(net).Build();
        using var control = new Image<Rgb24>(64, 64);
        var e = await Assert.ThrowsAsync<ArgumentException>(() => pipeline.GenerateAsync(new GenerationRequest
        {
            Prompt = "a house", Width = 64, Height = 64, Steps = 2, Seed = 1,
            ControlImages = [new ControlImage { Image = control }],
            Loras = [new LoraReference(lora, 0.8)],
        }));
        Assert.Contains("controlnet/model.onnx", e.Message);
    }
}
