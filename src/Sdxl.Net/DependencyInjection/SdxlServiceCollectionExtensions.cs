using Microsoft.Extensions.Logging;
using Sdxl.Net;
using Sdxl.Net.DependencyInjection;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers Sdxl.Net pipelines in an <see cref="IServiceCollection"/>.</summary>
public static class SdxlServiceCollectionExtensions
{
    /// <summary>
    /// Registers a singleton <see cref="SdxlPipeline"/> configured from <paramref name="configureOptions"/> and, optionally,
    /// further builder calls. The pipeline is built (models loaded, options validated) on first resolution and
    /// disposed with the service provider.
    /// </summary>
    public static IServiceCollection AddSdxl(this IServiceCollection services, Action<SdxlOptions> configureOptions, Action<IServiceProvider, SdxlPipelineBuilder>? configureBuilder = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configureOptions);
        services.AddSingleton(sp => Create(sp, configureOptions, configureBuilder));
        return services;
    }

    /// <summary>
    /// Registers a keyed singleton <see cref="SdxlPipeline"/> (e.g. <c>"base"</c> and <c>"turbo"</c> side by side);
    /// resolve it with <c>[FromKeyedServices("turbo")]</c> or <c>GetRequiredKeyedService&lt;SdxlPipeline&gt;("turbo")</c>.
    /// </summary>
    public static IServiceCollection AddKeyedSdxl(this IServiceCollection services, object? serviceKey, Action<SdxlOptions> configureOptions, Action<IServiceProvider, SdxlPipelineBuilder>? configureBuilder = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configureOptions);
        services.AddKeyedSingleton(serviceKey, (sp, _) => Create(sp, configureOptions, configureBuilder));
        return services;
    }

    private static SdxlPipeline Create(IServiceProvider services, Action<SdxlOptions> configureOptions, Action<IServiceProvider, SdxlPipelineBuilder>? configureBuilder)
    {
        var options = new SdxlOptions();
        configureOptions(options);
        var builder = SdxlPipeline.CreateBuilder();
        options.ApplyTo(builder);
        if (services.GetService(typeof(ILoggerFactory)) is ILoggerFactory loggerFactory)
        {
            builder.WithLogging(loggerFactory);
        }

        configureBuilder?.Invoke(services, builder);
        return builder.Build();
    }
}
