using Microsoft.ML.OnnxRuntime;

namespace Sdxl.Net.Models;

/// <summary>
/// Decodes one latent image [C, h, w] in overlapping square tiles and blends them: inside the overlap each tile's
/// weight ramps linearly from its edge, and every pixel is normalised by the sum of the weights that reached it.
/// All tiles have the same shape (the last one in a row or column is moved back to end at the border), so fixed-shape
/// providers (TensorRT profiles, CUDA graphs) see one shape.
/// </summary>
internal static class TiledVaeDecoder
{
    /// <summary>Whether <paramref name="options"/> asks for tiling and the latents exceed one tile.</summary>
    public static bool ShouldTile(TiledVaeOptions? options, int latentHeight, int latentWidth) =>
        options is not null && (latentHeight > options.TileSize || latentWidth > options.TileSize);

    /// <summary>The tile origins along one axis of <paramref name="length"/> cells.</summary>
    public static int[] Origins(int length, int tile, int overlap)
    {
        if (length <= tile)
        {
            return [0];
        }

        int stride = Math.Max(1, tile - overlap);
        var origins = new List<int>();
        for (int o = 0; o + tile < length; o += stride)
        {
            origins.Add(o);
        }

        origins.Add(length - tile);
        return [.. origins];
    }

    /// <summary>Decodes <paramref name="latents"/> [C, h, w] into <paramref name="output"/> [3, h·s, w·s]; returns the number of tiles.</summary>
    public static int Decode(VaeDecoderModel decoder, ReadOnlySpan<float> latents, int channels, int latentHeight, int latentWidth, int vaeScale,
        TiledVaeOptions options, Span<float> output, RunOptions? runOptions)
    {
        int tileH = Math.Min(options.TileSize, latentHeight), tileW = Math.Min(options.TileSize, latentWidth);
        var rows = Origins(latentHeight, tileH, options.Overlap);
        var cols = Origins(latentWidth, tileW, options.Overlap);
        int height = latentHeight * vaeScale, width = latentWidth * vaeScale;
        int tilePixH = tileH * vaeScale, tilePixW = tileW * vaeScale;
        int overlapPix = options.Overlap * vaeScale;

        var tileLatents = new float[channels * tileH * tileW];
        var tilePixels = new float[3 * tilePixH * tilePixW];
        var weightSum = new float[height * width];
        var rampY = new float[tilePixH];
        var rampX = new float[tilePixW];
        output[..(3 * height * width)].Clear();

        foreach (var top in rows)
        {
            Ramp(rampY, overlapPix, fadeIn: top > 0, fadeOut: top + tileH < latentHeight);
            foreach (var left in cols)
            {
                Ramp(rampX, overlapPix, fadeIn: left > 0, fadeOut: left + tileW < latentWidth);
                for (int c = 0; c < channels; c++)
                {
                    for (int y = 0; y < tileH; y++)
                    {
                        latents.Slice((c * latentHeight * latentWidth) + ((top + y) * latentWidth) + left, tileW)
                            .CopyTo(tileLatents.AsSpan(((c * tileH) + y) * tileW, tileW));
                    }
                }

                decoder.Decode(tileLatents, [1, channels, tileH, tileW], tilePixels, runOptions);
                int y0 = top * vaeScale, x0 = left * vaeScale;
                for (int y = 0; y < tilePixH; y++)
                {
                    float wy = rampY[y];
                    var sumRow = weightSum.AsSpan(((y0 + y) * width) + x0, tilePixW);
                    for (int x = 0; x < tilePixW; x++)
                    {
                        sumRow[x] += wy * rampX[x];
                    }

                    for (int c = 0; c < 3; c++)
                    {
                        var src = tilePixels.AsSpan(((c * tilePixH) + y) * tilePixW, tilePixW);
                        var dst = output.Slice((c * height * width) + ((y0 + y) * width) + x0, tilePixW);
                        for (int x = 0; x < tilePixW; x++)
                        {
                            dst[x] += wy * rampX[x] * src[x];
                        }
                    }
                }
            }
        }

        for (int c = 0; c < 3; c++)
        {
            System.Numerics.Tensors.TensorPrimitives.Divide(output.Slice(c * height * width, height * width), weightSum, output.Slice(c * height * width, height * width));
        }

        return rows.Length * cols.Length;
    }

    /// <summary>1 inside the tile, rising linearly over the overlap at an edge shared with a neighbour (never 0, so every pixel has weight).</summary>
    private static void Ramp(Span<float> ramp, int overlap, bool fadeIn, bool fadeOut)
    {
        ramp.Fill(1f);
        if (overlap == 0)
        {
            return;
        }

        for (int p = 0; p < Math.Min(overlap, ramp.Length); p++)
        {
            float w = (p + 0.5f) / overlap;
            if (fadeIn)
            {
                ramp[p] = Math.Min(ramp[p], w);
            }

            if (fadeOut)
            {
                ramp[ramp.Length - 1 - p] = Math.Min(ramp[ramp.Length - 1 - p], w);
            }
        }
    }
}
