using System.Text.Json.Nodes;

namespace Sdxl.Net.Imaging;

/// <summary>
/// The sampler names AUTOMATIC1111's web UI writes in its <c>parameters</c> text ("Sampler: DPM++ 2M, Schedule type:
/// Karras", the form since its 1.9 release), so other tools read Sdxl.Net's recipes. Samplers without an A1111
/// counterpart keep Sdxl.Net's catalog name.
/// </summary>
internal static class A1111Sampler
{
    private static readonly Dictionary<string, string> Names = new(StringComparer.OrdinalIgnoreCase)
    {
        ["euler"] = "Euler",
        ["euler-a"] = "Euler a",
        ["heun"] = "Heun",
        ["lms"] = "LMS",
        ["kdpm2"] = "DPM2",
        ["kdpm2-a"] = "DPM2 a",
        ["dpmpp-2m"] = "DPM++ 2M",
        ["dpmpp-2m-sde"] = "DPM++ 2M SDE",
        ["unipc"] = "UniPC",
        ["ddim"] = "DDIM",
        ["ddpm"] = "DDPM",
        ["pndm"] = "PLMS",
        ["lcm"] = "LCM",
    };

    /// <summary>The A1111 sampler name and schedule type ("Karras" or <see langword="null"/>) of a run.</summary>
    public static (string Sampler, string? ScheduleType) For(string schedulerName, RecipeScheduler? settings)
    {
        const string KarrasSuffix = "-karras";
        bool karras = schedulerName.EndsWith(KarrasSuffix, StringComparison.OrdinalIgnoreCase)
            || (settings?.ConfigChanges.TryGetValue("use_karras_sigmas", out var flag) == true && flag is JsonValue v && v.TryGetValue(out bool on) && on);
        var baseName = schedulerName.EndsWith(KarrasSuffix, StringComparison.OrdinalIgnoreCase) ? schedulerName[..^KarrasSuffix.Length] : schedulerName;
        return (Names.TryGetValue(baseName, out var name) ? name : schedulerName, karras ? "Karras" : null);
    }
}
