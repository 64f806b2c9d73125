using System.Globalization;
using Sdxl.Net.Schedulers;

namespace Sdxl.Net.Models;

/// <summary>
/// Checks every value of a model folder's configs that reaches the math, at <c>Build()</c>, against what the model
/// and float32 allow: a nonsense value fails there with an <see cref="SdxlModelException"/> naming the file, the key,
/// the value and the allowed range, instead of hanging, allocating gigabytes, dividing by zero or ending in NaN
/// images whose message would blame guidance or the VAE.
/// </summary>
internal static class ModelConfigValidation
{
    /// <summary>
    /// The most training timesteps accepted (diffusers' models use 1000). The schedule holds several float arrays of
    /// this length, so 2e9 would allocate gigabytes before anything else happens.
    /// </summary>
    public const int MaxTrainTimesteps = 100_000;

    /// <summary>The most resolution levels accepted in a UNet or VAE <c>block_out_channels</c> (SDXL: 3 and 4).</summary>
    public const int MaxLevels = 8;

    /// <summary>The range accepted for the VAE's <c>scaling_factor</c> (real VAEs use 0.1 to 2; the value divides every latent).</summary>
    public const double MinScalingFactor = 1e-3, MaxScalingFactor = 1e3;

    /// <summary>Keys of <c>scheduler_config.json</c> whose values may be infinite (diffusers writes <c>-Infinity</c> there).</summary>
    private static readonly HashSet<string> MayBeInfinite = new(StringComparer.Ordinal) { "lambda_min_clipped" };

    /// <summary>Checks <c>scheduler/scheduler_config.json</c>.</summary>
    /// <exception cref="SdxlModelException">A value is outside what the schedulers allow.</exception>
    public static void CheckScheduler(SchedulerConfig config, string file)
    {
        const string component = "scheduler";
        try
        {
            // Every number must be finite and representable in float32: the schedules are float32 tensors.
            foreach (var key in config.Keys)
            {
                if (!config.Has(key) || !IsNumber(config, key, out var value))
                {
                    continue;
                }

                if (double.IsNaN(value) || (!MayBeInfinite.Contains(key) && (!double.IsFinite(value) || Math.Abs(value) > float.MaxValue)))
                {
                    throw Fault(component, file, key, value, "a finite number representable in float32");
                }
            }

            int trainSteps = config.GetInt32("num_train_timesteps", 1000);
            if (trainSteps < 2 || trainSteps > MaxTrainTimesteps)
            {
                throw Fault(component, file, "num_train_timesteps", trainSteps,
                    $"an integer from 2 to {MaxTrainTimesteps} (the schedule holds one value per training timestep; SDXL uses 1000)");
            }

            if (config.GetDoubleArray("trained_betas") is { } trained)
            {
                if (trained.Length != trainSteps)
                {
                    throw new SdxlModelException(
                        $"{component}: '{file}': trained_betas has {trained.Length} values; num_train_timesteps is {trainSteps}, and the two must agree.");
                }

                for (int i = 0; i < trained.Length; i++)
                {
                    if (!(trained[i] > 0 && trained[i] < 1))
                    {
                        throw Fault(component, file, $"trained_betas[{i}]", trained[i], "a number strictly between 0 and 1 (each beta is a noise variance)");
                    }
                }
            }
            else
            {
                CheckOpenUnit(config, component, file, "beta_start");
                CheckOpenUnit(config, component, file, "beta_end");
                CheckName(config, component, file, "beta_schedule", "linear", "scaled_linear", "squaredcos_cap_v2");
            }

            CheckName(config, component, file, "timestep_spacing", "leading", "trailing", "linspace");
            CheckName(config, component, file, "prediction_type", "epsilon", "v_prediction", "sample");
            CheckName(config, component, file, "interpolation_type", "linear", "log_linear");
            CheckName(config, component, file, "final_sigmas_type", "zero", "sigma_min");
            CheckName(config, component, file, "timestep_type", "discrete", "continuous");

            int offset = config.GetInt32("steps_offset", 0);
            if (offset < 0 || offset >= trainSteps)
            {
                throw Fault(component, file, "steps_offset", offset, $"an integer from 0 to {trainSteps - 1} (below num_train_timesteps)");
            }

            if (config.Has("original_inference_steps"))
            {
                int original = config.GetInt32("original_inference_steps", 50);
                if (original < 1 || original > trainSteps)
                {
                    throw Fault(component, file, "original_inference_steps", original, $"an integer from 1 to num_train_timesteps ({trainSteps})");
                }
            }

            if (config.Has("solver_order"))
            {
                int order = config.GetInt32("solver_order", 2);
                if (order is < 1 or > 3)
                {
                    throw Fault(component, file, "solver_order", order, "1, 2 or 3");
                }
            }

            foreach (var key in new[] { "sigma_min", "sigma_max", "clip_sample_range", "sample_max_value", "timestep_scaling", "shift", "flow_shift" })
            {
                if (config.GetNullableDouble(key) is { } v && !(v > 0))
                {
                    throw Fault(component, file, key, v, "a finite number greater than 0");
                }
            }

            if (config.GetNullableDouble("sigma_min") is { } min && config.GetNullableDouble("sigma_max") is { } max && !(min < max))
            {
                throw new SdxlModelException($"{component}: '{file}': sigma_min ({Format(min)}) must be below sigma_max ({Format(max)}).");
            }
        }
        catch (FormatException e)
        {
            // A value of the wrong type (a string for a number, a number for a flag).
            throw new SdxlModelException($"{component}: '{file}': {e.Message}", e);
        }
    }

    /// <summary>Checks the VAE config and returns its pixels per latent cell (2^(levels − 1)).</summary>
    /// <exception cref="SdxlModelException">A value is outside what the model allows.</exception>
    public static int CheckVae(JsonConfig vae, int latentChannels)
    {
        const string component = "vae_decoder";
        var file = vae.Path ?? "vae_decoder/config.json";
        if (vae.Path is null)
        {
            return 8;
        }

        double scaling = Number(vae, component, "scaling_factor", 0.13025);
        if (!(scaling >= MinScalingFactor && scaling <= MaxScalingFactor))
        {
            throw Fault(component, file, "scaling_factor", scaling,
                $"a number from {Format(MinScalingFactor)} to {Format(MaxScalingFactor)} (it divides every latent; SDXL's VAE uses 0.13025)");
        }

        if (vae.Has("shift_factor") && Number(vae, component, "shift_factor", 0) is var shift && !double.IsFinite(shift))
        {
            throw Fault(component, file, "shift_factor", shift, "a finite number");
        }

        if (vae.Has("latent_channels"))
        {
            double channels = Number(vae, component, "latent_channels", latentChannels);
            if (channels != latentChannels)
            {
                throw Fault(component, file, "latent_channels", channels, $"{latentChannels} (the latent channels of SDXL's UNet)");
            }
        }

        // diffusers uses latents_mean/latents_std only when both are given; then they broadcast per latent channel, and
        // a list of another length is an error there too.
        if (vae.Has("latents_mean") && vae.Has("latents_std"))
        {
            var mean = Numbers(vae, component, "latents_mean");
            var std = Numbers(vae, component, "latents_std");
            CheckPerChannel(component, file, "latents_mean", mean, latentChannels, positive: false);
            CheckPerChannel(component, file, "latents_std", std, latentChannels, positive: true);
        }

        int levels = Levels(vae, component, "block_out_channels", defaultLevels: 4);
        return 1 << (levels - 1);
    }

    /// <summary>Checks the UNet config and returns its number of resolution levels.</summary>
    /// <exception cref="SdxlModelException">A value is outside what the model allows.</exception>
    public static int CheckUNet(JsonConfig unet)
    {
        const string component = "unet";
        foreach (var key in new[] { "sample_size", "cross_attention_dim", "addition_time_embed_dim", "projection_class_embeddings_input_dim", "in_channels" })
        {
            // sample_size may be an [h, w] list in some configs; only a single number is used here.
            if (unet.Has(key) && IsJsonNumber(unet, key))
            {
                double v = Number(unet, component, key, 1);
                if (!(v >= 1 && v <= 1 << 20 && v == Math.Floor(v)))
                {
                    throw Fault(component, unet.Path ?? "unet/config.json", key, v, $"a positive integer up to {1 << 20}");
                }
            }
        }

        return Levels(unet, component, "block_out_channels", defaultLevels: 3);
    }

    /// <summary>
    /// Checks that the sizes following from the configs are usable: the pixel multiple (VAE factor × 2^(UNet levels − 1))
    /// and the default size (UNet <c>sample_size</c> × VAE factor) must fit the largest accepted side.
    /// </summary>
    public static void CheckSizes(JsonConfig unet, JsonConfig vae, long pixelMultiple, long sampleSize, int vaeScale)
    {
        if (pixelMultiple > RequestValidation.MaxSide)
        {
            throw new SdxlModelException(
                $"unet and vae_decoder: the block_out_channels of '{unet.Path ?? "unet/config.json"}' and '{vae.Path ?? "vae_decoder/config.json"}' make image sides a multiple of {pixelMultiple} pixels, "
                + $"more than the largest side accepted ({RequestValidation.MaxSide}); SDXL's make 32 (VAE 4 levels, UNet 3).");
        }

        if (sampleSize * vaeScale > RequestValidation.MaxSide)
        {
            throw Fault("unet", unet.Path ?? "unet/config.json", "sample_size", sampleSize,
                $"at most {RequestValidation.MaxSide / vaeScale}, so that the default size (sample_size × {vaeScale}) stays within {RequestValidation.MaxSide} pixels (SDXL: 128)");
        }
    }

    /// <summary>Checks a refiner's aesthetic scores (passed to the UNet as <c>time_ids</c>).</summary>
    public static void CheckAestheticScores(RefinerOptions options)
    {
        foreach (var (name, value) in new[] { (nameof(options.AestheticScore), options.AestheticScore), (nameof(options.NegativeAestheticScore), options.NegativeAestheticScore) })
        {
            if (!double.IsFinite(value) || Math.Abs(value) > 1000)
            {
                throw new ArgumentOutOfRangeException(name, value, $"RefinerOptions.{name} must be a finite number within ±1000 (diffusers' defaults: 6 and 2.5); got {Format(value)}.");
            }
        }
    }

    private static int Levels(JsonConfig config, string component, string key, int defaultLevels)
    {
        if (!config.Has(key))
        {
            return defaultLevels;
        }

        var channels = Numbers(config, component, key);
        var file = config.Path ?? component + "/config.json";
        if (channels.Length is < 1 or > MaxLevels)
        {
            throw new SdxlModelException(
                $"{component}: '{file}': {key} has {channels.Length} entries; from 1 to {MaxLevels} resolution levels are accepted (SDXL's UNet has 3, its VAE 4).");
        }

        for (int i = 0; i < channels.Length; i++)
        {
            if (!(channels[i] >= 1 && channels[i] <= 1 << 16 && channels[i] == Math.Floor(channels[i])))
            {
                throw Fault(component, file, $"{key}[{i}]", channels[i], $"a positive integer up to {1 << 16}");
            }
        }

        return channels.Length;
    }

    private static void CheckPerChannel(string component, string file, string key, double[] values, int channels, bool positive)
    {
        if (values.Length != channels)
        {
            throw new SdxlModelException(
                $"{component}: '{file}': {key} has {values.Length} values; it needs one per latent channel ({channels}).");
        }

        for (int i = 0; i < values.Length; i++)
        {
            bool ok = double.IsFinite(values[i]) && Math.Abs(values[i]) <= 1e4 && (!positive || values[i] >= 1e-6);
            if (!ok)
            {
                throw Fault(component, file, $"{key}[{i}]", values[i], positive ? "a finite number from 1e-06 to 10000" : "a finite number within ±10000");
            }
        }
    }

    private static void CheckOpenUnit(SchedulerConfig config, string component, string file, string key)
    {
        if (config.GetNullableDouble(key) is { } v && !(v > 0 && v < 1))
        {
            throw Fault(component, file, key, v, "a number strictly between 0 and 1 (a noise variance)");
        }
    }

    private static void CheckName(SchedulerConfig config, string component, string file, string key, params string[] allowed)
    {
        if (config.Has(key) && config.GetString(key, string.Empty) is var value && Array.IndexOf(allowed, value) < 0)
        {
            throw new SdxlModelException($"{component}: '{file}': {key} is '{value}'; allowed: {string.Join(", ", allowed.Select(a => $"'{a}'"))}.");
        }
    }

    private static bool IsNumber(SchedulerConfig config, string key, out double value)
    {
        try
        {
            value = config.GetDouble(key, 0);
            return true;
        }
        catch (FormatException)
        {
            value = 0;
            return false;
        }
    }

    private static bool IsJsonNumber(JsonConfig config, string key) => config.Raw(key) is System.Text.Json.Nodes.JsonValue v
        && (v.TryGetValue<double>(out _) || v.TryGetValue<string>(out var s) && s is "NaN" or "Infinity" or "-Infinity");

    /// <summary>A number of a lenient component config; Python's NaN/Infinity literals come back as such, so they are rejected rather than replaced by the default.</summary>
    private static double Number(JsonConfig config, string component, string key, double defaultValue)
    {
        var node = config.Raw(key);
        if (node is null)
        {
            return defaultValue;
        }

        if (node is System.Text.Json.Nodes.JsonValue v)
        {
            if (v.TryGetValue<double>(out var d))
            {
                return d;
            }

            if (v.TryGetValue<string>(out var s))
            {
                switch (s)
                {
                    case "NaN": return double.NaN;
                    case "Infinity": return double.PositiveInfinity;
                    case "-Infinity": return double.NegativeInfinity;
                }
            }
        }

        throw new SdxlModelException($"{component}: '{config.Path}': {key} must be a number; found {node.ToJsonString()}.");
    }

    private static double[] Numbers(JsonConfig config, string component, string key)
    {
        if (config.Raw(key) is not System.Text.Json.Nodes.JsonArray array)
        {
            throw new SdxlModelException($"{component}: '{config.Path}': {key} must be a list of numbers; found {config.Raw(key)?.ToJsonString() ?? "null"}.");
        }

        var result = new double[array.Count];
        for (int i = 0; i < result.Length; i++)
        {
            if (array[i] is System.Text.Json.Nodes.JsonValue v && v.TryGetValue<double>(out var d))
            {
                result[i] = d;
            }
            else if (array[i] is System.Text.Json.Nodes.JsonValue s && s.TryGetValue<string>(out var text) && text is "NaN" or "Infinity" or "-Infinity")
            {
                result[i] = text == "NaN" ? double.NaN : text == "Infinity" ? double.PositiveInfinity : double.NegativeInfinity;
            }
            else
            {
                throw new SdxlModelException($"{component}: '{config.Path}': {key}[{i}] must be a number; found {array[i]?.ToJsonString() ?? "null"}.");
            }
        }

        return result;
    }

    private static SdxlModelException Fault(string component, string file, string key, double value, string allowed) =>
        new($"{component}: '{file}': {key} is {Format(value)}; allowed: {allowed}.");

    private static string Format(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
