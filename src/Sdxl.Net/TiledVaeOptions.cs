namespace Sdxl.Net;

/// <summary>
/// Decodes large images in overlapping latent tiles, blending the seams linearly, so the VAE decoder's activation
/// memory is bounded by the tile size instead of the image size.
/// </summary>
/// <remarks>
/// Tiling is used only when the latents are larger than <see cref="TileSize"/> in some direction; smaller images are
/// decoded whole, exactly as without this option. The result differs slightly from a whole-image decode: the VAE's
/// group normalisations see per-tile statistics, and the overlap must cover the decoder's receptive field at the
/// seams (diffusers' <c>enable_vae_tiling</c> makes the same trade).
/// </remarks>
public sealed record TiledVaeOptions
{
    /// <summary>The tile side in latent cells (64 = 512 pixels for SDXL). At least 8.</summary>
    public int TileSize { get; init; } = 64;

    /// <summary>How many latent cells neighbouring tiles share (16 = 128 pixels). From 0 to half the tile size.</summary>
    public int Overlap { get; init; } = 16;

    /// <summary>Throws when the values cannot describe a tiling.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of range.</exception>
    public void Validate()
    {
        if (TileSize < 8)
        {
            throw new ArgumentOutOfRangeException(nameof(TileSize), TileSize, "The VAE tile size must be at least 8 latent cells.");
        }

        if (Overlap < 0 || Overlap > TileSize / 2)
        {
            throw new ArgumentOutOfRangeException(nameof(Overlap), Overlap, $"The VAE tile overlap must be from 0 to half the tile size ({TileSize / 2}) latent cells.");
        }
    }
}
