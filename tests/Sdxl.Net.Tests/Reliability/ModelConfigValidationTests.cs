using System.Text.Json.Nodes;
using Sdxl.Net.Runtime;

namespace Sdxl.Net.Tests.Reliability;

/// <summary>
/// Every config value that reaches the math is checked at Build(): a nonsense value fails there with an
/// SdxlModelException naming the file, the key, the value and what is allowed.
/// </summary>
public sealed class ModelConfigValidationTests
{
    private const string Scheduler = "scheduler/scheduler_config.json";
    private const string Vae = "vae_decoder/config.json";
    private const string Unet = "unet/config.json";

    public static TheoryData<string, string, string, string> Faults_() => new()
    {
        // file, key, raw JSON value, expected message fragment
        { Scheduler, "num_train_timesteps", "2000000000", "num_train_timesteps is 2000000000; allowed: an integer from 2 to 100000" },
        { Scheduler, "num_train_timesteps", "1", "num_train_timesteps is 1" },
        { Scheduler, "num_train_timesteps", "1.5", "'num_train_timesteps' must be an integer" },
        { Scheduler, "num_train_timesteps", "\"many\"", "'num_train_timesteps' must be a number" },
        { Scheduler, "beta_start", "NaN", "beta_start is NaN" },
        { Scheduler, "beta_start", "-0.1", "beta_start is -0.1; allowed: a number strictly between 0 and 1" },
        { Scheduler, "beta_end", "1.5", "beta_end is 1.5" },
        { Scheduler, "beta_end", "1e39", "representable in float32" },
        { Scheduler, "beta_schedule", "\"cubic\"", "beta_schedule is 'cubic'; allowed: 'linear', 'scaled_linear', 'squaredcos_cap_v2'" },
        { Scheduler, "trained_betas", "[0.1, 0.2]", "trained_betas has 2 values; num_train_timesteps is 1000" },
        { Scheduler, "timestep_spacing", "\"sideways\"", "timestep_spacing is 'sideways'" },
        { Scheduler, "prediction_type", "\"noise\"", "prediction_type is 'noise'" },
        { Scheduler, "steps_offset", "-1", "steps_offset is -1; allowed: an integer from 0 to 999" },
        { Scheduler, "steps_offset", "1000", "steps_offset is 1000" },
        { Scheduler, "sigma_min", "-1", "sigma_min is -1; allowed: a finite number greater than 0" },
        { Scheduler, "sample_max_value", "Infinity", "sample_max_value is Infinity" },
        { Scheduler, "solver_order", "7", "solver_order is 7; allowed: 1, 2 or 3" },
        { Vae, "scaling_factor", "0", "scaling_factor is 0; allowed: a number from 0.001 to 1000" },
        { Vae, "scaling_factor", "-0.13025", "scaling_factor is -0.13025" },
        { Vae, "scaling_factor", "NaN", "scaling_factor is NaN" },
        { Vae, "scaling_factor", "1e30", "scaling_factor is 1E+30" },
        { Vae, "scaling_factor", "\"big\"", "scaling_factor must be a number; found \"big\"" },
        { Vae, "latent_channels", "8", "latent_channels is 8; allowed: 4" },
        { Vae, "block_out_channels", "[" + string.Join(",", Enumerable.Repeat(32, 30)) + "]", "block_out_channels has 30 entries; from 1 to 8" },
        { Vae, "block_out_channels", "[]", "block_out_channels has 0 entries" },
        { Unet, "block_out_channels", "[" + string.Join(",", Enumerable.Repeat(32, 30)) + "]", "unet: " },
        { Unet, "block_out_channels", "[32, -1]", "block_out_channels[1] is -1" },
        { Unet, "sample_size", "100000", "sample_size is 100000" },
        { Unet, "sample_size", "0", "sample_size is 0" },
        { Unet, "cross_attention_dim", "-96", "cross_attention_dim is -96" },
    };

    [Theory]
    [MemberData(nameof(Faults_))]
    public void Config_value_outside_what_the_model_allows_fails_at_build_naming_file_key_and_value(string file, string key, string value, string fragment)
    {
        using var model = Faults.CopyModel();
        SetRaw(model[file], key, value);
        var e = Assert.Throws<SdxlModelException>(() => Faults.Pipeline(model.Path).Dispose());
        Assert.Contains(fragment, e.Message);
        Assert.Contains(Path.GetFileName(file), e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Levels_whose_pixel_multiple_exceeds_the_largest_side_fail_before_any_division()
    {
        // 8 VAE levels (×128) and 8 UNet levels (×128) make sides a multiple of 16384 > 4096: no image fits.
        using var model = Faults.CopyModel();
        SetRaw(model[Vae], "block_out_channels", "[8, 8, 8, 8, 8, 8, 8, 8]");
        SetRaw(model[Unet], "block_out_channels", "[8, 8, 8, 8, 8, 8, 8, 8]");
        var e = Assert.Throws<SdxlModelException>(() => Faults.Pipeline(model.Path).Dispose());
        Assert.Contains("a multiple of 16384 pixels, more than the largest side accepted (4096)", e.Message);
    }

    [Fact]
    public void Vae_config_with_the_wrong_level_count_fails_at_build_not_after_denoising()
    {
        // The synthetic decoder makes 8×8 pixels per latent cell (4 levels); a config with 3 levels says 4×4.
        using var model = Faults.CopyModel();
        SetRaw(model[Vae], "block_out_channels", "[8, 8, 8]");
        var e = Assert.Throws<SdxlModelException>(() => Faults.Pipeline(model.Path).Dispose());
        Assert.Contains("the decoder makes 8x8 pixels of one latent cell", e.Message);
        Assert.Contains("says 4x4", e.Message);
    }

    [Fact]
    public async Task Vae_level_mismatch_in_per_phase_mode_is_still_a_model_exception()
    {
        // Per-phase loading skips the build-time probe; the decode's size check names the file instead of failing
        // inside the tensor copy.
        using var model = Faults.CopyModel();
        SetRaw(model[Vae], "block_out_channels", "[8, 8, 8]");
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(model.Path).WithMemoryMode(MemoryMode.LoadPerPhase).Build();
        var e = await Assert.ThrowsAsync<SdxlModelException>(() => pipeline.GenerateAsync(Faults.Tiny() with { Width = 32, Height = 32 }));
        Assert.Contains("vae_decoder:", e.Message);
        Assert.Contains("Is config.json from another VAE?", e.Message);
    }

    [Fact]
    public void Vae_latents_mean_and_std_need_one_finite_value_per_latent_channel()
    {
        // diffusers broadcasts them as a [1, 4, 1, 1] view, so a list of another length is an error there too.
        using var model = Faults.CopyModel();
        SetRaw(model[Vae], "latents_mean", "[0.1, 0.2, 0.3]");
        SetRaw(model[Vae], "latents_std", "[1, 1, 1, 1]");
        var e = Assert.Throws<SdxlModelException>(() => Faults.Pipeline(model.Path).Dispose());
        Assert.Contains("latents_mean has 3 values; it needs one per latent channel (4)", e.Message);

        SetRaw(model[Vae], "latents_mean", "[0.1, 0.2, 0.3, 0.4]");
        SetRaw(model[Vae], "latents_std", "[1, 1, 1, 0]");
        e = Assert.Throws<SdxlModelException>(() => Faults.Pipeline(model.Path).Dispose());
        Assert.Contains("latents_std[3] is 0", e.Message);

        // Both valid: builds.
        SetRaw(model[Vae], "latents_std", "[1, 1, 1, 0.5]");
        Faults.Pipeline(model.Path).Dispose();
    }

    [Fact]
    public void The_shipped_configs_and_diffusers_infinity_literals_still_build()
    {
        // lambda_min_clipped is written by diffusers as -Infinity; it is the one key allowed to be infinite.
        using var model = Faults.CopyModel();
        SetRaw(model[Scheduler], "lambda_min_clipped", "-Infinity");
        using var pipeline = Faults.Pipeline(model.Path);
        Assert.Equal(16, pipeline.PixelMultiple);
    }

    [Fact]
    public void Thread_counts_outside_1_to_256_are_refused()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => SdxlPipeline.CreateBuilder().UseCpu(intraOpThreads: 4096));
        Assert.Contains("from 1 to 256; got 4096", e.Message);

        var options = new ExecutionProviderOptions { IntraOpThreads = 257 };
        e = Assert.Throws<ArgumentOutOfRangeException>(() => SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).UseExecutionProvider(options).Build());
        Assert.Contains("got 257", e.Message);
    }

    [Fact]
    public void Refiner_aesthetic_scores_and_scheduler_names_are_checked_at_build()
    {
        var refiner = new RefinerOptions { AestheticScore = double.NaN };
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).WithRefiner(SyntheticModels.Get(), refiner).Build());
        Assert.Contains("RefinerOptions.AestheticScore", e.Message);

        var unknown = Assert.Throws<ArgumentException>(() => SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).WithScheduler("no-such-sampler").Build());
        Assert.Contains("Unknown scheduler 'no-such-sampler'", unknown.Message);
    }

    /// <summary>Sets <paramref name="key"/> to raw JSON text (which may be a Python literal such as NaN).</summary>
    internal static void SetRaw(string file, string key, string rawJson)
    {
        var obj = JsonNode.Parse(File.ReadAllText(file))!.AsObject();
        obj[key] = "__RAW__";
        File.WriteAllText(file, obj.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }).Replace("\"__RAW__\"", rawJson, StringComparison.Ordinal));
    }
}
