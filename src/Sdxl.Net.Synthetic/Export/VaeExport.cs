namespace Sdxl.Net.Synthetic.Export;

/// <summary>
/// diffusers' <c>AutoencoderKL</c> halves as optimum exports them: <c>vae_decoder</c> (post_quant_conv, decoder) and
/// <c>vae_encoder</c> (encoder, quant_conv → <c>latent_parameters</c>), with the real block structure: ResnetBlock2Ds,
/// a middle block with single-head spatial self-attention, and factor-2 resampling between levels.
/// </summary>
internal static class VaeExport
{
    private const float Epsilon = 1e-6f;

    /// <summary><c>latent_sample</c> [B, 4, h, w] → <c>sample</c> [B, 3, 8h, 8w].</summary>
    public static void BuildDecoder(ExportGraph g, SdxlArchitecture a)
    {
        var channels = a.VaeBlockChannels;
        var latents = g.FloatInput("latent_sample", "batch_size", 4, "latent_height", "latent_width");
        var h = g.Conv("post_quant_conv", latents, 4, 4, kernel: 1);
        using (g.Enter("decoder"))
        {
            int width = channels[^1];
            h = g.Conv("conv_in", h, 4, width);
            h = MidBlock(g, a, h, width);
            for (int up = 0; up < channels.Length; up++)
            {
                int outChannels = channels[channels.Length - 1 - up];
                using var block = g.Enter($"up_blocks.{up}");
                for (int j = 0; j <= a.VaeLayersPerBlock; j++)
                {
                    h = Resnet(g, a, $"resnets.{j}", h, width, outChannels);
                    width = outChannels;
                }

                if (up < channels.Length - 1)
                {
                    using (g.Enter("upsamplers.0"))
                    {
                        var upsampled = g.Op("Resize", [h, string.Empty, g.Float32Constant([1f, 1f, 2f, 2f], 4)],
                            Attr.String("mode", "nearest"), Attr.String("nearest_mode", "floor"), Attr.String("coordinate_transformation_mode", "asymmetric"));
                        h = g.Conv("conv", upsampled, width, width);
                    }
                }
            }

            h = g.Conv("conv_out", g.SiLU(g.GroupNorm("conv_norm_out", h, width, a.NormGroups, Epsilon)), width, 3);
        }

        g.FloatOutput("sample", h, "batch_size", 3, "height", "width");
    }

    /// <summary><c>sample</c> [B, 3, H, W] → <c>latent_parameters</c> [B, 8, H/8, W/8] (mean ++ log-variance).</summary>
    public static void BuildEncoder(ExportGraph g, SdxlArchitecture a)
    {
        var channels = a.VaeBlockChannels;
        var image = g.FloatInput("sample", "batch_size", 3, "height", "width");
        string h;
        using (g.Enter("encoder"))
        {
            int width = channels[0];
            h = g.Conv("conv_in", image, 3, width);
            for (int level = 0; level < channels.Length; level++)
            {
                using var block = g.Enter($"down_blocks.{level}");
                for (int j = 0; j < a.VaeLayersPerBlock; j++)
                {
                    h = Resnet(g, a, $"resnets.{j}", h, width, channels[level]);
                    width = channels[level];
                }

                if (level < channels.Length - 1)
                {
                    // Downsample2D with padding 0 pads (0, 1, 0, 1) first: right and bottom only.
                    using (g.Enter("downsamplers.0"))
                    {
                        var padded = g.Op("Pad", [h, g.Int64Constant(0, 0, 0, 0, 0, 0, 1, 1)], Attr.String("mode", "constant"));
                        h = g.Conv("conv", padded, width, width, stride: 2, padding: 0);
                    }
                }
            }

            h = MidBlock(g, a, h, width);
            h = g.Conv("conv_out", g.SiLU(g.GroupNorm("conv_norm_out", h, width, a.NormGroups, Epsilon)), width, 8);
        }

        h = g.Conv("quant_conv", h, 8, 8, kernel: 1);
        g.FloatOutput("latent_parameters", h, "batch_size", 8, "latent_height", "latent_width");
    }

    private static string MidBlock(ExportGraph g, SdxlArchitecture a, string x, int channels)
    {
        using var scope = g.Enter("mid_block");
        var h = Resnet(g, a, "resnets.0", x, channels, channels);
        using (g.Enter("attentions.0"))
        {
            // Single-head attention over all pixels, residual.
            var normalized = g.GroupNorm("group_norm", h, channels, a.NormGroups, Epsilon);
            var tokens = g.Op("Transpose", [g.Op("Reshape", [normalized, g.Int64Constant(0, channels, -1)])], Attr.Ints("perm", 0, 2, 1));
            var q = g.Linear("to_q", tokens, channels, channels);
            var k = g.Linear("to_k", tokens, channels, channels);
            var v = g.Linear("to_v", tokens, channels, channels);
            var attended = g.Linear("to_out.0", g.MultiHead(q, k, v, 1, channels), channels, channels);
            var image = g.Op("Reshape", [g.Op("Transpose", [attended], Attr.Ints("perm", 0, 2, 1)), g.Op("Shape", [h])]);
            h = g.Op("Add", [image, h]);
        }

        return Resnet(g, a, "resnets.1", h, channels, channels);
    }

    private static string Resnet(ExportGraph g, SdxlArchitecture a, string module, string x, int inChannels, int outChannels)
    {
        using var scope = g.Enter(module);
        var h = g.Conv("conv1", g.SiLU(g.GroupNorm("norm1", x, inChannels, a.NormGroups, Epsilon)), inChannels, outChannels);
        h = g.Conv("conv2", g.SiLU(g.GroupNorm("norm2", h, outChannels, a.NormGroups, Epsilon)), outChannels, outChannels);
        var shortcut = inChannels == outChannels ? x : g.Conv("conv_shortcut", x, inChannels, outChannels, kernel: 1);
        return g.Op("Add", [shortcut, h]);
    }
}
