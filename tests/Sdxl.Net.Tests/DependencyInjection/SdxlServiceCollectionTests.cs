using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
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
        var e = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<SdxlPipeline>());
        Assert.Contains(e.Failures, f => f.Contains("Sdxl:ModelPath is required", StringComparison.Ordinal));
        Assert.Contains(e.Failures, f => f.Contains("Sdxl:Device", StringComparison.Ordinal));
        Assert.Equal(2, e.Failures.Count());
    }

    [Fact]
    public void Options_are_validated_at_start_by_name()
    {
        var services = new ServiceCollection();
        services.AddKeyedSdxl("turbo", o => o.ModelPath = "/no/such/folder");
        using var provider = services.BuildServiceProvider();

        // What the generic host runs in StartAsync for ValidateOnStart.
        var e = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IStartupValidator>().Validate());
        Assert.Equal("turbo", e.OptionsName);
        Assert.Contains("Sdxl[turbo]:ModelPath '/no/such/folder' does not exist", e.Message);
    }

    [Fact]
    public void Configuration_binds_and_relative_paths_start_at_the_content_root()
    {
        var model = SyntheticModels.Get();
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Sdxl:ModelPath"] = Path.GetFileName(model),          // relative to the content root below
            ["Sdxl:Scheduler"] = "euler-a",
        }).Build();
        var services = new ServiceCollection();
        services.AddSingleton<IHostEnvironment>(new ContentRoot(Path.GetDirectoryName(model)!));
        services.AddSdxl(configuration.GetSection("Sdxl"));
        using var provider = services.BuildServiceProvider();
        provider.GetRequiredService<IStartupValidator>().Validate();
        Assert.Equal("euler-a", provider.GetRequiredService<SdxlPipeline>().Scheduler.Name);
    }

    [Fact]
    public async Task BuildOnStart_builds_the_pipeline_when_the_host_starts()
    {
        int built = 0;
        var services = new ServiceCollection();
        services.AddSdxl(o => { o.ModelPath = SyntheticModels.Get(); o.BuildOnStart = true; }, (_, _) => built++);
        services.AddKeyedSdxl("lazy", o => o.ModelPath = SyntheticModels.Get(), (_, _) => built += 10);
        await using var provider = services.BuildServiceProvider();
        Assert.Equal(0, built);
        foreach (var hosted in provider.GetServices<IHostedService>())
        {
            await hosted.StartAsync(CancellationToken.None);
        }

        Assert.Equal(1, built);   // the BuildOnStart pipeline, not the lazy one
    }

    private sealed class ContentRoot(string path) : IHostEnvironment
    {
        public string EnvironmentName { get; set; } = "Test";
        public string ApplicationName { get; set; } = "Test";
        public string ContentRootPath { get; set; } = path;
        public Microsoft.Extensions.FileProviders.IFileProvider ContentRootFileProvider { get; set; } = null!;
    }

    [Fact]
    public async Task Cli_memory_mode_per_phase_and_no_prepack_give_the_same_image_and_tiling_flags_parse()
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

            // --no-prepack changes only the kernels' weight layout: the same image to float32 rounding.
            Assert.Equal(0, await CliApp.RunAsync([.. common, "--no-prepack", "--output", Path.Combine(dir, "mapped.npy")], new StringWriter(), err));
            var keep = NpyFile.Read(Path.Combine(dir, "keep.npy")).Data;
            var mapped = NpyFile.Read(Path.Combine(dir, "mapped.npy")).Data;
            Assert.Equal(keep.Length, mapped.Length);
            for (int i = 0; i < keep.Length; i++)
            {
                Assert.True(Math.Abs(keep[i] - mapped[i]) < 1e-4f, $"pixel value {i}: {keep[i]} vs {mapped[i]}");
            }

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
