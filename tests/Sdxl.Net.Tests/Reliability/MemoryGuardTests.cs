using Sdxl.Net.Models;
using Sdxl.Net.Runtime;
using Sdxl.Net.Synthetic;
using Sdxl.Net.Tests.Synthetic;

namespace Sdxl.Net.Tests.Reliability;

/// <summary>What cannot fit in memory is refused before any work, with the numbers and what would fit.</summary>
public sealed class MemoryGuardTests
{
    private static long FolderBytes(string dir, string component) =>
        Directory.EnumerateFiles(Path.Combine(dir, component)).Where(f => !f.EndsWith(".json", StringComparison.Ordinal)).Sum(f => new FileInfo(f).Length);

    [Fact]
    public void A_folder_whose_sessions_do_not_fit_is_refused_before_loading_and_per_phase_is_offered()
    {
        using var dir = new TempDirectory();
        SyntheticSdxlModel.Write(dir.Path, new SyntheticModelOptions { UnetExternalData = true });
        string[] components = ["text_encoder", "text_encoder_2", "unet", "vae_decoder", "vae_encoder"];
        long all = components.Sum(c => FolderBytes(dir.Path, c));
        long largest = components.Max(c => FolderBytes(dir.Path, c));

        // Enough for the largest component's sessions, not for all of them at once.
        long available = (long)(largest * MemoryGuard.SessionOverhead) + MemoryGuard.BaseBytes + 1;
        Assert.True((long)(all * MemoryGuard.SessionOverhead) + MemoryGuard.BaseBytes > available);
        HostMemory.Override = () => available;
        try
        {
            var e = Assert.Throws<SdxlModelException>(() => SdxlPipeline.CreateBuilder().WithModel(dir.Path).UseCpu().Build());
            Assert.Contains("KeepLoaded", e.Message);
            Assert.Contains("LoadPerPhase", e.Message);
            Assert.Contains("would fit", e.Message);

            using var perPhase = SdxlPipeline.CreateBuilder().WithModel(dir.Path)
                .UseExecutionProvider(ExecutionProviderOptions.Cpu with { MemoryMode = MemoryMode.LoadPerPhase }).Build();

            HostMemory.Override = () => 1 << 20;
            var none = Assert.Throws<SdxlModelException>(() => SdxlPipeline.CreateBuilder().WithModel(dir.Path)
                .UseExecutionProvider(ExecutionProviderOptions.Cpu with { MemoryMode = MemoryMode.LoadPerPhase }).Build());
            Assert.Contains("LoadPerPhase mode needs about", none.Message);
        }
        finally
        {
            HostMemory.Override = null;
        }
    }

    [Fact]
    public async Task A_generation_whose_activations_do_not_fit_is_refused_before_any_model_runs()
    {
        using var dir = new TempDirectory();
        SyntheticSdxlModel.Write(dir.Path);
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(dir.Path).UseCpu().Build();
        HostMemory.Override = () => 1 << 20;
        try
        {
            var e = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() =>
                pipeline.GenerateAsync(new GenerationRequest { Prompt = "x", Steps = 1, Width = 64, Height = 64, Seed = 1 }));
            Assert.Contains("64x64", e.Message);
            Assert.Contains("available", e.Message);
        }
        finally
        {
            HostMemory.Override = null;
        }

        // With the real measurement the same request runs.
        var result = await pipeline.GenerateAsync(new GenerationRequest { Prompt = "x", Steps = 1, Width = 64, Height = 64, Seed = 1 });
        Assert.Single(result.Images);
    }

    // The estimate by hand for SDXL's VAE at 1024²: twelve 1024×1024×128 float32 maps (6.44 GB) and the mid-block
    // attention over 128×128 latent pixels (16384² float32 = 1.07 GB); a 512-pixel tile needs a quarter of the maps
    // and a sixteenth of the scores.
    [Fact]
    public void Decode_estimates_follow_the_feature_maps_and_the_attention_scores()
    {
        Assert.Equal((12L * 1024 * 1024 * 128 * 4) + (16384L * 16384 * 4), MemoryGuard.EstimateDecodeBytes(1024, 1024, 128, 8, null));
        Assert.Equal((12L * 512 * 512 * 128 * 4) + (4096L * 4096 * 4), MemoryGuard.EstimateDecodeBytes(1024, 1024, 128, 8, 512));
    }
}
