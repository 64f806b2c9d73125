namespace Sdxl.Net.Denoising;

/// <summary>What the denoising loop needs for inpainting.</summary>
/// <remarks>
/// A 9-channel inpainting UNet receives <c>latents ‖ mask ‖ masked-image latents</c> at every step. An ordinary 4-channel
/// UNet is guided by blending: after each step the unmasked region is replaced by the image latents re-noised to the next
/// timestep (diffusers' <c>(1 − mask) · add_noise(image_latents, noise, t_next) + mask · latents</c>).
/// </remarks>
/// <param name="Mask">The mask at latent resolution, [B, 1, h, w]: 1 = repaint, 0 = keep.</param>
/// <param name="MaskedImageLatents">The latents of the image with the masked region blacked out, [B, 4, h, w] (9-channel UNets).</param>
/// <param name="ImageLatents">The clean image latents, [B, 4, h, w] (4-channel blending).</param>
/// <param name="Noise">The noise used to re-noise <paramref name="ImageLatents"/> (4-channel blending).</param>
/// <param name="NineChannel">Whether the UNet takes the extra channels.</param>
internal sealed record InpaintState(float[] Mask, float[]? MaskedImageLatents, float[]? ImageLatents, float[]? Noise, bool NineChannel);
