using DataType = Onnx.TensorProto.Types.DataType;

namespace Sdxl.Net.Synthetic;

/// <summary>
/// A UNet2DConditionModel-shaped denoiser: conv_in, one residual block per level (cross-attention to
/// <c>encoder_hidden_states</c> from the second level on), stride-2 downsampling, a middle block, nearest-neighbour
/// upsampling with skip connections, conv_out. The timestep (sinusoidal) and the SDXL "text_time" addition
/// (<c>text_embeds</c> ++ sinusoidal <c>time_ids</c>) are embedded, summed and added inside every residual block.
/// </summary>
internal static class UnetGraph
{
    /// <summary>Group-norm group count (32 in SDXL).</summary>
    public const int NormGroups = 8;

    /// <summary>The sinusoidal width of each <c>time_ids</c> value (256 in SDXL).</summary>
    public const int AdditionTimeEmbedDim = 8;

    /// <summary>Builds the <c>unet</c> graph for <paramref name="options"/>.</summary>
    /// <param name="options">Sizes and signature variant.</param>
    /// <param name="random">The source of the weights.</param>
    /// <param name="countOnly">Only count the weights.</param>
    /// <param name="controlNetResiduals">
    /// Adds ControlNet residual inputs (<c>down_block_{k}_additional_residual</c>, <c>mid_block_additional_residual</c>)
    /// where diffusers adds them: to each skip connection the up path reads and to the middle block's output. With zero
    /// residuals the graph computes exactly the plain UNet (same weights).
    /// </param>
    public static OnnxGraphBuilder Build(SyntheticModelOptions options, WeightRandom random, bool countOnly = false, bool controlNetResiduals = false)
    {
        var g = new OnnxGraphBuilder("unet", random, options.Float16, countOnly, options.DiffusersModuleNames);
        var channels = options.UnetBlockChannels();

        var sample = g.FloatInput("sample", "batch_size", options.UnetInChannels, "height", "width");
        var timestep = options.Timestep switch
        {
            TimestepInput.FloatScalar => g.FloatInput("timestep"),
            TimestepInput.FloatVector1 => g.FloatInput("timestep", 1),
            _ => g.Cast(g.Input("timestep", DataType.Int64, "steps"), DataType.Float),
        };
        var context = g.FloatInput("encoder_hidden_states", "batch_size",
            options.UnetSequenceLength is { } tokens ? (Dim)tokens : "sequence_length", options.CrossAttentionDim);
        var textEmbeds = g.FloatInput("text_embeds", "batch_size", options.ProjectionDim);
        var timeIds = g.FloatInput("time_ids", "batch_size", options.TimeIdsWidth);

        var (embedding, timeEmbedDim) = Embedding(g, options, timestep, textEmbeds, timeIds, withTimestepCond: true);
        var block = new BlockFactory(g, embedding, timeEmbedDim, context, options.CrossAttentionDim);

        var (h, skips) = Down(g, block, g.Conv("conv_in", sample, options.UnetInChannels, channels[0]), channels);
        if (controlNetResiduals)
        {
            // diffusers: down_block_res_samples[k] += down_block_additional_residuals[k] (the skips only, not the
            // down path), then mid_block output += mid_block_additional_residual.
            for (int k = 0; k < skips.Count; k++)
            {
                var residual = g.FloatInput($"down_block_{k}_additional_residual", "batch_size", $"residual_{k}_channels", $"residual_{k}_height", $"residual_{k}_width");
                skips[k] = skips[k] with { Value = g.Node("Add", [skips[k].Value, residual]) };
            }
        }

        h = Mid(block, h, channels[^1]);
        if (controlNetResiduals)
        {
            h = g.Node("Add", [h, g.FloatInput("mid_block_additional_residual", "batch_size", "mid_channels", "mid_height", "mid_width")]);
        }

        var width = channels[^1];
        for (var level = channels.Length - 1; level >= 0; level--)
        {
            var up = channels.Length - 1 - level;
            if (level < channels.Length - 1)
            {
                var upsampled = g.Node("Resize", [h, string.Empty, g.FloatConstant([1f, 1f, 2f, 2f], 4)], Attr.String("mode", "nearest"));
                h = g.Conv($"up_blocks.{up - 1}.upsamplers.0.conv", upsampled, width, width);
            }

            // The level's resnet reads the block output's skip; the other skips of this resolution (conv_in's on the
            // first level, the downsampler's that produced it on the others) join weightlessly as their channel mean,
            // so every skip a ControlNet residual touches reaches the output.
            var levelSkips = skips.Where(s => s.Level == level).ToList();
            var main = levelSkips.Single(s => s.IsBlockOutput);
            h = block.Residual($"up_blocks.{up}.resnets.0", g.Node("Concat", [h, main.Value], Attr.Int("axis", 1)), width + channels[level], channels[level]);
            width = channels[level];
            foreach (var extra in levelSkips.Where(s => !s.IsBlockOutput))
            {
                h = g.Node("Add", [h, g.Node("ReduceMean", [extra.Value], Attr.Ints("axes", 1), Attr.Int("keepdims", 1))]);
            }

            if (level > 0)
            {
                h = block.CrossAttention($"up_blocks.{up}.attentions.0", h, width);
            }
        }

        // GroupNorm + SiLU leave about a third of unit variance; the gain brings the noise prediction back to ~1.
        var output = g.Conv("conv_out", g.SiLU(g.GroupNorm("conv_norm_out", h, width, NormGroups)), width, 4, gain: 1.7f);
        g.FloatOutput("out_sample", output, "batch_size", 4, "height", "width");
        return g;
    }

    /// <summary>The sinusoidal timestep embedding through its MLP plus the SDXL "text_time" addition embedding, SiLU'd.</summary>
    /// <remarks>
    /// With <paramref name="withTimestepCond"/> and <see cref="SyntheticModelOptions.TimeCondProjDim"/>, the graph also
    /// takes <c>timestep_cond</c>, projected without bias and added to the sinusoidal projection before linear_1 (LCM).
    /// </remarks>
    internal static (string Embedding, int Width) Embedding(OnnxGraphBuilder g, SyntheticModelOptions options, string timestep, string textEmbeds, string timeIds,
        bool withTimestepCond = false)
    {
        var channels = options.UnetBlockChannels();
        var timeEmbedDim = 4 * channels[0];
        var timeProjection = g.Sinusoidal(timestep, channels[0]);
        if (withTimestepCond && options.TimeCondProjDim is { } condDim)
        {
            // diffusers' TimestepEmbedding: sample = sample + cond_proj(condition), before linear_1.
            var condition = g.FloatInput("timestep_cond", "batch_size", condDim);
            timeProjection = g.Node("Add", [timeProjection, g.Linear("time_embedding.cond_proj", condition, condDim, channels[0], bias: false)]);
        }

        var timeEmbedding = g.Linear("time_embedding.linear_2",
            g.SiLU(g.Linear("time_embedding.linear_1", timeProjection, channels[0], timeEmbedDim)), timeEmbedDim, timeEmbedDim);
        var timeIdsEmbedding = g.Node("Reshape", [g.Sinusoidal(timeIds, AdditionTimeEmbedDim), g.Int64Constant(0, -1)]);
        var additionInput = g.Node("Concat", [textEmbeds, timeIdsEmbedding], Attr.Int("axis", 1));
        var additionWidth = options.ProjectionDim + AdditionTimeEmbedDim * options.TimeIdsWidth;
        var additionEmbedding = g.Linear("add_embedding.linear_2",
            g.SiLU(g.Linear("add_embedding.linear_1", additionInput, additionWidth, timeEmbedDim, twoDimensional: true)), timeEmbedDim, timeEmbedDim, twoDimensional: true);
        return (g.SiLU(g.Node("Add", [timeEmbedding, additionEmbedding])), timeEmbedDim);
    }

    /// <summary>
    /// The down path from conv_in's output: one residual block per level (cross-attention from the second level on)
    /// and a stride-2 downsampler between levels. Returns the deepest features and the skips in diffusers'
    /// <c>down_block_res_samples</c> order: conv_in, then per level its block output and its downsampler output.
    /// </summary>
    internal static (string H, List<Skip> Skips) Down(OnnxGraphBuilder g, BlockFactory block, string h, int[] channels)
    {
        var skips = new List<Skip> { new(h, channels[0], 0, false) };
        var width = channels[0];
        for (var level = 0; level < channels.Length; level++)
        {
            h = block.Residual($"down_blocks.{level}.resnets.0", h, width, channels[level]);
            width = channels[level];
            if (level > 0)
            {
                h = block.CrossAttention($"down_blocks.{level}.attentions.0", h, width);
            }

            skips.Add(new(h, width, level, true));
            if (level < channels.Length - 1)
            {
                h = g.Conv($"down_blocks.{level}.downsamplers.0.conv", h, width, width, stride: 2);
                skips.Add(new(h, width, level + 1, false));
            }
        }

        return (h, skips);
    }

    /// <summary>The middle block: residual, cross-attention, residual.</summary>
    internal static string Mid(BlockFactory block, string h, int width)
    {
        h = block.Residual("mid_block.resnets.0", h, width, width);
        h = block.CrossAttention("mid_block.attentions.0", h, width);
        return block.Residual("mid_block.resnets.1", h, width, width);
    }

    /// <summary>One skip connection: its value, channels, resolution level and whether it is a block's output.</summary>
    internal readonly record struct Skip(string Value, int Channels, int Level, bool IsBlockOutput);

    internal sealed class BlockFactory(OnnxGraphBuilder g, string embedding, int embeddingWidth, string context, int contextWidth)
    {
        public string Residual(string name, string x, int inChannels, int outChannels)
        {
            var h = g.Conv(name + ".conv1", g.SiLU(g.GroupNorm(name + ".norm1", x, inChannels, NormGroups)), inChannels, outChannels);
            var timeShift = g.Node("Unsqueeze", [g.Linear(name + ".time_emb_proj", embedding, embeddingWidth, outChannels, twoDimensional: true), g.Int64Constant(2, 3)]);
            h = g.Node("Add", [h, timeShift]);
            h = g.Conv(name + ".conv2", g.SiLU(g.GroupNorm(name + ".norm2", h, outChannels, NormGroups)), outChannels, outChannels);
            var shortcut = inChannels == outChannels ? x : g.Conv(name + ".conv_shortcut", x, inChannels, outChannels, kernel: 1);
            return g.Node("Add", [shortcut, h]);
        }

        /// <summary>Single-head attention from the pixels (queries) to the text tokens (keys and values), residual.</summary>
        public string CrossAttention(string name, string x, int channels)
        {
            var normalized = g.GroupNorm(name + ".norm", x, channels, NormGroups);
            var pixels = g.Node("Transpose", [g.Node("Reshape", [normalized, g.Int64Constant(0, channels, -1)])], Attr.Ints("perm", 0, 2, 1));
            // Module names as diffusers' Transformer2DModel: the cross-attention is attn2 of transformer block 0.
            var attention = g.ModuleNodeNames ? name + ".transformer_blocks.0.attn2" : name;
            var query = g.Linear(attention + ".to_q", pixels, channels, channels, bias: false);
            var key = g.Linear(attention + ".to_k", context, contextWidth, channels, bias: false);
            var value = g.Linear(attention + ".to_v", context, contextWidth, channels, bias: false);
            var scores = g.Node("Mul", [
                g.Node("MatMul", [query, g.Node("Transpose", [key], Attr.Ints("perm", 0, 2, 1))]),
                g.FloatConstant([1f / MathF.Sqrt(channels)])]);
            var attended = g.Node("MatMul", [g.Node("Softmax", [scores], Attr.Int("axis", -1)), value]);
            var projected = g.Linear(attention + (g.ModuleNodeNames ? ".to_out.0" : ".to_out"), attended, channels, channels);
            var image = g.Node("Reshape", [g.Node("Transpose", [projected], Attr.Ints("perm", 0, 2, 1)), g.Node("Shape", [x])]);
            return g.Node("Add", [x, image]);
        }
    }
}
