using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Sdxl.Net;
using Sdxl.Net.DependencyInjection;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers Sdxl.Net pipelines in an <see cref="IServiceCollection"/>.</summary>
/// <remarks>
/// Each pipeline's <see cref="SdxlOptions"/> is a named options instance (the default name, or the service key's
/// text for keyed pipelines), validated by <see cref="SdxlOptionsValidator"/> when the host starts
/// (<c>ValidateOnStart</c>; an invalid configuration stops the start with an <see cref="OptionsValidationException"/>
/// listing every problem). Relative paths are resolved against <see cref="IHostEnvironment.ContentRootPath"/> when
/// the container has an <see cref="IHostEnvironment"/>. The pipeline is a singleton built on first resolution, or at
/// host start with <see cref="SdxlOptions.BuildOnStart"/>, and disposed with the service provider.
/// </remarks>
public static class SdxlServiceCollectionExtensions
{
    /// <summary>Registers a singleton <see cref="SdxlPipeline"/> whose options bind from <paramref name="configuration"/> (e.g. <c>builder.Configuration.GetSection("Sdxl")</c>).</summary>
    public static IServiceCollection AddSdxl(this IServiceCollection services, IConfiguration configuration, Action<IServiceProvider, SdxlPipelineBuilder>? configureBuilder = null)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        return Register(services, serviceKey: null, keyed: false, o => o.Bind(configuration), configureBuilder);
    }

    /// <summary>Registers a singleton <see cref="SdxlPipeline"/> configured by <paramref name="configureOptions"/> and, optionally, further builder calls.</summary>
    public static IServiceCollection AddSdxl(this IServiceCollection services, Action<SdxlOptions> configureOptions, Action<IServiceProvider, SdxlPipelineBuilder>? configureBuilder = null)
    {
        ArgumentNullException.ThrowIfNull(configureOptions);
        return Register(services, serviceKey: null, keyed: false, o => o.Configure(configureOptions), configureBuilder);
    }

    /// <summary>
    /// Registers a keyed singleton <see cref="SdxlPipeline"/> (e.g. <c>"base"</c> and <c>"turbo"</c> side by side) whose
    /// options bind from <paramref name="configuration"/>; resolve it with <c>[FromKeyedServices("turbo")]</c>.
    /// </summary>
    public static IServiceCollection AddKeyedSdxl(this IServiceCollection services, object? serviceKey, IConfiguration configuration, Action<IServiceProvider, SdxlPipelineBuilder>? configureBuilder = null)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        return Register(services, serviceKey, keyed: true, o => o.Bind(configuration), configureBuilder);
    }

    /// <summary>
    /// Registers a keyed singleton <see cref="SdxlPipeline"/> (e.g. <c>"base"</c> and <c>"turbo"</c> side by side);
    /// resolve it with <c>[FromKeyedServices("turbo")]</c> or <c>GetRequiredKeyedService&lt;SdxlPipeline&gt;("turbo")</c>.
    /// </summary>
    public static IServiceCollection AddKeyedSdxl(this IServiceCollection services, object? serviceKey, Action<SdxlOptions> configureOptions, Action<IServiceProvider, SdxlPipelineBuilder>? configureBuilder = null)
    {
        ArgumentNullException.ThrowIfNull(configureOptions);
        return Register(services, serviceKey, keyed: true, o => o.Configure(configureOptions), configureBuilder);
    }

    /// <summary>The options name of the pipeline registered under <paramref name="serviceKey"/> (the default name for the unkeyed one).</summary>
    public static string OptionsName(object? serviceKey) => serviceKey?.ToString() ?? Options.Options.DefaultName;

    private static IServiceCollection Register(IServiceCollection services, object? serviceKey, bool keyed,
        Action<OptionsBuilder<SdxlOptions>> configureOptions, Action<IServiceProvider, SdxlPipelineBuilder>? configureBuilder)
    {
        ArgumentNullException.ThrowIfNull(services);
        var name = OptionsName(serviceKey);
        var options = services.AddOptions<SdxlOptions>(name);
        configureOptions(options);
        options.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<SdxlOptions>, SdxlOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, SdxlBuildOnStartService>());
        services.AddSingleton(new SdxlRegistration(name, serviceKey, keyed));
        if (keyed)
        {
            services.AddKeyedSingleton(serviceKey, (sp, _) => Create(sp, name, configureBuilder));
        }
        else
        {
            services.AddSingleton(sp => Create(sp, name, configureBuilder));
        }

        return services;
    }

    private static SdxlPipeline Create(IServiceProvider services, string name, Action<IServiceProvider, SdxlPipelineBuilder>? configureBuilder)
    {
        // Get validates (OptionsValidationException with every problem) before anything loads.
        var options = services.GetRequiredService<IOptionsMonitor<SdxlOptions>>().Get(name)
            .WithPathsFrom(services.GetService<IHostEnvironment>()?.ContentRootPath);
        var builder = SdxlPipeline.CreateBuilder();
        options.ApplyTo(builder);
        if (services.GetService<ILoggerFactory>() is { } loggerFactory)
        {
            builder.WithLogging(loggerFactory);
        }

        configureBuilder?.Invoke(services, builder);
        return builder.Build();
    }
}
