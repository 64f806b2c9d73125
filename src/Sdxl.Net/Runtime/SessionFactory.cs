using Microsoft.ML.OnnxRuntime;

namespace Sdxl.Net.Runtime;

/// <summary>Creates ONNX Runtime sessions for the configured execution provider, with clear errors.</summary>
internal static class SessionFactory
{
    /// <summary>Creates the session on the first provider of <c>[Kind, ..Fallbacks]</c> that initialises.</summary>
    /// <param name="modelPath">The model file.</param>
    /// <param name="component">The component name (CUDA graphs are enabled for the <c>unet</c> only).</param>
    /// <param name="options">The provider options.</param>
    /// <param name="provider">The provider the session was created with.</param>
    /// <param name="customization">Initializer overrides and related settings (the weights overlay), or <see langword="null"/>.</param>
    public static InferenceSession Create(string modelPath, string component, ExecutionProviderOptions options, out ExecutionProviderKind provider,
        SessionCustomization? customization = null)
    {
        // Opened here first so that a missing or unreadable file or a symbolic-link loop is named in words, not as
        // ONNX Runtime's "system error number 13"; likewise the external weights optimum writes next to large models.
        FileAccessCheck.EnsureModelFile(modelPath, component);
        NativeRuntime.EnsureLoaded();
        OrtLogging.Route(null);
        var externalData = modelPath + "_data";
        if (File.Exists(externalData) || new FileInfo(externalData).LinkTarget is not null)
        {
            FileAccessCheck.EnsureReadable(externalData, component);
        }

        var kinds = new List<ExecutionProviderKind> { options.Kind };
        foreach (var k in options.Fallbacks)
        {
            if (!kinds.Contains(k))
            {
                kinds.Add(k);
            }
        }

        Exception? providerFailure = null;
        foreach (var kind in kinds)
        {
            SessionOptions? sessionOptions = null;
            try
            {
                // Prepacking is off when the provider options say so or when an overlay rewrites weights in place.
                bool prepack = options.PrepackWeights && customization?.DisablePrepacking != true;
                sessionOptions = CreateOptions(kind, options, UsesCudaGraph(component, kind, options), component, prepack);
                customization?.ApplyTo(sessionOptions);
            }
            catch (Exception e) when (e is OnnxRuntimeException or DllNotFoundException or EntryPointNotFoundException)
            {
                sessionOptions?.Dispose();
                providerFailure ??= new SdxlModelException(DescribeProviderFailure(kind, e), e);
                continue;
            }

            try
            {
                var session = new InferenceSession(modelPath, sessionOptions);
                provider = kind;
                return session;
            }
            catch (OnnxRuntimeException e) when (kind != ExecutionProviderKind.Cpu && IsProviderLoadFailure(e))
            {
                providerFailure ??= new SdxlModelException(DescribeProviderFailure(kind, e), e);
            }
            catch (OnnxRuntimeException e)
            {
                throw new SdxlModelException($"{component}: ONNX Runtime cannot load '{modelPath}': {FileAccessCheck.Translate(FirstLine(e.Message))}", e);
            }
            catch (KeyNotFoundException e)
            {
                // ONNX Runtime's managed wrapper throws this when the native error code is one it has no name for
                // (seen with unreadable or truncated external data): still a model that cannot be loaded.
                throw new SdxlModelException($"{component}: ONNX Runtime cannot load '{modelPath}' (or its external data '{Path.GetFileName(externalData)}'): the native loader failed with an error it does not name.", e);
            }
            finally
            {
                sessionOptions.Dispose();
            }
        }

        throw providerFailure ?? new SdxlModelException($"{component}: no execution provider could be initialised.");
    }

    /// <summary>
    /// Whether the session captures a CUDA graph: asked for, on a GPU provider, and only for the UNet, the one model
    /// run many times with the same shapes through an I/O binding at fixed device addresses (a graph replays the
    /// addresses it captured, so models fed by plain <c>Run</c> calls would read stale inputs).
    /// </summary>
    public static bool UsesCudaGraph(string component, ExecutionProviderKind kind, ExecutionProviderOptions options) =>
        options.EnableCudaGraph && component == "unet" && kind is ExecutionProviderKind.Cuda or ExecutionProviderKind.TensorRT;

    private static SessionOptions CreateOptions(ExecutionProviderKind kind, ExecutionProviderOptions options, bool cudaGraph, string component, bool prepack)
    {
        var so = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            EnableCpuMemArena = options.EnableCpuMemoryArena,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
        };
        if (options.IntraOpThreads > 0)
        {
            so.IntraOpNumThreads = options.IntraOpThreads;
        }

        if (!prepack)
        {
            so.AddSessionConfigEntry("session.disable_prepacking", "1");
        }

        try
        {
            switch (kind)
            {
                case ExecutionProviderKind.Cuda:
                    AppendCuda(so, options, cudaGraph);
                    break;
                case ExecutionProviderKind.TensorRT:
                    using (var trt = new OrtTensorRTProviderOptions())
                    {
                        trt.UpdateOptions(TensorRTSettings(options, cudaGraph, component));
                        so.AppendExecutionProvider_Tensorrt(trt);
                    }

                    // Nodes TensorRT cannot take run on CUDA.
                    AppendCuda(so, options, cudaGraph: false);
                    break;
            }
        }
        catch
        {
            so.Dispose();
            throw;
        }

        return so;
    }

    private static void AppendCuda(SessionOptions so, ExecutionProviderOptions options, bool cudaGraph)
    {
        using var cuda = new OrtCUDAProviderOptions();
        cuda.UpdateOptions(CudaSettings(options, cudaGraph));
        so.AppendExecutionProvider_CUDA(cuda);
    }

    /// <summary>The CUDA provider's option strings for <paramref name="options"/>.</summary>
    internal static Dictionary<string, string> CudaSettings(ExecutionProviderOptions options, bool cudaGraph)
    {
        var settings = new Dictionary<string, string>
        {
            ["device_id"] = options.DeviceId.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["cudnn_conv_algo_search"] = options.CudnnExhaustiveSearch ? "EXHAUSTIVE" : "HEURISTIC",
            ["arena_extend_strategy"] = "kSameAsRequested",
        };
        if (options.GpuMemoryLimitBytes > 0)
        {
            settings["gpu_mem_limit"] = options.GpuMemoryLimitBytes.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        if (cudaGraph)
        {
            settings["enable_cuda_graph"] = "1";
        }

        return settings;
    }

    /// <summary>The TensorRT provider's option strings for <paramref name="options"/>.</summary>
    internal static Dictionary<string, string> TensorRTSettings(ExecutionProviderOptions options, bool cudaGraph, string component = "")
    {
        var settings = new Dictionary<string, string>
        {
            ["device_id"] = options.DeviceId.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["trt_fp16_enable"] = options.TensorRTFp16 ? "1" : "0",
        };
        if (cudaGraph)
        {
            settings["trt_cuda_graph_enable"] = "1";
        }

        if (options.TensorRTEngineCachePath is { } cache)
        {
            settings["trt_engine_cache_enable"] = "1";
            settings["trt_engine_cache_path"] = cache;
        }

        if (options.TensorRTTimingCachePath is { } timing)
        {
            settings["trt_timing_cache_enable"] = "1";
            settings["trt_timing_cache_path"] = timing;
        }

        if (options.TensorRTProfile?.For(component) is { } profile)
        {
            settings["trt_profile_min_shapes"] = profile.Min;
            settings["trt_profile_opt_shapes"] = profile.Opt;
            settings["trt_profile_max_shapes"] = profile.Max;
        }

        return settings;
    }

    private static bool IsProviderLoadFailure(OnnxRuntimeException e) =>
        e.Message.Contains("provider", StringComparison.OrdinalIgnoreCase)
        || e.Message.Contains("CUDA", StringComparison.Ordinal)
        || e.Message.Contains(".so", StringComparison.Ordinal)
        || e.Message.Contains(".dll", StringComparison.Ordinal);

    private static string DescribeProviderFailure(ExecutionProviderKind kind, Exception e)
    {
        var needs = kind switch
        {
            ExecutionProviderKind.Cuda => "the CUDA provider needs an NVIDIA driver, CUDA 13 runtime libraries (libcudart, libcublas, libcublasLt, libcufft, libcurand) and cuDNN 9 (libcudnn*.so.9) on the library path (LD_LIBRARY_PATH / PATH)",
            ExecutionProviderKind.TensorRT => "the TensorRT provider needs TensorRT 10 (libnvinfer*.so.10) in addition to the CUDA 13 and cuDNN 9 libraries on the library path",
            _ => "the CPU provider failed",
        };
        return $"The {kind} execution provider could not be initialised: {needs}. ONNX Runtime said: {FirstLine(e.Message)}";
    }

    internal static string FirstLine(string message)
    {
        var i = message.IndexOf('\n');
        return (i < 0 ? message : message[..i]).Trim();
    }
}
