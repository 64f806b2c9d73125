using Orleans.Placement;
using Orleans.Runtime;
using Orleans.Runtime.MembershipService.SiloMetadata;
using Orleans.Runtime.Placement;

namespace Sdxl.Net.Orleans;

/// <summary>The silo metadata that marks a silo as hosting GPU workers (<c>sdxl.gpu = true</c>).</summary>
public static class SdxlSiloMetadata
{
    /// <summary>The metadata key.</summary>
    public const string GpuKey = "sdxl.gpu";

    internal static bool HasGpu(ISiloMetadataCache cache, SiloAddress silo) => Gpu(cache, silo) == "true";

    // Control silos say so explicitly: a silo whose metadata is not known yet is not assumed to be one.
    internal static bool IsControl(ISiloMetadataCache cache, SiloAddress silo) => Gpu(cache, silo) == "false";

    internal static bool IsKnown(ISiloMetadataCache cache, SiloAddress silo) => Gpu(cache, silo) is not null;

    private static string? Gpu(ISiloMetadataCache cache, SiloAddress silo) =>
        cache.GetSiloMetadata(silo) is { } metadata && metadata.Metadata.TryGetValue(GpuKey, out var value) ? value : null;
}

/// <summary>Places a grain only on silos whose metadata declares GPUs.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
internal sealed class GpuSiloPlacementFilterAttribute() : PlacementFilterAttribute(new GpuSiloPlacementFilterStrategy());

/// <summary>The strategy of <see cref="GpuSiloPlacementFilterAttribute"/>.</summary>
internal sealed class GpuSiloPlacementFilterStrategy() : PlacementFilterStrategy(order: 0);

internal sealed class GpuSiloPlacementFilterDirector(ISiloMetadataCache cache) : IPlacementFilterDirector
{
    public IEnumerable<SiloAddress> Filter(PlacementFilterStrategy filterStrategy, PlacementTarget target, IEnumerable<SiloAddress> silos) =>
        silos.Where(silo => SdxlSiloMetadata.HasGpu(cache, silo)).ToList();
}

/// <summary>
/// Places the job and queue grains on silos without GPUs (the gateway's), so that losing a GPU worker loses no job
/// state. Only with <see cref="SdxlClusterOptions.AllowControlGrainsOnGpuSilos"/> may a cluster of GPU silos alone use them.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
internal sealed class ControlSiloPlacementFilterAttribute() : PlacementFilterAttribute(new ControlSiloPlacementFilterStrategy());

/// <summary>The strategy of <see cref="ControlSiloPlacementFilterAttribute"/>.</summary>
internal sealed class ControlSiloPlacementFilterStrategy() : PlacementFilterStrategy(order: 0);

internal sealed class ControlSiloPlacementFilterDirector(ISiloMetadataCache cache, ILocalSiloDetails local, Microsoft.Extensions.Options.IOptions<SdxlClusterOptions> options)
    : IPlacementFilterDirector
{
    public IEnumerable<SiloAddress> Filter(PlacementFilterStrategy filterStrategy, PlacementTarget target, IEnumerable<SiloAddress> silos)
    {
        var all = silos.ToList();

        // This silo knows its own role without waiting for the metadata to spread: a control silo keeps the grains it creates.
        if (options.Value.Devices.Count == 0 && all.Contains(local.SiloAddress))
        {
            return [local.SiloAddress];
        }

        var control = all.Where(silo => SdxlSiloMetadata.IsControl(cache, silo)).ToList();
        if (control.Count > 0 || !options.Value.AllowControlGrainsOnGpuSilos)
        {
            // No control silo in this silo's view yet (its membership or metadata lags): place nothing, so the caller
            // retries, rather than put the queue on a worker that may die.
            return control;
        }

        // A cluster of GPU silos alone: any silo whose metadata has arrived.
        return all.All(silo => SdxlSiloMetadata.IsKnown(cache, silo)) ? all : [];
    }
}
