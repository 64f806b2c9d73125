using Sdxl.Net.Imaging;
using Sdxl.Net.Models;
using Sdxl.Net.Runtime;
using Sdxl.Net.Synthetic;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Sdxl.Net.Tests.Pipeline;

public sealed class ImageToImageTests
{
    private static Image<Rgb24> Gradient(int width, int height)
    {
        var image = new Image<Rgb24>(width, height);
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                image[x, y] = new Rgb24((byte)(x * 255 / width), (byte)(y * 255 / height), (byte)((x + y) % 256));
            }
        }

        return image;
    }

    [Fact]
    public async Task Img2img_uses_the_image_size_and_depends_on_the_image_and_strength()
    {
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).Build();
        using var image = Gradient(64, 48);
        using var other = Gradient(48, 64);
        var request = new GenerationRequest { Prompt = "a painting", Steps = 10, GuidanceScale = 5, Seed = 3, Image = image, Strength = 0.5 };
        var a = await pipeline.GenerateAsync(request);
        Assert.Equal((64, 48), (a.Images[0].Width, a.Images[0].Height));

        using var resized = other.Clone();
        var b = await pipeline.GenerateAsync(request with { Image = resized, Width = 64, Height = 48 });
        var c = await pipeline.GenerateAsync(request with { Strength = 0.9 });
        var again = await pipeline.GenerateAsync(request);
        Assert.Equal(a.Images[0].Pixels.ToArray(), again.Images[0].Pixels.ToArray());
        Assert.NotEqual(a.Images[0].Pixels.ToArray(), b.Images[0].Pixels.ToArray());
        Assert.NotEqual(a.Images[0].Pixels.ToArray(), c.Images[0].Pixels.ToArray());
    }

    [Fact]
    public async Task Strength_too_small_for_the_steps_is_a_clear_error()
    {
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).Build();
        using var image = Gradient(64, 64);
        var e = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() =>
            pipeline.GenerateAsync(new GenerationRequest { Prompt = "x", Steps = 3, Image = image, Strength = 0.2 }));
        Assert.Contains("Strength", e.Message);
    }

    [Fact]
    public async Task Inpainting_with_a_4_channel_unet_keeps_the_unmasked_latents_exactly()
    {
        // The synthetic VAE encoder with a latent_sample output returns the posterior mean, so the kept region's
        // latents are known exactly: decode(encode(image)).
        var model = SyntheticModels.Get(new SyntheticModelOptions { VaeEncoder = VaeEncoderOutput.LatentSample });
        using var image = Gradient(64, 64);
        using var mask = new Image<Rgb24>(64, 64);
        for (int y = 0; y < 64; y++)
        {
            for (int x = 0; x < 32; x++)
            {
                mask[x, y] = new Rgb24(255, 255, 255); // repaint the left half
            }
        }

        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(model).Build();
        var result = await pipeline.GenerateAsync(new GenerationRequest { Prompt = "a cat", Steps = 8, GuidanceScale = 5, Seed = 5, Image = image, Mask = mask, Strength = 0.99, ReturnLatents = true });

        using var folder = SdxlModelFolder.Open(model, ExecutionProviderOptions.Cpu);
        var pixels = ImageInput.ToTensor(image, 64, 64, ImageResizeMode.Stretch);
        var (latents, shape) = folder.VaeEncoder!.Encode(pixels, [1, 3, 64, 64], null);

        // In latent space the kept half (latent columns 4..7) is exactly the image's latents, the repainted half is new.
        var final = result.Latents!.Value.Span;
        for (int c = 0; c < 4; c++)
        {
            for (int y = 0; y < 8; y++)
            {
                for (int x = 4; x < 8; x++)
                {
                    int i = (c * 64) + (y * 8) + x;
                    Assert.Equal(latents[i] * folder.VaeScalingFactor, final[i], 5);
                }
            }
        }

        // The repainted half (latent columns 0..3) differs from the image's latents.
        double repainted = 0;
        for (int c = 0; c < 4; c++)
        {
            for (int y = 0; y < 8; y++)
            {
                for (int x = 0; x < 4; x++)
                {
                    int i = (c * 64) + (y * 8) + x;
                    repainted = Math.Max(repainted, Math.Abs((latents[i] * folder.VaeScalingFactor) - final[i]));
                }
            }
        }

        Assert.True(repainted > 1e-2, $"the masked region was not repainted ({repainted})");

        // Decoding those latents is what the image holds: the kept region is the input's VAE reconstruction up to the
        // decoder's non-local layers (GroupNorm statistics also see the repainted half).
        var decoded = new float[3 * 64 * 64];
        folder.VaeDecoder.Decode(final.ToArray().Select(v => v / folder.VaeScalingFactor).ToArray(), shape, decoded, null);
        var output = result.Images[0].Pixels.Span;
        for (int i = 0; i < decoded.Length; i++)
        {
            Assert.Equal(Math.Clamp((decoded[i] * 0.5f) + 0.5f, 0f, 1f), output[i], 5);
        }
    }

    [Fact]
    public async Task Nine_channel_inpainting_unet_requires_a_mask_and_runs_with_one()
    {
        var model = SyntheticModels.Get(new SyntheticModelOptions { UnetInChannels = 9 });
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(model).Build();
        using var image = Gradient(64, 64);
        using var mask = new Image<Rgb24>(64, 64, new Rgb24(255, 255, 255));
        var e = await Assert.ThrowsAsync<ArgumentException>(() => pipeline.GenerateAsync(new GenerationRequest { Prompt = "x", Steps = 2, Seed = 1 }));
        Assert.Contains("9-channel", e.Message);
        var result = await pipeline.GenerateAsync(new GenerationRequest { Prompt = "x", Steps = 4, Seed = 1, Image = image, Mask = mask });
        Assert.Equal(64, result.Images[0].Width);
    }
}

public sealed class PerImageSeedImageTests
{
    private static SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24> Checker()
    {
        var image = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24>(64, 64);
        for (int y = 0; y < 64; y++)
        {
            for (int x = 0; x < 64; x++)
            {
                image[x, y] = ((x / 8) + (y / 8)) % 2 == 0 ? new(200, 30, 30) : new(20, 20, 220);
            }
        }

        return image;
    }

    [Fact]
    public async Task Per_image_seeds_follow_diffusers_generator_lists_for_img2img_and_inpainting()
    {
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).Build();
        using var image = Checker();
        using var mask = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24>(64, 64, new(255, 255, 255));
        foreach (var withMask in new[] { false, true })
        {
            var request = new GenerationRequest
            {
                Prompt = "tiles", Steps = 6, GuidanceScale = 5, Image = image, Mask = withMask ? mask : null, Strength = 0.6,
            };
            var batch = await pipeline.GenerateAsync(request with { BatchSize = 2, Seeds = [21, 22] });
            var first = await pipeline.GenerateAsync(request with { Seed = 21 });

            // Image 0's generator makes exactly the draws a single generator would, in both pipelines (img2img: its own
            // posterior sample and noise; inpainting: the one posterior sample of the unrepeated image, its noise, the
            // masked image's sample).
            Assert.Equal(first.Images[0].Pixels.ToArray(), batch.Images[0].Pixels.ToArray());
            Assert.NotEqual(batch.Images[0].Pixels.ToArray(), batch.Images[1].Pixels.ToArray());
        }
    }

    [Fact]
    public async Task The_second_generator_draws_only_what_diffusers_draws_from_it()
    {
        var draws = new Dictionary<long, int>();
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get())
            .WithRandomSource(seed => new CountingSource(seed, draws)).Build();
        using var image = Checker();
        using var mask = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24>(64, 64, new(255, 255, 255));
        var request = new GenerationRequest { Prompt = "tiles", Steps = 4, Image = image, Strength = 0.6, BatchSize = 2, Seeds = [31, 32] };

        await pipeline.GenerateAsync(request);
        Assert.Equal(2, draws[31]); // img2img: its posterior sample, its noise
        Assert.Equal(2, draws[32]);

        draws.Clear();
        await pipeline.GenerateAsync(request with { Mask = mask });
        Assert.Equal(3, draws[31]); // inpainting: the image's sample, its noise, the masked image's sample
        Assert.Equal(1, draws[32]); // only its noise
    }

    private sealed class CountingSource(long seed, Dictionary<long, int> draws) : Sdxl.Net.Randomness.IRandomSource
    {
        private readonly Sdxl.Net.Randomness.TorchCpuGenerator _inner = new((ulong)seed);

        public void NextNormal(Span<float> destination)
        {
            lock (draws)
            {
                draws[seed] = draws.GetValueOrDefault(seed) + 1;
            }

            _inner.NextNormal(destination);
        }

        public void NextUniform(Span<float> destination) => _inner.NextUniform(destination);
    }
}

public sealed class VaeSamplingTests
{
    [Fact]
    public async Task Posterior_mean_draws_nothing_and_sampling_draws_once()
    {
        var draws = 0;
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get())
            .WithRandomSource(seed => new CountingSource(seed, () => draws++)).Build();
        using var image = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24>(64, 64, new(90, 140, 200));
        var request = new GenerationRequest { Prompt = "sky", Steps = 4, Image = image, Strength = 0.5, Seed = 3 };
        var sampled = await pipeline.GenerateAsync(request);
        Assert.Equal(2, draws); // posterior sample + noise
        draws = 0;
        var mean = await pipeline.GenerateAsync(request with { VaeSampling = VaeSampling.Mean });
        Assert.Equal(1, draws); // noise only
        Assert.NotEqual(sampled.Images[0].Pixels.ToArray(), mean.Images[0].Pixels.ToArray());
    }

    private sealed class CountingSource(long seed, Action onDraw) : Sdxl.Net.Randomness.IRandomSource
    {
        private readonly Sdxl.Net.Randomness.TorchCpuGenerator _inner = new((ulong)seed);

        public void NextNormal(Span<float> destination)
        {
            onDraw();
            _inner.NextNormal(destination);
        }

        public void NextUniform(Span<float> destination) => _inner.NextUniform(destination);
    }
}
