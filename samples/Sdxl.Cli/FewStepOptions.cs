using System.Globalization;
using Sdxl.Net.Distilled;

namespace Sdxl.Cli;

/// <summary>
/// The few-step flags of <c>generate</c>: <c>--preset</c> (defaults for steps, guidance and scheduler that explicit flags
/// override), <c>--eta</c>, and custom <c>--timesteps</c> / <c>--sigmas</c> lists (a list sets the step count).
/// </summary>
internal sealed record FewStepOptions(FewStepPreset? Preset, float? Eta, double[]? Timesteps, double[]? Sigmas)
{
    public static FewStepOptions Parse(CliArguments options)
    {
        FewStepPreset? preset = null;
        if (options.Optional("preset") is { } name)
        {
            preset = FewStepPresets.All.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase))
                ?? throw new UsageException($"--preset must be one of {string.Join(", ", FewStepPresets.All.Select(p => p.Name))}; got '{name}'");
        }

        var eta = options.Double("eta", 0, 1000);
        var timesteps = List(options, "timesteps");
        var sigmas = List(options, "sigmas");
        if (timesteps is not null && sigmas is not null)
        {
            throw new UsageException("give either --timesteps or --sigmas, not both");
        }

        if (sigmas is { Length: < 2 })
        {
            throw new UsageException("--sigmas needs at least two values: the noise levels of each step and the final sigma (e.g. 14.61,4.08,1.0,0.0)");
        }

        return new FewStepOptions(preset, eta is null ? null : (float)eta.Value, timesteps, sigmas);
    }

    /// <summary>The step count a custom list implies (diffusers ignores num_inference_steps then).</summary>
    public int? ListSteps => Timesteps?.Length ?? (Sigmas is { } s ? s.Length - 1 : null);

    private static double[]? List(CliArguments options, string name)
    {
        if (options.Optional(name) is not { } text)
        {
            return null;
        }

        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var values = new double[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            if (!double.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out values[i]) || !double.IsFinite(values[i]) || values[i] < 0)
            {
                throw new UsageException($"--{name} must be non-negative numbers separated by commas, e.g. 999,749,499,249; got '{text}'");
            }
        }

        if (values.Length == 0)
        {
            throw new UsageException($"--{name} needs at least one value");
        }

        return values;
    }
}
