namespace Sdxl.Net.Distilled;

/// <summary>The sampling settings a few-step SDXL model is meant to be run with.</summary>
/// <param name="Name">The preset's name (e.g. <c>lightning-4</c>).</param>
/// <param name="Steps">Denoising steps.</param>
/// <param name="GuidanceScale">Guidance scale (≤ 1: no negative branch; for an LCM UNet, the guidance embedding's w).</param>
/// <param name="Scheduler">The scheduler's catalog name.</param>
/// <param name="Description">What the preset is for and where its settings come from.</param>
public sealed record FewStepPreset(string Name, int Steps, float GuidanceScale, string Scheduler, string Description)
{
    /// <summary>Applies the preset's steps, guidance and scheduler to <paramref name="request"/> and records its name.</summary>
    public GenerationRequest ApplyTo(GenerationRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return request with { Steps = Steps, GuidanceScale = GuidanceScale, Scheduler = Scheduler, Preset = Name };
    }
}

/// <summary>
/// Presets for distilled SDXL models, with the settings their model cards give for diffusers: SDXL-Turbo (1 step, no
/// guidance, Euler ancestral with trailing spacing, as its scheduler config), SDXL-Lightning (4 or 8 steps, no guidance,
/// Euler with trailing spacing), LCM-SDXL (4 steps, LCM scheduler, guidance embedding w = 8) and Hyper-SD's 8-step SDXL
/// LoRA (8 steps, no guidance, DDIM with trailing spacing).
/// </summary>
public static class FewStepPresets
{
    /// <summary>Every preset, by name.</summary>
    public static IReadOnlyList<FewStepPreset> All { get; } =
    [
        new("turbo", 1, 0f, "euler-a-trailing", "SDXL-Turbo: 1 step (up to 4), no guidance"),
        new("lightning-4", 4, 0f, "euler-trailing", "SDXL-Lightning 4-step UNet or LoRA: no guidance, trailing Euler"),
        new("lightning-8", 8, 0f, "euler-trailing", "SDXL-Lightning 8-step UNet or LoRA: no guidance, trailing Euler"),
        new("lcm", 4, 8f, "lcm", "LCM-SDXL UNet: 4 steps, guidance embedding w = 8 (no CFG)"),
        new("hyper-8", 8, 0f, "ddim-trailing", "Hyper-SD SDXL 8-step LoRA: no guidance, trailing DDIM"),
    ];

    /// <summary>The preset named <paramref name="name"/> (case-insensitive).</summary>
    /// <exception cref="ArgumentException">No preset has that name; the message lists them.</exception>
    public static FewStepPreset Get(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        foreach (var preset in All)
        {
            if (string.Equals(preset.Name, name, StringComparison.OrdinalIgnoreCase))
            {
                return preset;
            }
        }

        throw new ArgumentException($"Unknown preset '{name}'. Presets: {string.Join(", ", All.Select(p => p.Name))}.", nameof(name));
    }
}
