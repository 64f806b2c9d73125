using Microsoft.ML.OnnxRuntime;
using Sdxl.Net.Models;
using Sdxl.Net.Runtime;
using Sdxl.Net.Synthetic;
using Sdxl.Net.Tests.Synthetic;

namespace Sdxl.Net.Tests.Performance;

/// <summary>
/// Tiled VAE decoding on the synthetic decoder. Its convolutions see ±2 latent cells (a 3×3 convolution at latent
/// resolution, then one 3×3 convolution after each of three ×2 upsamplings and the output convolution), so an overlap
/// of 16 cells gives every blended pixel most of its weight from a tile whose edge is outside that field. What remains
/// is the decoder's final group norm computing its statistics per tile instead of over the whole image: an error that
/// is spread evenly over the image (the same in tile interiors as at seams) and shrinks as tiles grow (measured mean
/// abs error ≈ 2e-2 with 16-cell tiles, ≈ 9e-3 with 32-cell tiles on this 64 × 64 latent).
/// </summary>
public sealed class TiledVaeTests
{
    private const int Latent = 64;

    [Fact]
    public void Tiled_decode_matches_the_whole_image_decode_within_tolerance()
    {
        using var fixture = new DecoderFixture();
        var whole = fixture.Decode(null, out int wholeRuns);
        var tiled = fixture.Decode(new TiledVaeOptions { TileSize = 32, Overlap = 16 }, out int tiledRuns);

        Assert.Equal(1, wholeRuns);
        Assert.Equal(9, tiledRuns); // origins 0, 16, 32 on each axis

        // The decoder output is in (-1, 1), so the bounds are 1% of the range on average and 15% at the worst pixel:
        // about twice what the per-tile group norm alone causes, and far below what unblended seams do (next test).
        var (mean, max) = Errors(whole, tiled);
        Assert.True(mean < 0.02, $"mean abs error {mean:E3}");
        Assert.True(max < 0.3, $"max abs error {max:E3}, mean {mean:E3}");
    }

    [Fact]
    public void Overlap_blending_removes_the_seams_that_abutting_tiles_show()
    {
        using var fixture = new DecoderFixture();
        var whole = fixture.Decode(null, out _);
        var blended = fixture.Decode(new TiledVaeOptions { TileSize = 32, Overlap = 16 }, out _);
        var abutting = fixture.Decode(new TiledVaeOptions { TileSize = 32, Overlap = 0 }, out _);

        // Zero-padded tile borders corrupt the pixels within the receptive field of each cut; blending hides them.
        var (meanBlended, maxBlended) = Errors(whole, blended);
        var (meanAbutting, maxAbutting) = Errors(whole, abutting);
        var detail = $"max: abutting tiles {maxAbutting:E3} vs blended {maxBlended:E3}; mean: {meanAbutting:E3} vs {meanBlended:E3}";
        Assert.True(maxAbutting > 4 * maxBlended, detail);
        Assert.True(meanAbutting > 2 * meanBlended, detail);
    }

    [Fact]
    public void Tiling_is_used_only_when_asked_and_when_the_latents_exceed_a_tile()
    {
        using var fixture = new DecoderFixture();
        fixture.Decode(null, out int notAsked);
        fixture.Decode(new TiledVaeOptions { TileSize = Latent, Overlap = 8 }, out int fits);
        fixture.Decode(new TiledVaeOptions { TileSize = 48, Overlap = 8 }, out int exceeds);

        Assert.Equal(1, notAsked);
        Assert.Equal(1, fits);
        Assert.Equal(4, exceeds); // origins 0 and 16 on each axis

        Assert.False(TiledVaeDecoder.ShouldTile(null, 1000, 1000));
        Assert.False(TiledVaeDecoder.ShouldTile(new TiledVaeOptions(), 64, 64));
        Assert.True(TiledVaeDecoder.ShouldTile(new TiledVaeOptions(), 64, 65));
    }

    [Fact]
    public async Task Pipeline_decodes_whole_when_the_image_fits_one_tile_and_tiles_when_it_does_not()
    {
        using var dir = new TempDirectory();
        SyntheticSdxlModel.Write(dir.Path);
        var small = new GenerationRequest { Prompt = "a red cube", Seed = 3, Steps = 2, Width = 64, Height = 64 };
        var large = small with { Width = 192, Height = 192 };

        using var plain = SdxlPipeline.CreateBuilder().WithModel(dir.Path).Build();
        using var tiled = SdxlPipeline.CreateBuilder().WithModel(dir.Path).WithTiledVae(new TiledVaeOptions { TileSize = 16, Overlap = 8 }).Build();

        // 8 × 8 latents fit a 16-cell tile: the same decode, bit for bit.
        var smallPlain = (await plain.GenerateAsync(small)).Images[0].Pixels.ToArray();
        var smallTiled = (await tiled.GenerateAsync(small)).Images[0].Pixels.ToArray();
        Assert.Equal(smallPlain, smallTiled);

        // 24 × 24 latents do not: decoded in tiles, so close to but not exactly the whole decode.
        var whole = (await plain.GenerateAsync(large)).Images[0].Pixels.ToArray();
        var inTiles = (await tiled.GenerateAsync(large)).Images[0].Pixels.ToArray();
        Assert.False(whole.AsSpan().SequenceEqual(inTiles));
        var (mean, _) = Errors(whole, inTiles);
        Assert.True(mean < 0.05, $"mean abs error {mean:E3} on the [0, 1] image");
    }

    [Theory]
    [InlineData(128, 64, 16, new[] { 0, 48, 64 })]
    [InlineData(64, 64, 16, new[] { 0 })]
    [InlineData(40, 16, 8, new[] { 0, 8, 16, 24 })]
    [InlineData(40, 16, 0, new[] { 0, 16, 24 })]
    public void Tile_origins_cover_the_axis_with_equal_tiles(int length, int tile, int overlap, int[] expected)
    {
        var origins = TiledVaeDecoder.Origins(length, tile, overlap);
        Assert.Equal(expected, origins);
        Assert.Equal(length, origins[^1] + Math.Min(tile, length));
    }

    [Theory]
    [InlineData(4, 0)]
    [InlineData(16, 9)]
    [InlineData(16, -1)]
    public void Invalid_tiling_is_rejected(int tile, int overlap)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => SdxlPipeline.CreateBuilder().WithTiledVae(new TiledVaeOptions { TileSize = tile, Overlap = overlap }));
    }

    private static (double Mean, double Max) Errors(float[] a, float[] b)
    {
        double sum = 0, max = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double d = Math.Abs(a[i] - b[i]);
            sum += d;
            max = Math.Max(max, d);
        }

        return (sum / a.Length, max);
    }

    private sealed class DecoderFixture : IDisposable
    {
        private readonly TempDirectory _dir = new();
        private readonly SdxlModelFolder _folder;
        private readonly RunOptions _runOptions = new();
        private readonly float[] _latents;

        public DecoderFixture()
        {
            SyntheticSdxlModel.Write(_dir.Path);
            _folder = SdxlModelFolder.Open(_dir.Path, ExecutionProviderOptions.Cpu);

            // Latents whose statistics are the same in every tile (a short-period pattern plus noise): the synthetic
            // decoder ends in a group norm, which normalises each tile by its own statistics, so content whose mean
            // or variance changes from tile to tile would be re-levelled per tile — a known limit of tiled decoding,
            // not what this test is about.
            var random = new Random(5);
            _latents = new float[4 * Latent * Latent];
            for (int c = 0; c < 4; c++)
            {
                for (int y = 0; y < Latent; y++)
                {
                    for (int x = 0; x < Latent; x++)
                    {
                        _latents[(((c * Latent) + y) * Latent) + x] = (float)((Math.Sin((x + (3 * c)) * 1.3) * Math.Cos(y * 0.9)) + (random.NextDouble() - 0.5));
                    }
                }
            }
        }

        public float[] Decode(TiledVaeOptions? tiling, out int runs)
        {
            int scale = _folder.VaeScaleFactor;
            var image = new float[3 * Latent * scale * Latent * scale];
            runs = _folder.VaeDecoder.Decode(_latents, [1, 4, Latent, Latent], scale, image, tiling, _runOptions);
            return image;
        }

        public void Dispose()
        {
            _runOptions.Dispose();
            _folder.Dispose();
            _dir.Dispose();
        }
    }
}
