using Sdxl.Net.Models;
using Sdxl.Net.Runtime;

namespace Sdxl.Net.ControlNet;

/// <summary>One ControlNet residual: its ONNX name, channels and spatial downscale relative to the latents.</summary>
/// <param name="Name">The input/output name (<c>down_block_{i}_additional_residual</c> or <c>mid_block_additional_residual</c>).</param>
/// <param name="Channels">Its channels.</param>
/// <param name="Downscale">Latent size divided by its size (1, 2, 4, ...).</param>
internal readonly record struct ResidualShape(string Name, int Channels, int Downscale);

/// <summary>
/// The names and shapes of the residuals a ControlNet hands to a UNet, in OnnxStack's form: one tensor per skip
/// connection of the UNet's down path (<c>down_block_{i}_additional_residual</c>, 9 for SDXL: conv_in, then per level
/// its resnets and downsampler) and the middle block's (<c>mid_block_additional_residual</c>). diffusers adds them to the
/// skip connections and to the middle block's output.
/// </summary>
internal static class ResidualLayout
{
    public const string MidName = "mid_block_additional_residual";

    public static string DownName(int index) => $"down_block_{index}_additional_residual";

    /// <summary>Whether <paramref name="name"/> is a ControlNet residual name.</summary>
    public static bool IsResidual(string name) => name == MidName || (name.StartsWith("down_block_", StringComparison.Ordinal) && name.EndsWith("_additional_residual", StringComparison.Ordinal));

    /// <summary>
    /// The residual names among a model's tensors in order (down 0..n-1, then mid), or <see langword="null"/> when it
    /// has none.
    /// </summary>
    /// <exception cref="SdxlModelException">Some residuals exist but the set is incomplete (a gap, or no mid residual).</exception>
    public static string[]? Names(IEnumerable<string> names, string component, string path)
    {
        var present = new HashSet<string>(StringComparer.Ordinal);
        foreach (var n in names)
        {
            if (IsResidual(n))
            {
                present.Add(n);
            }
        }

        if (present.Count == 0)
        {
            return null;
        }

        int down = present.Count - (present.Contains(MidName) ? 1 : 0);
        var result = new string[down + 1];
        for (int i = 0; i < down; i++)
        {
            result[i] = DownName(i);
            if (!present.Contains(result[i]))
            {
                throw new SdxlModelException($"{component}: ControlNet residuals must be named down_block_0_additional_residual .. down_block_{down - 1}_additional_residual and mid_block_additional_residual; '{result[i]}' is missing among [{string.Join(", ", present.Order(StringComparer.Ordinal))}]. File: '{path}'.");
            }
        }

        if (!present.Contains(MidName))
        {
            throw new SdxlModelException($"{component}: the model has down-block ControlNet residuals but no '{MidName}'. File: '{path}'.");
        }

        result[down] = MidName;
        return result;
    }

    /// <summary>
    /// The residual shapes a UNet2DConditionModel / ControlNetModel config describes: conv_in at full size, then per
    /// level <c>layers_per_block</c> resnet outputs and (except on the last level) a downsampler output half the size,
    /// then the middle block at the deepest level. <see langword="null"/> when the config lacks the keys or describes
    /// another number of down residuals than <paramref name="downCount"/>.
    /// </summary>
    public static ResidualShape[]? FromConfig(JsonConfig config, int downCount)
    {
        var channels = config.GetInt32Array("block_out_channels");
        int layers = config.GetInt32("layers_per_block", -1);
        if (channels is not { Length: > 0 } || layers < 1)
        {
            return null;
        }

        var shapes = new List<ResidualShape> { new(DownName(0), channels[0], 1) };
        for (int level = 0; level < channels.Length; level++)
        {
            for (int l = 0; l < layers; l++)
            {
                shapes.Add(new(DownName(shapes.Count), channels[level], 1 << level));
            }

            if (level < channels.Length - 1)
            {
                shapes.Add(new(DownName(shapes.Count), channels[level], 1 << (level + 1)));
            }
        }

        if (shapes.Count != downCount)
        {
            return null;
        }

        shapes.Add(new(MidName, channels[^1], 1 << (channels.Length - 1)));
        return [.. shapes];
    }

    /// <summary>Whether the fixed channel counts of <paramref name="specs"/> agree with <paramref name="shapes"/>.</summary>
    public static bool ChannelsAgree(IReadOnlyList<ResidualShape> shapes, IReadOnlyDictionary<string, TensorSpec> specs)
    {
        foreach (var s in shapes)
        {
            if (specs.TryGetValue(s.Name, out var spec) && spec.Rank == 4 && spec.Dimensions[1] > 0 && spec.Dimensions[1] != s.Channels)
            {
                return false;
            }
        }

        return true;
    }
}
