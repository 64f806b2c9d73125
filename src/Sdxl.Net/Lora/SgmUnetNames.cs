using System.Globalization;
using System.Text.Json;

namespace Sdxl.Net.Lora;

/// <summary>
/// Translates the UNet module names of sd-scripts' SDXL (SGM / original LDM) layout, which most kohya SDXL LoRAs carry
/// (<c>input_blocks_4_1_transformer_blocks_0_attn1_to_q</c>, <c>middle_block_0_in_layers_2</c>,
/// <c>output_blocks_2_2_conv</c>), into diffusers module names in kohya's underscore form. The block numbering is
/// derived from the UNet's own configuration — levels, <c>layers_per_block</c>, which blocks have attention — as
/// diffusers' conversion of LDM checkpoints does, not from a table fixed for one model size.
/// </summary>
internal sealed class SgmUnetNames
{
    private readonly List<(string Sgm, string Diffusers, BlockKind Kind)> _blocks = [];

    private SgmUnetNames()
    {
    }

    private enum BlockKind
    {
        Plain,
        Resnet,
        Downsampler,
        Upsampler,
    }

    /// <summary>The UNet layout: per level, the resnets per block and whether down and up blocks have attention.</summary>
    /// <param name="LayersPerBlock">Resnets in each down block (up blocks have one more).</param>
    /// <param name="DownAttention">Whether each down block has attentions.</param>
    /// <param name="UpAttention">Whether each up block has attentions.</param>
    /// <param name="MidAttention">Whether the mid block has an attention between its two resnets.</param>
    internal sealed record Layout(int[] LayersPerBlock, bool[] DownAttention, bool[] UpAttention, bool MidAttention);

    /// <summary>
    /// The layout from <c>unet/config.json</c> (<c>block_out_channels</c>, <c>layers_per_block</c>,
    /// <c>down_block_types</c>, <c>up_block_types</c>, <c>mid_block_type</c>); <see langword="null"/> when the file or a
    /// field is missing.
    /// </summary>
    public static Layout? LayoutFromConfig(string configPath)
    {
        if (!File.Exists(configPath))
        {
            return null;
        }

        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(configPath));
            var root = doc.RootElement;
            if (!root.TryGetProperty("down_block_types", out var down) || down.ValueKind != JsonValueKind.Array
                || !root.TryGetProperty("up_block_types", out var up) || up.ValueKind != JsonValueKind.Array
                || down.GetArrayLength() != up.GetArrayLength() || down.GetArrayLength() == 0)
            {
                return null;
            }

            int levels = down.GetArrayLength();
            var layers = new int[levels];
            if (root.TryGetProperty("layers_per_block", out var lpb) && lpb.ValueKind == JsonValueKind.Array && lpb.GetArrayLength() == levels)
            {
                int i = 0;
                foreach (var v in lpb.EnumerateArray())
                {
                    layers[i++] = v.GetInt32();
                }
            }
            else
            {
                layers.AsSpan().Fill(root.TryGetProperty("layers_per_block", out lpb) && lpb.ValueKind == JsonValueKind.Number ? lpb.GetInt32() : 2);
            }

            var downAttention = down.EnumerateArray().Select(t => t.GetString()?.Contains("CrossAttn", StringComparison.Ordinal) == true).ToArray();
            var upAttention = up.EnumerateArray().Select(t => t.GetString()?.Contains("CrossAttn", StringComparison.Ordinal) == true).ToArray();
            bool mid = !root.TryGetProperty("mid_block_type", out var midType) || midType.ValueKind != JsonValueKind.String
                || midType.GetString()!.Contains("CrossAttn", StringComparison.Ordinal);
            return new Layout(layers, downAttention, upAttention, mid);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            return null;
        }
    }

    /// <summary>The layout read from the module paths of an exported UNet (when it has no config.json).</summary>
    public static Layout? LayoutFromModules(IEnumerable<string> modulePaths)
    {
        var downResnets = new Dictionary<int, HashSet<int>>();
        var downAttn = new HashSet<int>();
        var upAttn = new HashSet<int>();
        bool mid = false;
        int upLevels = 0;
        foreach (var path in modulePaths)
        {
            var parts = path.Split('.');
            if (parts.Length >= 4 && parts[0] == "down_blocks" && int.TryParse(parts[1], CultureInfo.InvariantCulture, out var level))
            {
                if (parts[2] == "resnets" && int.TryParse(parts[3], CultureInfo.InvariantCulture, out var j))
                {
                    (downResnets.TryGetValue(level, out var set) ? set : downResnets[level] = []).Add(j);
                }
                else if (parts[2] == "attentions")
                {
                    downAttn.Add(level);
                }
            }
            else if (parts.Length >= 3 && parts[0] == "up_blocks" && int.TryParse(parts[1], CultureInfo.InvariantCulture, out var upLevel))
            {
                upLevels = Math.Max(upLevels, upLevel + 1);
                if (parts[2] == "attentions")
                {
                    upAttn.Add(upLevel);
                }
            }
            else if (parts.Length >= 2 && parts[0] == "mid_block" && parts[1] == "attentions")
            {
                mid = true;
            }
        }

        int levels = downResnets.Count == 0 ? 0 : downResnets.Keys.Max() + 1;
        if (levels == 0 || upLevels != levels)
        {
            return null;
        }

        var layers = new int[levels];
        for (int i = 0; i < levels; i++)
        {
            layers[i] = downResnets.TryGetValue(i, out var set) ? set.Count : 0;
        }

        return new Layout(layers, Enumerable.Range(0, levels).Select(downAttn.Contains).ToArray(), Enumerable.Range(0, levels).Select(upAttn.Contains).ToArray(), mid);
    }

    /// <summary>Builds the block table of <paramref name="layout"/>, as diffusers numbers LDM blocks.</summary>
    public static SgmUnetNames For(Layout layout)
    {
        var names = new SgmUnetNames();
        int levels = layout.LayersPerBlock.Length;
        names.Add("input_blocks_0_0", "conv_in", BlockKind.Plain);
        names.Add("time_embed_0", "time_embedding_linear_1", BlockKind.Plain);
        names.Add("time_embed_2", "time_embedding_linear_2", BlockKind.Plain);
        names.Add("label_emb_0_0", "add_embedding_linear_1", BlockKind.Plain);
        names.Add("label_emb_0_2", "add_embedding_linear_2", BlockKind.Plain);
        names.Add("out_0", "conv_norm_out", BlockKind.Plain);
        names.Add("out_2", "conv_out", BlockKind.Plain);

        int n = 1;
        for (int i = 0; i < levels; i++)
        {
            for (int j = 0; j < layout.LayersPerBlock[i]; j++, n++)
            {
                names.Add($"input_blocks_{n}_0", $"down_blocks_{i}_resnets_{j}", BlockKind.Resnet);
                if (layout.DownAttention[i])
                {
                    names.Add($"input_blocks_{n}_1", $"down_blocks_{i}_attentions_{j}", BlockKind.Plain);
                }
            }

            if (i < levels - 1)
            {
                names.Add($"input_blocks_{n}_0", $"down_blocks_{i}_downsamplers_0", BlockKind.Downsampler);
                n++;
            }
        }

        names.Add("middle_block_0", "mid_block_resnets_0", BlockKind.Resnet);
        if (layout.MidAttention)
        {
            names.Add("middle_block_1", "mid_block_attentions_0", BlockKind.Plain);
            names.Add("middle_block_2", "mid_block_resnets_1", BlockKind.Resnet);
        }
        else
        {
            names.Add("middle_block_1", "mid_block_resnets_1", BlockKind.Resnet);
        }

        n = 0;
        for (int i = 0; i < levels; i++)
        {
            // Up block i mirrors down level (levels − 1 − i) and has one resnet more.
            int resnets = layout.LayersPerBlock[levels - 1 - i] + 1;
            for (int j = 0; j < resnets; j++, n++)
            {
                names.Add($"output_blocks_{n}_0", $"up_blocks_{i}_resnets_{j}", BlockKind.Resnet);
                if (layout.UpAttention[i])
                {
                    names.Add($"output_blocks_{n}_1", $"up_blocks_{i}_attentions_{j}", BlockKind.Plain);
                }

                if (j == resnets - 1 && i < levels - 1)
                {
                    names.Add($"output_blocks_{n}_{(layout.UpAttention[i] ? 2 : 1)}", $"up_blocks_{i}_upsamplers_0", BlockKind.Upsampler);
                }
            }
        }

        // Longest prefixes first, so input_blocks_10_0 is never read as input_blocks_1_….
        names._blocks.Sort((a, b) => b.Sgm.Length.CompareTo(a.Sgm.Length));
        return names;
    }

    /// <summary>Whether a kohya UNet module name uses SGM numbering.</summary>
    public static bool IsSgmName(string name) =>
        name.StartsWith("input_blocks_", StringComparison.Ordinal) || name.StartsWith("middle_block_", StringComparison.Ordinal)
        || name.StartsWith("output_blocks_", StringComparison.Ordinal) || name.StartsWith("time_embed_", StringComparison.Ordinal)
        || name.StartsWith("label_emb_", StringComparison.Ordinal) || name.StartsWith("out_", StringComparison.Ordinal);

    /// <summary>The diffusers name (underscore form) of an SGM module name; <see langword="null"/> when no block matches.</summary>
    public string? ToDiffusers(string sgmName)
    {
        foreach (var (sgm, diffusers, kind) in _blocks)
        {
            if (!sgmName.StartsWith(sgm, StringComparison.Ordinal) || sgmName.Length > sgm.Length && sgmName[sgm.Length] != '_')
            {
                continue;
            }

            var inner = sgmName.Length > sgm.Length ? sgmName[(sgm.Length + 1)..] : string.Empty;
            string? mapped = kind switch
            {
                BlockKind.Resnet => inner switch
                {
                    "in_layers_0" => "norm1",
                    "in_layers_2" => "conv1",
                    "emb_layers_1" => "time_emb_proj",
                    "out_layers_0" => "norm2",
                    "out_layers_3" => "conv2",
                    "skip_connection" => "conv_shortcut",
                    _ => null,
                },
                BlockKind.Downsampler => inner == "op" ? "conv" : null,
                BlockKind.Upsampler => inner == "conv" ? "conv" : null,
                _ => inner,
            };
            if (mapped is null)
            {
                return null;
            }

            return mapped.Length == 0 ? diffusers : diffusers + "_" + mapped;
        }

        return null;
    }

    private void Add(string sgm, string diffusers, BlockKind kind) => _blocks.Add((sgm, diffusers, kind));
}
