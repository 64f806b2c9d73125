using Microsoft.Extensions.Logging;
using Sdxl.Net.Runtime;

namespace Sdxl.Net.Diagnostics;

/// <summary>The pipeline's log messages, source-generated (no boxing or formatting unless the level is enabled).</summary>
internal static partial class SdxlLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Loaded SDXL model '{Model}' on {Provider} in {ElapsedMs} ms (scheduler {Scheduler})")]
    public static partial void ModelLoaded(ILogger logger, string model, ExecutionProviderKind provider, long elapsedMs, string scheduler);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "vae_decoder has float16 I/O and its config sets force_upcast: the SDXL VAE overflows in float16 "
        + "(NaN images). Prefer an fp32 VAE export or the fp16-fixed VAE (madebyollin/sdxl-vae-fp16-fix).")]
    public static partial void Float16VaeWithForceUpcast(ILogger logger);

    [LoggerMessage(EventId = 3, Level = LogLevel.Debug, Message = "Base denoising: {Steps} steps in {ElapsedMs} ms")]
    public static partial void BaseDenoised(ILogger logger, int steps, long elapsedMs);

    [LoggerMessage(EventId = 4, Level = LogLevel.Debug, Message = "Refiner: {Steps} steps in {ElapsedMs} ms")]
    public static partial void Refined(ILogger logger, int steps, long elapsedMs);

    [LoggerMessage(EventId = 5, Level = LogLevel.Information, Message = "Loaded refiner '{Model}' in {ElapsedMs} ms")]
    public static partial void RefinerLoaded(ILogger logger, string model, long elapsedMs);
}
