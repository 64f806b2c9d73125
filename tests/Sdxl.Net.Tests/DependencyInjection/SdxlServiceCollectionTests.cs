using Microsoft.Extensions.DependencyInjection;
using Sdxl.Cli;
using Sdxl.Net.DependencyInjection;
using Sdxl.Net.Imaging;

namespace Sdxl.Net.Tests.DependencyInjection;

public sealed class SdxlServiceCollectionTests
{
    [Fact]
    public async Task AddSdxl_registers_one_shared_pipeline_disposed_with_the_provider()
    {
        var services = new ServiceCollection();
        services.AddSdxl(o => o.ModelPath = SyntheticModels.Get());
        SdxlPipeline first;
        await using (var provider = services.BuildServiceProvider())
        {
            first = provider.GetRequiredService<SdxlPipeline>();
            Assert.Same(first, provider.GetRequiredService<SdxlPipeline>());
            var result = await first.GenerateAsync(new GenerationRequest { Prompt = "x", Width = 64, Height = 64, Steps = 1, Seed = 1 });
            Assert.Single(result.Images);
        }

        await Assert.ThrowsAsync<ObjectDisposedException>(() => first.GenerateAsync(new GenerationRequest { Prompt = "x" }));
    }

    [Fact]
    public void Keyed_pipelines_live_side_by_side()
    {
        var services = new ServiceCollection();
        services.AddKeyedSdxl("base", o => o.ModelPath = SyntheticModels.Get());
        services.AddKeyedSdxl("turbo", o => { o.ModelPath = SyntheticModels.Get(); o.Scheduler = "euler-a"; });
        using var provider = services.BuildServiceProvider();
        var a = provider.GetRequiredKeyedService<SdxlPipeline>("base");
        var b = provider.GetRequiredKeyedService<SdxlPipeline>("turbo");
        Assert.NotSame(a, b);
        Assert.Equal("euler", a.Scheduler.Name);
        Assert.Equal("euler-a", b.Scheduler.Name);
    }

    [Fact]
    public void Invalid_options_list_every_problem()
    {
        var options = new SdxlOptions { ModelPath = "/no/such/folder", Device = "gpu", HighNoiseFraction = 1.5, IntraOpThreads = -1 };
        var errors = options.Validate();
        Assert.Equal(4, errors.Count);
        var services = new ServiceCollection();
        services.AddSdxl(o => { o.ModelPath = null; o.Device = "tpu"; });
        using var provider = services.BuildServiceProvider();
        var e = Assert.Throws<SdxlOptionsException>(() => provider.GetRequiredService<SdxlPipeline>());
        Assert.Contains("Sdxl:ModelPath is required", e.Message);
        Assert.Contains("Sdxl:Device", e.Message);
        Assert.Equal(2, e.Errors.Count);
    }

    [Fact]
    public async Task Cli_memory_mode_per_phase_gives_the_same_image_and_tiling_flags_parse()
    {
        var model = SyntheticModels.Get();
        var dir = Directory.CreateTempSubdirectory("sdxl-cli-modes-").FullName;
        try
        {
            string[] common = ["generate", "--model", model, "--prompt", "a bridge", "--width", "64", "--height", "64", "--steps", "3", "--guidance", "5", "--seed", "9"];
            var err = new StringWriter();
            Assert.Equal(0, await CliApp.RunAsync([.. common, "--output", Path.Combine(dir, "keep.npy")], new StringWriter(), err));
            Assert.Equal(0, await CliApp.RunAsync([.. common, "--memory-mode", "per-phase", "--output", Path.Combine(dir, "phase.npy")], new StringWriter(), err));
            Assert.Equal(0, await CliApp.RunAsync([.. common, "--vae-tiling", "--output", Path.Combine(dir, "tiled.npy")], new StringWriter(), err));
            Assert.Equal(NpyFile.Read(Path.Combine(dir, "keep.npy")).Data, NpyFile.Read(Path.Combine(dir, "phase.npy")).Data);
            Assert.Equal(2, await CliApp.RunAsync([.. common, "--memory-mode", "sometimes", "--output", Path.Combine(dir, "x.npy")], new StringWriter(), err));
            Assert.Equal(2, await CliApp.RunAsync([.. common, "--cuda-graph", "--output", Path.Combine(dir, "x.npy")], new StringWriter(), err));
            Assert.False(File.Exists(Path.Combine(dir, "x.npy")));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
