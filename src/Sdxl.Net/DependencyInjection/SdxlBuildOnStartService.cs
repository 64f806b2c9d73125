using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Sdxl.Net.DependencyInjection;

/// <summary>A pipeline registered by <c>AddSdxl</c>/<c>AddKeyedSdxl</c>: its options name and service key.</summary>
internal sealed record SdxlRegistration(string OptionsName, object? ServiceKey, bool Keyed);

/// <summary>
/// Builds, when the host starts, every registered pipeline whose options set <see cref="SdxlOptions.BuildOnStart"/>:
/// the models load before the application serves, and a folder that cannot be used stops the start.
/// </summary>
internal sealed class SdxlBuildOnStartService(IServiceProvider services, IEnumerable<SdxlRegistration> registrations, IOptionsMonitor<SdxlOptions> options) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var registration in registrations)
        {
            if (!options.Get(registration.OptionsName).BuildOnStart)
            {
                continue;
            }

            // Building reads gigabytes of weights: off the host's start-up thread.
            await Task.Run(() => _ = registration.Keyed
                ? services.GetRequiredKeyedService<SdxlPipeline>(registration.ServiceKey)
                : services.GetRequiredService<SdxlPipeline>(), cancellationToken).ConfigureAwait(false);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
