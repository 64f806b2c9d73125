using Sdxl.Cli;
using Sdxl.Net.Imaging;
using Sdxl.Net.Randomness;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Sdxl.Net.Tests.Pipeline;

public sealed class SeedAndRecipeTests
{
    private static GenerationRequest Request(long? seed = 42, string? scheduler = null) => new()
    {
        Prompt = "a red fox in the snow",
        NegativePrompt = "blurry",
        Width = 64,
        Height = 64,
        Steps = 4,
        GuidanceScale = 5,
        Seed = seed,
        Scheduler = scheduler,
    };

    [Fact]
    public async Task Seed_draws_the_initial_latents_from_the_torch_generator_like_diffusers()
    {
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).Build();
        var seeded = await pipeline.GenerateAsync(Request(seed: 1234));

        // diffusers: latents = randn(shape, generator=torch.Generator("cpu").manual_seed(1234)) — given explicitly.
        var noise = new float[4 * 8 * 8];
        new TorchCpuGenerator(1234).NextNormal(noise);
        var explicitLatents = await pipeline.GenerateAsync(Request(seed: 999) with { InitialLatents = noise });

        Assert.Equal(seeded.Images[0].Pixels.ToArray(), explicitLatents.Images[0].Pixels.ToArray());
        Assert.Equal(1234, seeded.Seed);
    }

    [Fact]
    public async Task Same_seed_same_image_and_different_seed_different_image_also_for_ancestral_samplers()
    {
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).Build();
        var a = await pipeline.GenerateAsync(Request(7, "euler-a"));
        var b = await pipeline.GenerateAsync(Request(7, "euler-a"));
        var c = await pipeline.GenerateAsync(Request(8, "euler-a"));
        Assert.Equal(a.Images[0].Pixels.ToArray(), b.Images[0].Pixels.ToArray());
        Assert.NotEqual(a.Images[0].Pixels.ToArray(), c.Images[0].Pixels.ToArray());
    }

    [Fact]
    public async Task Per_image_seeds_equal_single_runs_with_those_seeds()
    {
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).Build();
        var batch = await pipeline.GenerateAsync(Request(null) with { BatchSize = 2, Seeds = [11, 12] });
        var first = await pipeline.GenerateAsync(Request(11));
        var second = await pipeline.GenerateAsync(Request(12));
        Assert.Equal(first.Images[0].Pixels.ToArray(), batch.Images[0].Pixels.ToArray());
        Assert.Equal(second.Images[0].Pixels.ToArray(), batch.Images[1].Pixels.ToArray());
    }

    [Fact]
    public async Task Png_recipe_round_trips_through_the_cli_to_identical_pixels()
    {
        var model = SyntheticModels.Get();
        var dir = Directory.CreateTempSubdirectory("sdxl-recipe-").FullName;
        try
        {
            var first = Path.Combine(dir, "first.png");
            var again = Path.Combine(dir, "again.png");
            var err = new StringWriter();
            int exit = await CliApp.RunAsync(
                ["generate", "--model", model, "--prompt", "a castle", "--negative-prompt", "fog", "--width", "64", "--height", "48",
                 "--steps", "5", "--guidance", "4.5", "--scheduler", "dpmpp-2m-karras", "--crop", "8,16", "--seed", "2024", "--output", first],
                new StringWriter(), err);
            Assert.True(exit == 0, err.ToString());

            var recipe = ImageRecipe.ReadRequest(first);
            Assert.NotNull(recipe);
            Assert.Equal("a castle", recipe.Prompt);
            Assert.Equal(2024, recipe.Seed);
            Assert.Equal("dpmpp-2m-karras", recipe.Scheduler);
            Assert.Equal(48, recipe.Height);

            exit = await CliApp.RunAsync(["generate", "--from-image", first, "--model", model, "--output", again], new StringWriter(), err);
            Assert.True(exit == 0, err.ToString());

            using var a = Image.Load<Rgb24>(first);
            using var b = Image.Load<Rgb24>(again);
            Assert.Equal(a.Width, b.Width);
            for (int y = 0; y < a.Height; y++)
            {
                for (int x = 0; x < a.Width; x++)
                {
                    Assert.Equal(a[x, y], b[x, y]);
                }
            }

            var parameters = a.Metadata.GetPngMetadata().TextData.Single(t => t.Keyword == ImageRecipe.ParametersKeyword).Value;
            Assert.StartsWith("a castle\nNegative prompt: fog\nSteps: 5, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 4.5, Seed: 2024, Size: 64x48", parameters);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}

public sealed class RandomSourceSeamTests
{
    [Fact]
    public async Task The_scalar_kernel_and_custom_sources_are_pluggable()
    {
        var model = SyntheticModels.Get();
        var request = new GenerationRequest { Prompt = "a boat", Width = 64, Height = 64, Steps = 3, Seed = 5 };
        using var avx2 = SdxlPipeline.CreateBuilder().WithModel(model).Build();
        using var scalar = SdxlPipeline.CreateBuilder().WithModel(model).WithTorchKernel(TorchNormalKernel.Scalar).Build();
        var seeds = new List<long>();
        using var custom = SdxlPipeline.CreateBuilder().WithModel(model)
            .WithRandomSource(seed => { lock (seeds) { seeds.Add(seed); } return new TorchCpuGenerator((ulong)seed, TorchNormalKernel.Scalar); })
            .Build();

        var a = (await avx2.GenerateAsync(request)).Images[0].Pixels.ToArray();
        var s = (await scalar.GenerateAsync(request)).Images[0].Pixels.ToArray();
        var c = (await custom.GenerateAsync(request)).Images[0].Pixels.ToArray();

        // The kernels differ by up to ~1e-6 per normal: images nearly equal but not bit-identical.
        Assert.NotEqual(a, s);
        Assert.Equal(s, c);
        Assert.Equal([5L], seeds);
        for (int i = 0; i < a.Length; i++)
        {
            Assert.True(Math.Abs(a[i] - s[i]) < 1e-3);
        }
    }
}
