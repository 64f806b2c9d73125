namespace Sdxl.Net.Tests;

/// <summary>
/// A fact that needs the tiny diffusers-reference models (../shared/golden/tiny-sdxl). When they are absent the test
/// is reported as skipped, with the reason, instead of silently passing.
/// </summary>
public sealed class TinySdxlFactAttribute : FactAttribute
{
    public TinySdxlFactAttribute()
    {
        if (TestPaths.TinySdxl is null)
        {
            Skip = TinySdxlTheoryAttribute.Reason;
        }
    }
}

/// <summary>A theory that needs the tiny diffusers-reference models; skipped, with the reason, when they are absent.</summary>
public sealed class TinySdxlTheoryAttribute : TheoryAttribute
{
    public const string Reason = "tiny SDXL reference models not found: expected ../shared/golden/tiny-sdxl beside the repository (or set SDXL_TINY_MODELS)";

    public TinySdxlTheoryAttribute()
    {
        if (TestPaths.TinySdxl is null)
        {
            Skip = Reason;
        }
    }
}
