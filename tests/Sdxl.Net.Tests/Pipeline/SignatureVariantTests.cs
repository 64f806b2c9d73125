using Sdxl.Net.Synthetic;

namespace Sdxl.Net.Tests.Pipeline;

/// <summary>
/// The same random weights exported in every signature variant must give the same image: the library adapts to
/// each variant at the ONNX boundary and nowhere else.
/// </summary>
public sealed class SignatureVariantTests
{
    private static readonly GenerationRequest Request = new()
    {
        Prompt = "a watercolor of a harbour",
        NegativePrompt = "blurry",
        Width = 64,
        Height = 48,
        Steps = 4,
        GuidanceScale = 5,
        Seed = 31,
    };

    private static async Task<float[]> Generate(SyntheticModelOptions options, GenerationRequest? request = null)
    {
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get(options)).Build();
        var result = await pipeline.GenerateAsync(request ?? Request);
        return result.Images[0].Pixels.ToArray();
    }

    public static TheoryData<string> ExactVariants() => ["float-vector-timestep", "int64-timestep", "int32-ids", "external-data"];

    [Theory]
    [MemberData(nameof(ExactVariants))]
    public async Task Exact_variants_give_identical_images(string variant)
    {
        var options = variant switch
        {
            "float-vector-timestep" => new SyntheticModelOptions { Timestep = TimestepInput.FloatVector1 },
            "int64-timestep" => new SyntheticModelOptions { Timestep = TimestepInput.Int64Vector1 },
            "int32-ids" => new SyntheticModelOptions { TextEncoderInt32Ids = true },
            _ => new SyntheticModelOptions { UnetExternalData = true },
        };

        // Euler's leading-spacing timesteps are integers, so an int64 timestep input loses nothing.
        Assert.Equal(await Generate(new SyntheticModelOptions()), await Generate(options));
    }

    [Fact]
    public async Task Float16_io_is_close_to_float32()
    {
        var fp32 = await Generate(new SyntheticModelOptions());
        var fp16 = await Generate(new SyntheticModelOptions { Float16 = true });
        double max = 0;
        for (int i = 0; i < fp32.Length; i++)
        {
            max = Math.Max(max, Math.Abs(fp32[i] - fp16[i]));
        }

        Assert.InRange(max, 1e-7, 2e-2);
    }

    [Fact]
    public async Task Refiner_folder_runs_alone_as_an_image_to_image_model_and_as_a_stage()
    {
        var baseModel = SyntheticModels.Get();
        var refiner = SyntheticModels.Get(new SyntheticModelOptions { Refiner = true });
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(baseModel).WithRefiner(refiner, new RefinerOptions { HighNoiseFraction = 0.7 }).Build();
        var refined = await pipeline.GenerateAsync(Request with { Steps = 10 });
        var baseOnly = await pipeline.GenerateAsync(Request with { Steps = 10, UseRefiner = false });
        Assert.NotEqual(refined.Images[0].Pixels.ToArray(), baseOnly.Images[0].Pixels.ToArray());

        // A second-order sampler gets diffusers' extra refiner step; the run must still complete.
        var heun = await pipeline.GenerateAsync(Request with { Steps = 10, Scheduler = "heun" });
        Assert.Single(heun.Images);
    }
}

public sealed class VaeLatentScalingTests
{
    [Fact]
    public void Decode_and_encode_are_inverse_with_and_without_latents_mean_and_std()
    {
        float[] latents = [0.5f, -1f, 2f, 0.25f, 3f, -0.5f, 1f, 0f];
        foreach (var scaling in new[]
        {
            new Sdxl.Net.Models.VaeLatentScaling(0.13025f, null, null),
            new Sdxl.Net.Models.VaeLatentScaling(0.5f, [0.1f, -0.2f], [2f, 0.5f]),
        })
        {
            var vae = new float[latents.Length];
            scaling.ToDecoder(latents, vae, plane: 4);
            if (scaling.Mean is null)
            {
                Assert.Equal(latents[1] / 0.13025f, vae[1]);
            }
            else
            {
                // channel 1 (elements 4..7): latents · std / scaling_factor + mean
                Assert.Equal((3f * 0.5f / 0.5f) + -0.2f, vae[4], 5);
            }

            scaling.FromEncoder(vae, plane: 4);
            for (int i = 0; i < latents.Length; i++)
            {
                Assert.Equal(latents[i], vae[i], 4);
            }
        }
    }
}
