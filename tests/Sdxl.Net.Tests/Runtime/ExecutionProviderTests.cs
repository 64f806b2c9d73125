using Sdxl.Net.Runtime;

namespace Sdxl.Net.Tests.Runtime;

public sealed class ExecutionProviderTests
{
    [Theory]
    [InlineData("cpu", ExecutionProviderKind.Cpu, 0)]
    [InlineData("CUDA", ExecutionProviderKind.Cuda, 0)]
    [InlineData("cuda:1", ExecutionProviderKind.Cuda, 1)]
    [InlineData("tensorrt:2", ExecutionProviderKind.TensorRT, 2)]
    [InlineData("trt", ExecutionProviderKind.TensorRT, 0)]
    public void Device_strings_parse(string text, ExecutionProviderKind kind, int device)
    {
        var options = ExecutionProviderOptions.Parse(text);
        Assert.Equal(kind, options.Kind);
        Assert.Equal(device, options.DeviceId);
    }

    [Theory]
    [InlineData("gpu")]
    [InlineData("cpu:0")]
    [InlineData("cuda:x")]
    [InlineData("cuda:1:2")]
    [InlineData("cuda:-1")]
    public void Bad_device_strings_are_rejected_with_the_forms_allowed(string text)
    {
        var e = Assert.Throws<FormatException>(() => ExecutionProviderOptions.Parse(text));
        Assert.Contains("cpu, cuda[:N] or tensorrt[:N]", e.Message);
    }

    [Fact]
    public void Cuda_settings_follow_the_options()
    {
        var defaults = SessionFactory.CudaSettings(new ExecutionProviderOptions { Kind = ExecutionProviderKind.Cuda }, cudaGraph: false);
        Assert.Equal("0", defaults["device_id"]);
        Assert.Equal("HEURISTIC", defaults["cudnn_conv_algo_search"]);
        Assert.False(defaults.ContainsKey("gpu_mem_limit"));
        Assert.False(defaults.ContainsKey("enable_cuda_graph"));

        var tuned = SessionFactory.CudaSettings(new ExecutionProviderOptions
        {
            Kind = ExecutionProviderKind.Cuda, DeviceId = 3, CudnnExhaustiveSearch = true, GpuMemoryLimitBytes = 8L << 30,
        }, cudaGraph: true);
        Assert.Equal("3", tuned["device_id"]);
        Assert.Equal("EXHAUSTIVE", tuned["cudnn_conv_algo_search"]);
        Assert.Equal((8L << 30).ToString(System.Globalization.CultureInfo.InvariantCulture), tuned["gpu_mem_limit"]);
        Assert.Equal("1", tuned["enable_cuda_graph"]);
    }

    [Fact]
    public void TensorRT_settings_follow_the_options()
    {
        var defaults = SessionFactory.TensorRTSettings(new ExecutionProviderOptions { Kind = ExecutionProviderKind.TensorRT }, cudaGraph: false);
        Assert.Equal("0", defaults["trt_fp16_enable"]);
        Assert.False(defaults.ContainsKey("trt_engine_cache_enable"));

        var cached = SessionFactory.TensorRTSettings(new ExecutionProviderOptions
        {
            Kind = ExecutionProviderKind.TensorRT, DeviceId = 1, TensorRTFp16 = true,
            TensorRTEngineCachePath = "/cache/engines", TensorRTTimingCachePath = "/cache/timing",
        }, cudaGraph: true);
        Assert.Equal("1", cached["device_id"]);
        Assert.Equal("1", cached["trt_fp16_enable"]);
        Assert.Equal("1", cached["trt_engine_cache_enable"]);
        Assert.Equal("/cache/engines", cached["trt_engine_cache_path"]);
        Assert.Equal("/cache/timing", cached["trt_timing_cache_path"]);
        Assert.Equal("1", cached["trt_cuda_graph_enable"]);
    }

    // SDXL's shapes by hand: latents are 1/8 of the pixels, the UNet's rows are the images (no guidance) up to twice the
    // images (guidance), prompts are 77 tokens per chunk, the conditioning widths are the base model's (2048, 1280, 6).
    [Fact]
    public void TensorRT_profiles_cover_the_sizes_and_batches_asked_for()
    {
        var options = new ExecutionProviderOptions
        {
            Kind = ExecutionProviderKind.TensorRT,
            TensorRTProfile = TensorRTShapeProfile.SdxlBase with { MinImageSize = 768, MaxImageSize = 1024, MaxBatch = 2, MaxPromptChunks = 3 },
        };
        var unet = SessionFactory.TensorRTSettings(options, cudaGraph: false, "unet");
        Assert.Equal("sample:1x4x96x96,encoder_hidden_states:1x77x2048,text_embeds:1x1280,time_ids:1x6", unet["trt_profile_min_shapes"]);
        Assert.Equal("sample:2x4x128x128,encoder_hidden_states:2x77x2048,text_embeds:2x1280,time_ids:2x6", unet["trt_profile_opt_shapes"]);
        Assert.Equal("sample:4x4x128x128,encoder_hidden_states:4x231x2048,text_embeds:4x1280,time_ids:4x6", unet["trt_profile_max_shapes"]);
        Assert.Equal("latent_sample:1x4x128x128", SessionFactory.TensorRTSettings(options, cudaGraph: false, "vae_decoder")["trt_profile_max_shapes"]);
        Assert.Equal("input_ids:2x77", SessionFactory.TensorRTSettings(options, cudaGraph: false, "text_encoder_2")["trt_profile_max_shapes"]);
        Assert.Equal("sample:1x4x128x128,encoder_hidden_states:1x77x1280,text_embeds:1x1280,time_ids:1x5",
            SessionFactory.TensorRTSettings(options with { TensorRTProfile = TensorRTShapeProfile.SdxlRefiner with { MinImageSize = 1024 } }, false, "unet")["trt_profile_min_shapes"]);
        Assert.False(SessionFactory.TensorRTSettings(options with { TensorRTProfile = null }, false, "unet").ContainsKey("trt_profile_min_shapes"));

        var unordered = options with { TensorRTProfile = TensorRTShapeProfile.SdxlBase with { MinImageSize = 2048 } };
        var e = Assert.Throws<ArgumentException>(() => SessionFactory.TensorRTSettings(unordered, false, "unet"));
        Assert.Contains("min <= opt <= max", e.Message);
    }

    [Fact]
    public void Cuda_graphs_are_used_for_the_unet_on_gpu_providers_only()
    {
        var options = new ExecutionProviderOptions { Kind = ExecutionProviderKind.Cuda, EnableCudaGraph = true };
        Assert.True(SessionFactory.UsesCudaGraph("unet", ExecutionProviderKind.Cuda, options));
        Assert.True(SessionFactory.UsesCudaGraph("unet", ExecutionProviderKind.TensorRT, options));
        Assert.False(SessionFactory.UsesCudaGraph("vae_decoder", ExecutionProviderKind.Cuda, options));
        Assert.False(SessionFactory.UsesCudaGraph("unet", ExecutionProviderKind.Cpu, options));
        Assert.False(SessionFactory.UsesCudaGraph("unet", ExecutionProviderKind.Cuda, options with { EnableCudaGraph = false }));
    }

    [Fact]
    public async Task Cpu_threads_reach_the_session_and_the_pipeline_runs()
    {
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).UseCpu(intraOpThreads: 1).Build();
        var result = await pipeline.GenerateAsync(new GenerationRequest { Prompt = "x", Width = 64, Height = 64, Steps = 1, Seed = 1 });
        Assert.Single(result.Images);
    }

    [Fact]
    public async Task Cuda_without_a_gpu_fails_clearly_or_falls_back_to_the_cpu_when_asked()
    {
        // On machines without the CUDA 13 / cuDNN 9 libraries (CI), asking for CUDA must say what is missing; with a
        // CPU fallback the same pipeline builds and runs. Where a GPU is present the CUDA session simply loads.
        var model = SyntheticModels.Get();
        try
        {
            using var cuda = SdxlPipeline.CreateBuilder().WithModel(model).UseCuda().Build();
        }
        catch (SdxlModelException e)
        {
            Assert.Contains("CUDA 13", e.Message);
            Assert.Contains("cuDNN 9", e.Message);
        }

        using var fallback = SdxlPipeline.CreateBuilder().WithModel(model)
            .UseExecutionProvider(new ExecutionProviderOptions { Kind = ExecutionProviderKind.Cuda, Fallbacks = [ExecutionProviderKind.Cpu] })
            .Build();
        var result = await fallback.GenerateAsync(new GenerationRequest { Prompt = "x", Width = 64, Height = 64, Steps = 1, Seed = 1 });
        Assert.Single(result.Images);
    }
}
