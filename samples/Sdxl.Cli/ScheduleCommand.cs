using System.Globalization;
using System.Text.Json;
using Sdxl.Net.Schedulers;

namespace Sdxl.Cli;

/// <summary><c>sdxl schedule</c>: the timesteps, sigmas, initial noise sigma and order a run would use.</summary>
internal static class ScheduleCommand
{
    public static int Run(CliArguments options, TextWriter stdout)
    {
        var model = CliApp.ModelPath(options);
        var steps = options.Int("steps", 1, 1000) ?? throw new UsageException("--steps is required");
        var strength = options.Double("strength", 0, 1);
        var name = options.Optional("scheduler");
        var spacing = options.Optional("timestep-spacing");
        bool karras = options.Flag("karras");
        bool json = options.Flag("json");
        options.RejectUnknown();

        var configPath = Path.Combine(model, "scheduler", "scheduler_config.json");
        var config = File.Exists(configPath) ? SchedulerConfig.Load(configPath) : SchedulerConfig.SdxlBase;
        if (spacing is not null)
        {
            if (spacing is not ("leading" or "trailing" or "linspace"))
            {
                throw new UsageException($"--timestep-spacing must be leading, trailing or linspace; got '{spacing}'");
            }

            config = config.With("timestep_spacing", spacing);
        }

        if (karras)
        {
            config = config.With("use_karras_sigmas", true);
        }

        IScheduler scheduler;
        try
        {
            scheduler = name is null ? SchedulerCatalog.Default.FromConfig(config) : SchedulerCatalog.Default.Create(name, config);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or KeyNotFoundException)
        {
            throw new UsageException($"--scheduler: {e.Message}");
        }

        var preview = SchedulePreview.Create(scheduler, steps, strength);
        if (json)
        {
            stdout.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
            {
                ["timesteps"] = preview.Timesteps,
                ["sigmas"] = preview.Sigmas,
                ["init_noise_sigma"] = preview.InitNoiseSigma,
                ["order"] = preview.Order,
            }));
            return CliApp.Ok;
        }

        stdout.WriteLine($"scheduler:        {scheduler.Name}");
        stdout.WriteLine($"steps:            {preview.Timesteps.Count} model evaluations");
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"init_noise_sigma: {preview.InitNoiseSigma}"));
        stdout.WriteLine($"order:            {preview.Order}");
        stdout.WriteLine($"timesteps:        {string.Join(", ", preview.Timesteps.Select(t => t.ToString(CultureInfo.InvariantCulture)))}");
        if (preview.Sigmas is { } sigmas)
        {
            stdout.WriteLine($"sigmas:           {string.Join(", ", sigmas.Select(s => s.ToString(CultureInfo.InvariantCulture)))}");
        }

        return CliApp.Ok;
    }
}
