using DataType = Onnx.TensorProto.Types.DataType;

namespace Sdxl.Net.Synthetic.Export;

/// <summary>
/// diffusers' <c>UNet2DConditionModel</c> as configured for SDXL, written module by module: sinusoidal time
/// projection and <c>time_embedding</c>; the "text_time" <c>add_embedding</c> of <c>text_embeds</c> ++ the sinusoidal
/// <c>time_ids</c>; down blocks of <c>layers_per_block</c> ResnetBlock2Ds with Transformer2DModels (linear projection,
/// BasicTransformerBlocks with self-attention, cross-attention and GEGLU feed-forward) on the levels that have
/// attention; the middle block; up blocks of one more resnet each, fed the skip connections in diffusers' order.
/// </summary>
internal static class UnetExport
{
    /// <summary>Writes the graph into <paramref name="g"/>.</summary>
    public static void Build(ExportGraph g, SdxlArchitecture a)
    {
        var channels = a.UnetBlockChannels;
        int temb = a.TimeEmbedDim;
        var sample = g.FloatInput("sample", "batch_size", 4, "height", "width");
        var timestep = g.FloatInput("timestep");
        var context = g.FloatInput("encoder_hidden_states", "batch_size", "sequence_length", a.CrossAttentionDim);
        var textEmbeds = g.FloatInput("text_embeds", "batch_size", a.PooledDim);
        var timeIds = g.FloatInput("time_ids", "batch_size", a.TimeIdsWidth);

        // Time embedding: the timestep (a scalar broadcast over the batch) and the text_time addition.
        string timeEmbedding;
        using (g.Enter("time_proj"))
        {
            timeEmbedding = g.Sinusoidal(timestep, channels[0]);
        }

        using (g.Enter("time_embedding"))
        {
            timeEmbedding = g.Linear("linear_2", g.SiLU(g.Linear("linear_1", timeEmbedding, channels[0], temb)), temb, temb);
        }

        string addition;
        using (g.Enter("add_time_proj"))
        {
            addition = g.Op("Reshape", [g.Sinusoidal(timeIds, a.AdditionTimeEmbedDim), g.Int64Constant(0, -1)]);
        }

        addition = g.Op("Concat", [textEmbeds, addition], Attr.Int("axis", 1));
        int additionWidth = a.PooledDim + (a.AdditionTimeEmbedDim * a.TimeIdsWidth);
        using (g.Enter("add_embedding"))
        {
            addition = g.Linear("linear_2", g.SiLU(g.Linear("linear_1", addition, additionWidth, temb)), temb, temb);
        }

        var embedding = g.Op("Add", [timeEmbedding, addition]);
        var blocks = new Blocks(g, a, g.SiLU(embedding), context);

        var h = g.Conv("conv_in", sample, 4, channels[0]);
        var skips = new Stack<(string Value, int Channels)>();
        skips.Push((h, channels[0]));
        int width = channels[0];
        for (int level = 0; level < channels.Length; level++)
        {
            using var down = g.Enter($"down_blocks.{level}");
            for (int j = 0; j < a.UnetLayersPerBlock; j++)
            {
                h = blocks.Resnet($"resnets.{j}", h, width, channels[level]);
                width = channels[level];
                if (a.UnetTransformerDepth[level] > 0)
                {
                    h = blocks.Transformer($"attentions.{j}", h, width, a.UnetTransformerDepth[level]);
                }

                skips.Push((h, width));
            }

            if (level < channels.Length - 1)
            {
                using (g.Enter("downsamplers.0"))
                {
                    h = g.Conv("conv", h, width, width, stride: 2);
                }

                skips.Push((h, width));
            }
        }

        using (g.Enter("mid_block"))
        {
            h = blocks.Resnet("resnets.0", h, width, width);
            h = blocks.Transformer("attentions.0", h, width, a.UnetMidTransformerDepth);
            h = blocks.Resnet("resnets.1", h, width, width);
        }

        for (int up = 0; up < channels.Length; up++)
        {
            int level = channels.Length - 1 - up;
            using var block = g.Enter($"up_blocks.{up}");
            for (int j = 0; j <= a.UnetLayersPerBlock; j++)
            {
                var (skip, skipChannels) = skips.Pop();
                h = blocks.Resnet($"resnets.{j}", g.Op("Concat", [h, skip], Attr.Int("axis", 1)), width + skipChannels, channels[level]);
                width = channels[level];
                if (a.UnetTransformerDepth[level] > 0)
                {
                    h = blocks.Transformer($"attentions.{j}", h, width, a.UnetTransformerDepth[level]);
                }
            }

            if (level > 0)
            {
                using (g.Enter("upsamplers.0"))
                {
                    var upsampled = g.Op("Resize", [h, string.Empty, g.Float32Constant([1f, 1f, 2f, 2f], 4)],
                        Attr.String("mode", "nearest"), Attr.String("nearest_mode", "floor"), Attr.String("coordinate_transformation_mode", "asymmetric"));
                    h = g.Conv("conv", upsampled, width, width);
                }
            }
        }

        h = g.SiLU(g.GroupNorm("conv_norm_out", h, width, a.NormGroups, 1e-5f));
        var output = g.Conv("conv_out", h, width, 4);
        g.FloatOutput("out_sample", output, "batch_size", 4, "height", "width");
    }

    /// <summary>The UNet's repeated modules, sharing the time embedding and the text context.</summary>
    internal sealed class Blocks(ExportGraph g, SdxlArchitecture a, string activatedEmbedding, string context)
    {
        /// <summary>ResnetBlock2D with the time embedding added after the first convolution.</summary>
        public string Resnet(string module, string x, int inChannels, int outChannels)
        {
            using var scope = g.Enter(module);
            var h = g.Conv("conv1", g.SiLU(g.GroupNorm("norm1", x, inChannels, a.NormGroups, 1e-5f)), inChannels, outChannels);
            var shift = g.Op("Unsqueeze", [g.Linear("time_emb_proj", activatedEmbedding, a.TimeEmbedDim, outChannels), g.Int64Constant(2, 3)]);
            h = g.Op("Add", [h, shift]);
            h = g.Conv("conv2", g.SiLU(g.GroupNorm("norm2", h, outChannels, a.NormGroups, 1e-5f)), outChannels, outChannels);
            var shortcut = inChannels == outChannels ? x : g.Conv("conv_shortcut", x, inChannels, outChannels, kernel: 1);
            return g.Op("Add", [shortcut, h]);
        }

        /// <summary>Transformer2DModel with use_linear_projection: norm, proj_in, <paramref name="depth"/> blocks, proj_out, residual.</summary>
        public string Transformer(string module, string x, int channels, int depth)
        {
            using var scope = g.Enter(module);
            var normalized = g.GroupNorm("norm", x, channels, a.NormGroups, 1e-6f);
            var tokens = g.Op("Reshape", [g.Op("Transpose", [normalized], Attr.Ints("perm", 0, 2, 3, 1)), g.Int64Constant(0, -1, channels)]);
            var h = g.Linear("proj_in", tokens, channels, channels);
            int heads = channels / a.UnetHeadDim;
            for (int i = 0; i < depth; i++)
            {
                using var block = g.Enter($"transformer_blocks.{i}");
                h = g.Op("Add", [Attention("attn1", g.LayerNorm("norm1", h, channels, 1e-5f), null, channels, channels, heads), h]);
                h = g.Op("Add", [Attention("attn2", g.LayerNorm("norm2", h, channels, 1e-5f), context, channels, a.CrossAttentionDim, heads), h]);
                h = g.Op("Add", [FeedForward(g.LayerNorm("norm3", h, channels, 1e-5f), channels), h]);
            }

            h = g.Linear("proj_out", h, channels, channels);

            // Back to NCHW with x's shape: [B, HW, C] → [B, H, W, C] → [B, C, H, W].
            var shape = g.Op("Shape", [x]);
            var nhwc = g.Op("Concat", [
                g.Op("Gather", [shape, g.Int64Constant(0, 2, 3)], Attr.Int("axis", 0)),
                g.Int64Constant(channels)], Attr.Int("axis", 0));
            var image = g.Op("Transpose", [g.Op("Reshape", [h, nhwc])], Attr.Ints("perm", 0, 3, 1, 2));
            return g.Op("Add", [image, x]);
        }

        private string Attention(string module, string x, string? crossContext, int channels, int contextWidth, int heads)
        {
            using var scope = g.Enter(module);
            var source = crossContext ?? x;
            var q = g.Linear("to_q", x, channels, channels, bias: false);
            var k = g.Linear("to_k", source, contextWidth, channels, bias: false);
            var v = g.Linear("to_v", source, contextWidth, channels, bias: false);
            return g.Linear("to_out.0", g.MultiHead(q, k, v, heads, a.UnetHeadDim), channels, channels);
        }

        /// <summary>GEGLU feed-forward: proj to 2 × 4C, value · gelu(gate), back to C.</summary>
        private string FeedForward(string x, int channels)
        {
            using var scope = g.Enter("ff");
            string projected;
            using (g.Enter("net.0"))
            {
                projected = g.Linear("proj", x, channels, 8L * channels);
            }

            // hidden_states, gate = proj(x).chunk(2, dim=-1)
            var gate = g.Op("Slice", [projected, g.Int64Constant(4L * channels), g.Int64Constant(8L * channels), g.Int64Constant(-1)]);
            var value = g.Op("Slice", [projected, g.Int64Constant(0), g.Int64Constant(4L * channels), g.Int64Constant(-1)]);
            return g.Linear("net.2", g.Op("Mul", [value, g.Gelu(gate)]), 4L * channels, channels);
        }
    }

    /// <summary>The element type name written to configs.</summary>
    internal static string TorchDtype(DataType type) => type == DataType.Float16 ? "float16" : "float32";
}
