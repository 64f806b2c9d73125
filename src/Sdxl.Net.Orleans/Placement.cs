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
/// Prefers silos without GPUs (the gateway's) for the job and queue grains, so that losing a GPU worker loses no job
/// state; falls back to every silo when all have GPUs (one <c>--role all</c> process).
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
        if (control.Count > 0)
        {
            return control;
        }

        // No control silo known yet: while some silo's metadata has not arrived, place nothing (the caller retries)
        // rather than put the queue on a worker that may die. Only a cluster of GPU silos alone uses them all.
        return all.All(silo => SdxlSiloMetadata.IsKnown(cache, silo)) ? all : [];
    }
}
