using Microsoft.ML.OnnxRuntime;
using Sdxl.Net.Models;
using Sdxl.Net.Runtime;
using Sdxl.Net.Synthetic;
using Sdxl.Net.Tests.Synthetic;

namespace Sdxl.Net.Tests.Performance;

public sealed class MemoryModeTests
{
    private static readonly ExecutionProviderOptions PerPhase = new() { MemoryMode = MemoryMode.LoadPerPhase };

    [Fact]
    public void Per_phase_folder_checks_signatures_at_open_then_holds_no_session()
    {
        using var dir = new TempDirectory();
        SyntheticSdxlModel.Write(dir.Path);
        using var folder = SdxlModelFolder.Open(dir.Path, PerPhase);

        // Signatures were read (the checks need them) although every session is closed again.
        Assert.Equal(4, folder.UNetInChannels);
        Assert.True(folder.UNet.CrossAttentionDim > 0);
        Assert.Empty(folder.LoadedComponents);

        using var keep = SdxlModelFolder.Open(dir.Path, ExecutionProviderOptions.Cpu);
        Assert.Equal(["text_encoder", "text_encoder_2", "unet", "vae_decoder", "vae_encoder"], keep.LoadedComponents);
    }

    [Fact]
    public void Per_phase_folder_fails_at_open_on_a_broken_signature()
    {
        using var dir = new TempDirectory();
        SyntheticSdxlModel.Write(dir.Path, new SyntheticModelOptions { UnetInChannels = 5 });
        var e = Assert.Throws<SdxlModelException>(() => SdxlModelFolder.Open(dir.Path, PerPhase));
        Assert.Contains("9", e.Message);
    }

    [Fact]
    public void Each_phase_loads_its_models_and_releases_the_previous_phase()
    {
        using var dir = new TempDirectory();
        SyntheticSdxlModel.Write(dir.Path);
        using var folder = SdxlModelFolder.Open(dir.Path, PerPhase);
        using var runOptions = new RunOptions();
        var ids = new int[77];

        folder.TextEncoder!.Encode(ids, 1, 77, runOptions);
        folder.TextEncoder2.Encode(ids, 1, 77, runOptions);
        Assert.Equal(["text_encoder", "text_encoder_2"], folder.LoadedComponents);

        var unet = folder.UNet;
        using (var binding = unet.CreateBinding(new UNetShape(1, 4, 4, 8, 8, 77, unet.CrossAttentionDim, unet.TextEmbedsDim, unet.TimeIdsWidth)))
        {
            Assert.Equal(["unet"], folder.LoadedComponents);
            binding.Run(999f, runOptions);
        }

        var image = new float[3 * 64 * 64];
        folder.VaeDecoder.Decode(new float[4 * 8 * 8], [1, 4, 8, 8], image, runOptions);
        Assert.Equal(["vae_decoder"], folder.LoadedComponents);
    }

    [Fact]
    public async Task Per_phase_pipeline_makes_the_same_image_as_keep_loaded()
    {
        using var dir = new TempDirectory();
        SyntheticSdxlModel.Write(dir.Path);
        var request = new GenerationRequest { Prompt = "a red cube", Seed = 11, Steps = 4, Width = 64, Height = 64 };

        using var kept = SdxlPipeline.CreateBuilder().WithModel(dir.Path).Build();
        using var perPhase = SdxlPipeline.CreateBuilder().WithModel(dir.Path).WithMemoryMode(MemoryMode.LoadPerPhase).Build();
        var a = await kept.GenerateAsync(request);
        var b = await perPhase.GenerateAsync(request);
        var second = await perPhase.GenerateAsync(request);

        Assert.True(a.Images[0].Pixels.Span.SequenceEqual(b.Images[0].Pixels.Span));
        Assert.True(a.Images[0].Pixels.Span.SequenceEqual(second.Images[0].Pixels.Span));
    }

    [Fact]
    public void Cuda_graphs_cannot_be_combined_with_per_phase_loading()
    {
        var builder = SdxlPipeline.CreateBuilder().WithModel("unused")
            .UseExecutionProvider(new ExecutionProviderOptions { Kind = ExecutionProviderKind.Cuda, EnableCudaGraph = true })
            .WithMemoryMode(MemoryMode.LoadPerPhase);
        var e = Assert.Throws<InvalidOperationException>(builder.Build);
        Assert.Contains("LoadPerPhase", e.Message);
    }
}
