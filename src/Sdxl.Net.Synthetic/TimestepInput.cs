namespace Sdxl.Net.Synthetic;

/// <summary>The signature of the UNet <c>timestep</c> input, which differs between exporters and exporter versions.</summary>
public enum TimestepInput
{
    /// <summary>A rank-0 float tensor (the model's float type), as written by optimum 1.24 and later.</summary>
    FloatScalar,

    /// <summary>A float tensor of shape [1], as written by Microsoft Olive.</summary>
    FloatVector1,

    /// <summary>An int64 tensor of shape [1], as written by optimum before 1.23 (the 2023 hub exports).</summary>
    Int64Vector1,
}
