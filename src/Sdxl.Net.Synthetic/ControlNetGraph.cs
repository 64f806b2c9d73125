using DataType = Onnx.TensorProto.Types.DataType;

namespace Sdxl.Net.Synthetic;

/// <summary>
/// A ControlNetModel-shaped network with OnnxStack's SDXL ControlNet signature: the UNet's embeddings and down path
/// (its own weights) on <c>sample</c> plus the embedded <c>controlnet_cond</c> image (three stride-2 convolutions, the
/// VAE's factor 8), a 1×1 "zero convolution" per skip and for the middle block, each output times
/// <c>conditioning_scale</c>. Outputs <c>down_block_{k}_additional_residual</c> and <c>mid_block_additional_residual</c>.
/// </summary>
internal static class ControlNetGraph
{
    public static OnnxGraphBuilder Build(SyntheticModelOptions options, SyntheticControlNetOptions net, WeightRandom random)
    {
        var g = new OnnxGraphBuilder("controlnet", random, options.Float16);
        var channels = options.UnetBlockChannels();

        var sample = g.FloatInput("sample", "batch_size", 4, "height", "width");
        var timestep = net.VectorTimestep ? g.FloatInput("timestep", "batch_size") : g.FloatInput("timestep");
        var context = g.FloatInput("encoder_hidden_states", "batch_size", "sequence_length", options.CrossAttentionDim);
        var textEmbeds = g.FloatInput("text_embeds", "batch_size", options.ProjectionDim);
        var timeIds = g.FloatInput("time_ids", "batch_size", options.TimeIdsWidth);
        var cond = g.FloatInput("controlnet_cond", "batch_size", 3, "image_height", "image_width");
        var scale = net.DoubleScale
            ? g.Cast(g.Input("conditioning_scale", DataType.Double, 1), DataType.Float)
            : g.FloatInput("conditioning_scale", 1);

        var (embedding, timeEmbedDim) = UnetGraph.Embedding(g, options, timestep, textEmbeds, timeIds);
        var block = new UnetGraph.BlockFactory(g, embedding, timeEmbedDim, context, options.CrossAttentionDim);

        // controlnet_cond_embedding: 3 → 8 → 16 → channels[0], each stride 2 (pixels to latents).
        var c = g.SiLU(g.Conv("controlnet_cond_embedding.conv_in", cond, 3, 8, stride: 2));
        c = g.SiLU(g.Conv("controlnet_cond_embedding.blocks.0", c, 8, 16, stride: 2));
        c = g.Conv("controlnet_cond_embedding.conv_out", c, 16, channels[0], stride: 2);
        var h = g.Node("Add", [g.Conv("conv_in", sample, 4, channels[0]), c]);

        var (deepest, skips) = UnetGraph.Down(g, block, h, channels);
        for (int k = 0; k < skips.Count; k++)
        {
            var zero = g.Conv($"controlnet_down_blocks.{k}", skips[k].Value, skips[k].Channels, skips[k].Channels, kernel: 1);
            g.FloatOutput($"down_block_{k}_additional_residual", g.Node("Mul", [zero, scale]), "batch_size", skips[k].Channels, $"residual_{k}_height", $"residual_{k}_width");
        }

        var mid = g.Conv("controlnet_mid_block", UnetGraph.Mid(block, deepest, channels[^1]), channels[^1], channels[^1], kernel: 1);
        g.FloatOutput("mid_block_additional_residual", g.Node("Mul", [mid, scale]), "batch_size", channels[^1], "mid_height", "mid_width");
        return g;
    }
}
