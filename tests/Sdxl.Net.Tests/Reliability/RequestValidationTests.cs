using Sdxl.Net.Conditioning;
using Sdxl.Net.Synthetic;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Sdxl.Net.Tests.Reliability;

/// <summary>One pipeline over the default synthetic model (pixel multiple 16), shared by the validation tests.</summary>
public sealed class SyntheticPipelineFixture : IDisposable
{
    public SdxlPipeline Pipeline { get; } = Faults.Pipeline(SyntheticModels.Get());

    public void Dispose() => Pipeline.Dispose();
}

/// <summary>Every invalid request fails before any model runs, naming the value and what is allowed.</summary>
public sealed class RequestValidationTests(SyntheticPipelineFixture fixture) : IClassFixture<SyntheticPipelineFixture>
{
    private static readonly Image<Rgb24> Image64 = new(64, 64);
    private static readonly Image<Rgb24> Image48 = new(48, 64);

    public static TheoryData<string, GenerationRequest, string, string> InvalidRequests()
    {
        var t = Faults.Tiny();
        return new TheoryData<string, GenerationRequest, string, string>
        {
            { "empty prompt", t with { Prompt = "  " }, "Prompt", "must not be empty" },
            { "prompt over 100000 characters", t with { Prompt = new string('a', 100_001) }, "Prompt", "100001 characters" },
            { "negative prompt over 100000 characters", t with { NegativePrompt = new string('a', 100_001) }, "NegativePrompt", "at most 100000" },
            { "width not a multiple", t with { Width = 70 }, "Width", "multiple of 16" },
            { "height not a multiple", t with { Height = 33 }, "Height", "got 33" },
            { "width zero", t with { Width = 0 }, "Width", "between 16 and 4096" },
            { "width negative", t with { Width = -64 }, "Width", "got -64" },
            { "height above max", t with { Height = 8192 }, "Height", "4096" },
            { "steps zero", t with { Steps = 0 }, "Steps", "between 1 and 1000; got 0" },
            { "steps above max", t with { Steps = 1001 }, "Steps", "got 1001" },
            { "guidance NaN", t with { GuidanceScale = float.NaN }, "GuidanceScale", "got NaN" },
            { "guidance negative", t with { GuidanceScale = -1 }, "GuidanceScale", "[0, 100]" },
            { "guidance infinite", t with { GuidanceScale = float.PositiveInfinity }, "GuidanceScale", "finite" },
            { "guidance above 100", t with { GuidanceScale = 101 }, "GuidanceScale", "got 101" },
            { "rescale above 1", t with { GuidanceRescale = 1.5f }, "GuidanceRescale", "got 1.5" },
            { "rescale NaN", t with { GuidanceRescale = float.NaN }, "GuidanceRescale", "[0, 1]" },
            { "batch zero", t with { BatchSize = 0 }, "BatchSize", "between 1 and 64; got 0" },
            { "batch above max", t with { BatchSize = 65 }, "BatchSize", "got 65" },
            { "negative seed", t with { Seed = -5 }, "Seed", "got -5" },
            { "seeds count differs from batch", t with { BatchSize = 2, Seeds = [1, 2, 3] }, "Seeds", "3 entries" },
            { "negative per-image seed", t with { BatchSize = 2, Seeds = [1, -2] }, "Seeds", "Seeds[1] is -2" },
            { "memory guard: 4096x4096", t with { Width = 4096, Height = 4096 }, "BatchSize", "GiB of activation memory" },
            { "memory guard: 2048x2048 batch 16", t with { Width = 2048, Height = 2048, BatchSize = 16 }, "BatchSize", "Lower the size or the batch" },
            { "high-noise fraction 0", t with { HighNoiseFraction = 0 }, "HighNoiseFraction", "strictly between 0 and 1; got 0" },
            { "high-noise fraction 1", t with { HighNoiseFraction = 1 }, "HighNoiseFraction", "got 1" },
            { "high-noise fraction NaN", t with { HighNoiseFraction = double.NaN }, "HighNoiseFraction", "got NaN" },
            { "strength 0", t with { Image = Image64, Strength = 0 }, "Strength", "(0, 1]; got 0" },
            { "strength above 1", t with { Image = Image64, Strength = 1.5 }, "Strength", "got 1.5" },
            { "strength without image", t with { Strength = 0.5 }, "Strength", "no Image" },
            { "latents wrong length", t with { InitialLatents = new float[100] }, "InitialLatents", "expected [1, 4, 8, 8] = 256" },
            { "latents NaN", t with { InitialLatents = WithValue(256, 17, float.NaN) }, "InitialLatents", "non-finite value (NaN) at index 17" },
            { "latents infinite", t with { InitialLatents = WithValue(256, 3, float.NegativeInfinity) }, "InitialLatents", "at index 3" },
            { "latents of absurd magnitude", t with { InitialLatents = WithValue(256, 5, 1e30f) }, "InitialLatents", "InitialLatents[5] is 1E+30" },
            { "latents just above the magnitude bound", t with { InitialLatents = WithValue(256, 0, -10001f) }, "InitialLatents", "±10000" },
            { "prompt of NULs only", t with { Prompt = "\0\0\0" }, "Prompt", "only of control characters" },
            { "prompt of control characters and spaces", t with { Prompt = "\u0001 \u001b\u007f " }, "Prompt", "only of control characters" },
            { "negative prompt of NULs only", t with { NegativePrompt = "\0" }, "NegativePrompt", "only of control characters" },
            { "prompt with a lone high surrogate", t with { Prompt = "a cat \uD83D" }, "Prompt", "lone UTF-16 surrogate (U+D83D) at index 6" },
            { "prompt-2 with a lone low surrogate", t with { Prompt2 = "\uDE00 dog" }, "Prompt2", "lone UTF-16 surrogate (U+DE00) at index 0" },
            { "latents with image", t with { Image = Image64, InitialLatents = new float[256] }, "InitialLatents", "cannot be combined with Image" },
            { "mask without image", t with { Mask = Image64 }, "Mask", "Mask needs Image" },
            { "mask size differs from image", t with { Image = Image64, Mask = Image48, Width = null, Height = null }, "Mask", "Mask is 48x64 but Image is 64x64" },
            { "original size zero", t with { Conditioning = new MicroConditioning { OriginalSize = new ImageSize(0, 64) } }, "OriginalSize", "Conditioning.OriginalSize must have sides from 1 to 65536 pixels; got 0x64" },
            { "target size too large", t with { Conditioning = new MicroConditioning { TargetSize = new ImageSize(64, 70000) } }, "TargetSize", "got 64x70000" },
            { "negative crop", t with { Conditioning = new MicroConditioning { CropTopLeft = new CropCoordinates(-1, 0) } }, "CropTopLeft", "got -1,0" },
            { "aesthetic score NaN", t with { Conditioning = new MicroConditioning { AestheticScore = double.NaN } }, "AestheticScore", "finite" },
            { "unknown scheduler", t with { Scheduler = "euler-fancy" }, "Scheduler", "Unknown scheduler 'euler-fancy'" },
        };
    }

    [Theory]
    [MemberData(nameof(InvalidRequests))]
    public async Task Invalid_request_is_rejected_naming_the_value(string what, GenerationRequest request, string parameter, string message)
    {
        var e = await Assert.ThrowsAnyAsync<ArgumentException>(() => fixture.Pipeline.GenerateAsync(request));
        Assert.True(e.ParamName == parameter, $"{what}: ParamName {e.ParamName}, expected {parameter}");
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_valid_request_next_to_the_invalid_ones_succeeds()
    {
        // The baseline the theory's cases differ from: without it, a validation that rejected everything would pass.
        var result = await fixture.Pipeline.GenerateAsync(Faults.Tiny());
        Assert.Single(result.Images);
        Assert.Empty(result.Warnings);
    }

    [Fact]
    public async Task Valid_surrogate_pairs_embedded_controls_and_latents_at_the_bound_are_accepted()
    {
        // The neighbours of the rejected cases: an emoji is a valid surrogate pair, a tab inside text is ordinary, and
        // latents of exactly ±1e4 are within the documented bound.
        var latents = new float[256];
        latents[0] = 1e4f;
        latents[1] = -1e4f;
        var result = await fixture.Pipeline.GenerateAsync(Faults.Tiny() with { Prompt = "a cat \U0001F600\tin the rain", NegativePrompt = "blur\0ry", InitialLatents = latents });
        Assert.Single(result.Images);
    }

    [Theory]
    [InlineData(1, true, 2560)]
    [InlineData(2, true, 2080)]
    [InlineData(4, true, 1696)]
    [InlineData(8, true, 1344)]
    [InlineData(1, false, 3104)]
    public void Largest_square_sizes_stated_in_getting_started_are_the_guards(int batch, bool guidance, int side)
    {
        // docs/getting-started.md states these limits; the guard must accept each and refuse the next multiple of 32.
        static bool Accepted(int b, bool g, int s) => RequestValidation.EstimateActivationBytes(b, g, s / 8, s / 8) <= RequestValidation.MaxActivationBytes;
        Assert.True(Accepted(batch, guidance, side));
        Assert.False(Accepted(batch, guidance, side + 32));
    }

    [Fact]
    public void Memory_estimate_grows_with_size_and_batch_and_accepts_sdxl_sizes()
    {
        long sdxl = RequestValidation.EstimateActivationBytes(1, guidance: true, 128, 128);
        Assert.InRange(sdxl, 1L << 30, RequestValidation.MaxActivationBytes);
        Assert.True(RequestValidation.EstimateActivationBytes(4, true, 128, 128) > 3 * sdxl);
        Assert.True(RequestValidation.EstimateActivationBytes(1, true, 256, 256) > 8 * sdxl);
        Assert.True(RequestValidation.EstimateActivationBytes(1, true, 256, 256) <= RequestValidation.MaxActivationBytes, "2048x2048 must stay allowed");
    }

    [Fact]
    public async Task Strength_that_ends_before_the_high_noise_fraction_leaves_the_base_no_step()
    {
        // Image-to-image starts at t ≈ 1000·strength; denoising_end 0.8 stops the base at t = 200: strength 0.2 starts below it.
        using var image = new Image<Rgb24>(64, 64);
        var e = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => fixture.Pipeline.GenerateAsync(
            Faults.Tiny() with { Image = image, Strength = 0.2, Steps = 10, HighNoiseFraction = 0.8 }));
        Assert.Equal("HighNoiseFraction", e.ParamName);
        Assert.Contains("leaves the base model no step", e.Message);
    }

    [Fact]
    public async Task Strength_too_small_for_the_steps_names_strength_and_steps()
    {
        using var image = new Image<Rgb24>(64, 64);
        var e = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => fixture.Pipeline.GenerateAsync(
            Faults.Tiny() with { Image = image, Strength = 0.2, Steps = 3 }));
        Assert.Equal("Strength", e.ParamName);
        Assert.Contains("raise Strength or Steps", e.Message);
    }

    [Fact]
    public async Task Conditioning_provider_returning_invalid_sizes_is_named()
    {
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get())
            .AddConditioning(new BrokenProvider(new MicroConditioning { OriginalSize = new ImageSize(-3, 64) })).Build();
        var e = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => pipeline.GenerateAsync(Faults.Tiny()));
        Assert.Contains("The conditioning provider BrokenProvider returned MicroConditioning.OriginalSize", e.Message);
        Assert.Contains("got -3x64", e.Message);
    }

    [Fact]
    public async Task Conditioning_provider_returning_null_is_named()
    {
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).AddConditioning(new BrokenProvider(null)).Build();
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => pipeline.GenerateAsync(Faults.Tiny()));
        Assert.Contains("BrokenProvider returned null", e.Message);
    }

    [Fact]
    public async Task Image_request_on_a_model_without_vae_encoder_is_rejected()
    {
        using var pipeline = Faults.Pipeline(SyntheticModels.Get(new SyntheticModelOptions { IncludeVaeEncoder = false }));
        using var image = new Image<Rgb24>(64, 64);
        var e = await Assert.ThrowsAsync<ArgumentException>(() => pipeline.GenerateAsync(Faults.Tiny() with { Image = image }));
        Assert.Equal("Image", e.ParamName);
        Assert.Contains("need a vae_encoder", e.Message);
    }

    [Fact]
    public async Task Inpainting_unet_without_mask_is_rejected()
    {
        using var pipeline = Faults.Pipeline(SyntheticModels.Get(new SyntheticModelOptions { UnetInChannels = 9 }));
        var e = await Assert.ThrowsAsync<ArgumentException>(() => pipeline.GenerateAsync(Faults.Tiny()));
        Assert.Equal("Mask", e.ParamName);
        Assert.Contains("9-channel inpainting UNet", e.Message);
    }

    [Fact]
    public async Task Long_prompt_is_truncated_with_a_warning_in_the_result()
    {
        var words = string.Join(' ', Enumerable.Repeat("a photo of a red lighthouse", 30));
        var result = await fixture.Pipeline.GenerateAsync(Faults.Tiny() with { Prompt = words });
        var truncated = result.Warnings.Where(w => w.Contains("only the first 75 were used", StringComparison.Ordinal)).ToArray();
        Assert.Equal(2, truncated.Length); // one per tokenizer: both encoders read the prompt
        Assert.Contains(truncated, w => w.StartsWith("The prompt for tokenizer ", StringComparison.Ordinal));
        Assert.Contains(truncated, w => w.StartsWith("The prompt for tokenizer_2 ", StringComparison.Ordinal));
        Assert.Empty((await fixture.Pipeline.GenerateAsync(Faults.Tiny() with { Prompt = "a photo of a red lighthouse" })).Warnings);
    }

    private static float[] WithValue(int length, int index, float value)
    {
        var data = new float[length];
        data[index] = value;
        return data;
    }

    private sealed class BrokenProvider(MicroConditioning? result) : IMicroConditioningProvider
    {
        public MicroConditioning Apply(MicroConditioningContext context, MicroConditioning conditioning) => result!;
    }
}
