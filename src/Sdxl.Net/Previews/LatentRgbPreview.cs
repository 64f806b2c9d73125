namespace Sdxl.Net.Previews;

/// <summary>
/// SDXL's linear latent → RGB approximation, as ComfyUI's <c>Latent2RGBPreviewer</c> uses it: each latent pixel times a
/// 4 × 3 matrix plus a bias, clamped to [−1, 1] and mapped to bytes. The factors are ComfyUI's for SDXL
/// (<c>comfy/latent_formats.py</c>, class <c>SDXL</c>: <c>latent_rgb_factors</c> and <c>latent_rgb_factors_bias</c>),
/// fitted on latents as the UNet sees them (scaled by the VAE's scaling factor).
/// </summary>
internal static class LatentRgbPreview
{
    // Rows: latent channels 0..3; columns: R, G, B.
    private static readonly float[] Factors =
    [
        0.3651f, 0.4232f, 0.4341f,
        -0.2533f, -0.0042f, 0.1068f,
        0.1076f, 0.1111f, -0.0362f,
        -0.3165f, -0.2492f, -0.2188f,
    ];

    private static readonly float[] Bias = [0.1084f, -0.0175f, -0.0011f];

    /// <summary>The number of latent channels the factors are for.</summary>
    public const int Channels = 4;

    /// <summary>Renders one image's latents [4, h, w] into <paramref name="rgb"/> (h · w · 3 bytes, row-major RGB).</summary>
    public static void Render(ReadOnlySpan<float> latents, int height, int width, Span<byte> rgb)
    {
        int plane = height * width;
        if (latents.Length != Channels * plane || rgb.Length != 3 * plane)
        {
            throw new ArgumentException($"Expected [4, {height}, {width}] latents and {3 * plane} bytes.", nameof(latents));
        }

        for (int p = 0; p < plane; p++)
        {
            float l0 = latents[p], l1 = latents[plane + p], l2 = latents[(2 * plane) + p], l3 = latents[(3 * plane) + p];
            for (int c = 0; c < 3; c++)
            {
                float v = Bias[c] + (l0 * Factors[c]) + (l1 * Factors[3 + c]) + (l2 * Factors[6 + c]) + (l3 * Factors[9 + c]);
                rgb[(3 * p) + c] = ToByte(v);
            }
        }
    }

    /// <summary>[−1, 1] → [0, 255], rounded (ComfyUI's <c>preview_to_image</c>: clamp, +1, ×127.5, round).</summary>
    public static byte ToByte(float v) => (byte)MathF.Round((Math.Clamp(v, -1f, 1f) + 1f) * 127.5f, MidpointRounding.ToEven);
}
