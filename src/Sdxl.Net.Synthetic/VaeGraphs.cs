namespace Sdxl.Net.Synthetic;

/// <summary>AutoencoderKL-shaped VAE halves: three factor-2 resamplings (×8 in all) between 4 latent and 3 image channels.</summary>
internal static class VaeGraphs
{
    /// <summary>The channel width inside both halves.</summary>
    public const int Channels = 16;

    /// <summary>The number of factor-2 resamplings: latents are 1/8 of the image size.</summary>
    private const int Resamplings = 3;

    /// <summary>
    /// <c>latent_sample</c> [B, 4, h, w] → <c>sample</c> [B, 3, 8h, 8w], squashed by tanh into the (−1, 1) range a
    /// real decoder mostly produces.
    /// </summary>
    public static OnnxGraphBuilder BuildDecoder(WeightRandom random, bool float16Io)
    {
        var g = new OnnxGraphBuilder("vae_decoder", random, float16Io);
        var latents = g.FloatInput("latent_sample", "batch_size", 4, "latent_height", "latent_width");
        var h = g.Conv("post_quant_conv", latents, 4, 4, kernel: 1);
        h = g.Conv("decoder.conv_in", h, 4, Channels);
        for (var i = 0; i < Resamplings; i++)
        {
            var upsampled = g.Node("Resize", [h, string.Empty, g.FloatConstant([1f, 1f, 2f, 2f], 4)], Attr.String("mode", "nearest"));
            h = g.SiLU(g.Conv($"decoder.up_blocks.{i}.upsamplers.0.conv", upsampled, Channels, Channels));
        }

        h = g.SiLU(g.GroupNorm("decoder.conv_norm_out", h, Channels, UnetGraph.NormGroups));
        var image = g.Node("Tanh", [g.Conv("decoder.conv_out", h, Channels, 3, gain: 1.5f)]);
        g.FloatOutput("sample", image, "batch_size", 3, "height", "width");
        return g;
    }

    /// <summary>
    /// A TAESD-shaped decoder (diffusers' <c>DecoderTiny</c>): <c>tanh(x / 3) · 3</c> on the UNet-space latents, convolutions
    /// with ReLU and three nearest-neighbour upsamplings, <c>sample</c> [B, 3, 8h, 8w] in (−1, 1).
    /// </summary>
    public static OnnxGraphBuilder BuildTinyDecoder(WeightRandom random)
    {
        var g = new OnnxGraphBuilder("taesd_decoder", random, float16Io: false);
        var latents = g.FloatInput("latent_sample", "batch_size", 4, "latent_height", "latent_width");
        var three = g.FloatConstant([3f]);
        var h = g.Node("Mul", [g.Node("Tanh", [g.Node("Div", [latents, three])]), three]);
        h = g.Node("Relu", [g.Conv("decoder.layers.1", h, 4, Channels)]);
        for (var i = 0; i < Resamplings; i++)
        {
            var upsampled = g.Node("Resize", [h, string.Empty, g.FloatConstant([1f, 1f, 2f, 2f], 4)], Attr.String("mode", "nearest"));
            h = g.Node("Relu", [g.Conv($"decoder.layers.up{i}", upsampled, Channels, Channels)]);
        }

        var image = g.Node("Tanh", [g.Conv("decoder.layers.out", h, Channels, 3, gain: 1.5f)]);
        g.FloatOutput("sample", image, "batch_size", 3, "height", "width");
        return g;
    }

    /// <summary>
    /// <c>sample</c> [B, 3, H, W] → <c>latent_parameters</c> [B, 8, H/8, W/8] (mean ++ log-variance), or
    /// <c>latent_sample</c> [B, 4, H/8, W/8]. The latter is the distribution's mean: the in-graph sampling of real
    /// exports draws fresh noise on every run, which would make the model's output irreproducible.
    /// </summary>
    public static OnnxGraphBuilder BuildEncoder(WeightRandom random, bool float16Io, VaeEncoderOutput output)
    {
        var g = new OnnxGraphBuilder("vae_encoder", random, float16Io);
        var image = g.FloatInput("sample", "batch_size", 3, "height", "width");
        var h = g.Conv("encoder.conv_in", image, 3, Channels);
        for (var i = 0; i < Resamplings; i++)
        {
            h = g.SiLU(g.Conv($"encoder.down_blocks.{i}.downsamplers.0.conv", h, Channels, Channels, stride: 2));
        }

        h = g.SiLU(g.GroupNorm("encoder.conv_norm_out", h, Channels, UnetGraph.NormGroups));
        var parameters = g.Conv("quant_conv", g.Conv("encoder.conv_out", h, Channels, 8), 8, 8, kernel: 1);
        if (output == VaeEncoderOutput.LatentParameters)
        {
            g.FloatOutput("latent_parameters", parameters, "batch_size", 8, "latent_height", "latent_width");
        }
        else
        {
            var mean = g.Node("Slice", [parameters, g.Int64Constant(0), g.Int64Constant(4), g.Int64Constant(1)]);
            g.FloatOutput("latent_sample", mean, "batch_size", 4, "latent_height", "latent_width");
        }

        return g;
    }
}
