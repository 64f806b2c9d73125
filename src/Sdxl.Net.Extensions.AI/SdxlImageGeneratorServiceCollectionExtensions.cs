using Microsoft.Extensions.AI;
using Sdxl.Net;
using Sdxl.Net.Extensions.AI;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers an <see cref="SdxlImageGenerator"/> as the application's <see cref="IImageGenerator"/>.</summary>
public static class SdxlImageGeneratorServiceCollectionExtensions
{
    /// <summary>
    /// Registers a singleton <see cref="IImageGenerator"/> over the <see cref="SdxlPipeline"/> registered with
    /// <c>AddSdxl(...)</c> (or, with <paramref name="pipelineKey"/>, with <c>AddKeyedSdxl(pipelineKey, ...)</c>).
    /// The container owns the pipeline; the generator does not dispose it.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <param name="configure">Configures the generator's defaults and limits.</param>
    /// <param name="pipelineKey">The key of the pipeline registration, or <see langword="null"/> for the unkeyed one.</param>
    public static IServiceCollection AddSdxlImageGenerator(this IServiceCollection services, Action<SdxlImageGeneratorOptions>? configure = null, object? pipelineKey = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddSingleton<IImageGenerator>(sp =>
        {
            var options = new SdxlImageGeneratorOptions();
            configure?.Invoke(options);
            var pipeline = pipelineKey is null
                ? sp.GetRequiredService<SdxlPipeline>()
                : sp.GetRequiredKeyedService<SdxlPipeline>(pipelineKey);
            return new SdxlImageGenerator(pipeline, options);
        });
        return services;
    }
}
