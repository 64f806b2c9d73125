using Microsoft.Extensions.DependencyInjection;
using Orleans.Placement;
using Orleans.Runtime.MembershipService.SiloMetadata;

namespace Sdxl.Net.Orleans;

/// <summary>Adds the Sdxl.Net grains to a silo.</summary>
public static class SdxlSiloBuilderExtensions
{
    /// <summary>
    /// Registers the job, queue and GPU-worker grains' placement and, when <see cref="SdxlClusterOptions.Devices"/> is not
    /// empty, declares the silo a GPU silo (<see cref="SdxlSiloMetadata.GpuKey"/>) and starts one worker grain per device.
    /// Every silo of the cluster must call it (placement filters are resolved on the placing silo).
    /// </summary>
    public static ISiloBuilder AddSdxlCluster(this ISiloBuilder silo, Action<SdxlClusterOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(silo);
        ArgumentNullException.ThrowIfNull(configure);
        var options = new SdxlClusterOptions();
        configure(options);
        silo.Services.Configure(configure);
        silo.Services.AddPlacementFilter<GpuSiloPlacementFilterStrategy, GpuSiloPlacementFilterDirector>(ServiceLifetime.Singleton);
        silo.Services.AddPlacementFilter<ControlSiloPlacementFilterStrategy, ControlSiloPlacementFilterDirector>(ServiceLifetime.Singleton);
        bool gpu = options.Devices.Count > 0;
        silo.UseSiloMetadata(new Dictionary<string, string> { [SdxlSiloMetadata.GpuKey] = gpu ? "true" : "false" });
        silo.Services.AddSingleton<LocalGpuWorkers>();
        if (gpu)
        {
            silo.Services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>, GpuWorkerStarter>();
        }

        return silo;
    }
}
