using System.Text.Json;
using System.Text.Json.Nodes;
using DataType = Onnx.TensorProto.Types.DataType;

namespace Sdxl.Net.Synthetic;

/// <summary>
/// Writes random-weight model folders laid out like an <c>optimum-cli export onnx --task stable-diffusion-xl</c>
/// export (model_index.json, scheduler, tokenizers, text encoders, UNet, VAE halves), in any of the signature
/// variants real exporters produce. The networks are small stand-ins, not SDXL: their outputs are meaningless but
/// have the right names, types and shapes, and every output depends on every input.
/// </summary>
public static class SyntheticSdxlModel
{
    /// <summary>The size of the vocabulary written to tokenizer/ and tokenizer_2/; the least allowed VocabSize.</summary>
    public static int MinimumVocabSize => ClipVocabulary.Count;

    internal const string DiffusersVersion = "0.40.0.dev0";

    private static readonly JsonSerializerOptions IndentedJson = new() { WriteIndented = true };

    /// <summary>Writes the whole model folder into <paramref name="directory"/> (created if missing; files are overwritten).</summary>
    /// <param name="directory">The folder to write.</param>
    /// <param name="options">The variant and sizes; <see langword="null"/> for the tiny current-optimum base model.</param>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    public static void Write(string directory, SyntheticModelOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        options ??= new SyntheticModelOptions();
        options.Validate();
        Directory.CreateDirectory(directory);

        WriteJson(Path.Combine(directory, "model_index.json"), ModelIndex(options));
        WriteJson(Path.Combine(directory, "scheduler", "scheduler_config.json"), SchedulerConfig());

        if (!options.Refiner)
        {
            ClipVocabulary.Write(Path.Combine(directory, "tokenizer"), ClipVocabulary.EndOfText);
            var idsType = options.TextEncoderInt32Ids ? DataType.Int32 : DataType.Int64;
            SaveModel(directory, "text_encoder", TextEncoderGraph.Build("text_encoder", WeightRandom.For(options.Seed, 1),
                options.Float16, idsType, options.VocabSize, options.TextHidden1, options.TextLayers, projectionDim: null, options.DiffusersModuleNames));
            WriteJson(Path.Combine(directory, "text_encoder", "config.json"), TextEncoderConfig(options, withProjection: false));
        }

        ClipVocabulary.Write(Path.Combine(directory, "tokenizer_2"), "!");
        SaveModel(directory, "text_encoder_2", TextEncoderGraph.Build("text_encoder_2", WeightRandom.For(options.Seed, 2),
            options.Float16, DataType.Int64, options.VocabSize, options.TextHidden2, options.TextLayers, options.ProjectionDim, options.DiffusersModuleNames));
        WriteJson(Path.Combine(directory, "text_encoder_2", "config.json"), TextEncoderConfig(options, withProjection: true));

        SaveModel(directory, "unet", UnetGraph.Build(options, WeightRandom.For(options.Seed, 3),
            controlNetResiduals: options.ControlNetUNet == ControlNetUNetLayout.UNetTakesResiduals), options.UnetExternalData);
        WriteJson(Path.Combine(directory, "unet", "config.json"), UnetConfig(options));
        if (options.ControlNetUNet == ControlNetUNetLayout.OnnxStackFolder)
        {
            // The same weights (same seed) with the residual inputs: with zero residuals it equals unet/.
            SaveModel(directory, "controlnet", UnetGraph.Build(options, WeightRandom.For(options.Seed, 3), controlNetResiduals: true), options.UnetExternalData);
        }

        SaveModel(directory, "vae_decoder", VaeGraphs.BuildDecoder(WeightRandom.For(options.Seed, 4), options.Float16));
        WriteJson(Path.Combine(directory, "vae_decoder", "config.json"), VaeConfig());
        if (options.IncludeVaeEncoder)
        {
            SaveModel(directory, "vae_encoder", VaeGraphs.BuildEncoder(WeightRandom.For(options.Seed, 5), options.Float16, options.VaeEncoder));
            WriteJson(Path.Combine(directory, "vae_encoder", "config.json"), VaeConfig());
        }
    }

    /// <summary>
    /// Writes a random-weight ControlNet folder (<c>model.onnx</c> with OnnxStack's SDXL ControlNet signature and, unless
    /// disabled, a diffusers <c>config.json</c>) that fits a model folder written with <paramref name="model"/>, whose
    /// <see cref="SyntheticModelOptions.ControlNetUNet"/> gives the UNet that takes its residuals.
    /// </summary>
    /// <param name="directory">The folder to write.</param>
    /// <param name="model">The options of the model folder it is for; <see langword="null"/> for the defaults.</param>
    /// <param name="options">The net's own options; <see langword="null"/> for the defaults.</param>
    public static void WriteControlNet(string directory, SyntheticModelOptions? model = null, SyntheticControlNetOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        model ??= new SyntheticModelOptions();
        options ??= new SyntheticControlNetOptions();
        model.Validate();
        Directory.CreateDirectory(directory);
        ControlNetGraph.Build(model, options, WeightRandom.For(options.Seed, 7)).Save(Path.Combine(directory, "model.onnx"), externalData: false);
        if (options.WriteConfig)
        {
            var config = UnetConfig(model);
            config["_class_name"] = "ControlNetModel";
            config["conditioning_channels"] = 3;
            config["controlnet_conditioning_channel_order"] = "rgb";
            config["global_pool_conditions"] = false;
            WriteJson(Path.Combine(directory, "config.json"), config);
        }
    }

    /// <summary>
    /// Writes a random-weight TAESD-XL-shaped preview decoder (diffusers' <c>AutoencoderTiny</c> decoder as optimum exports
    /// it): <c>vae_decoder/model.onnx</c> with <c>latent_sample</c> [B, 4, h, w] (latents as the UNet sees them) →
    /// <c>sample</c> [B, 3, 8h, 8w] in (−1, 1), and <c>config.json</c> with <c>scaling_factor</c> 1.0.
    /// </summary>
    /// <param name="directory">The folder to write (created if missing).</param>
    /// <param name="seed">The seed of the random weights.</param>
    public static void WriteTaesdDecoder(string directory, int seed = 1)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        Directory.CreateDirectory(directory);
        SaveModel(directory, "vae_decoder", VaeGraphs.BuildTinyDecoder(WeightRandom.For(seed, 6)));
        WriteJson(Path.Combine(directory, "config.json"), new JsonObject
        {
            ["_class_name"] = "AutoencoderTiny",
            ["_diffusers_version"] = DiffusersVersion,
            ["latent_channels"] = 4,
            ["scaling_factor"] = 1.0,
        });
    }

    /// <summary>The number of UNet weights <paramref name="options"/> describes, counted without generating them.</summary>
    internal static long CountUnetParameters(SyntheticModelOptions options)
    {
        options.Validate();
        return UnetGraph.Build(options, WeightRandom.For(options.Seed, 3), countOnly: true).ParameterCount;
    }

    private static void SaveModel(string directory, string component, OnnxGraphBuilder graph, bool externalData = false)
    {
        var folder = Path.Combine(directory, component);
        Directory.CreateDirectory(folder);
        var dataFile = Path.Combine(folder, "model.onnx_data");
        if (!externalData && File.Exists(dataFile))
        {
            File.Delete(dataFile); // a stale data file from an earlier write would contradict the inline model
        }

        graph.Save(Path.Combine(folder, "model.onnx"), externalData);
    }

    internal static void WriteJson(string path, JsonObject json)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, json.ToJsonString(IndentedJson) + "\n");
    }

    private static JsonArray Pair(string? library, string? type) => [library, type];

    private static JsonObject ModelIndex(SyntheticModelOptions options)
    {
        var inpainting = options.UnetInChannels == 9;
        var pipeline = options.Refiner ? "StableDiffusionXLImg2ImgPipeline"
            : inpainting ? "StableDiffusionXLInpaintPipeline"
            : "StableDiffusionXLPipeline";
        var index = new JsonObject
        {
            ["_class_name"] = pipeline,
            ["_diffusers_version"] = DiffusersVersion,
            ["feature_extractor"] = Pair(null, null),
            ["force_zeros_for_empty_prompt"] = !options.Refiner,
            ["image_encoder"] = Pair(null, null),
        };
        if (options.Refiner || inpainting)
        {
            // Only the image-to-image pipelines take this argument; the refiner conditions on an aesthetic score.
            index["requires_aesthetics_score"] = options.Refiner;
        }

        index["scheduler"] = Pair("diffusers", "EulerDiscreteScheduler");
        index["text_encoder"] = options.Refiner ? Pair(null, null) : Pair("transformers", "CLIPTextModel");
        index["text_encoder_2"] = Pair("transformers", "CLIPTextModelWithProjection");
        index["tokenizer"] = options.Refiner ? Pair(null, null) : Pair("transformers", "CLIPTokenizer");
        index["tokenizer_2"] = Pair("transformers", "CLIPTokenizer");
        index["unet"] = Pair("diffusers", "UNet2DConditionModel");
        index["vae"] = Pair("diffusers", "AutoencoderKL");
        return index;
    }

    /// <summary>stabilityai/stable-diffusion-xl-base-1.0's scheduler, as current diffusers saves it.</summary>
    internal static JsonObject SchedulerConfig() => new()
    {
        ["_class_name"] = "EulerDiscreteScheduler",
        ["_diffusers_version"] = DiffusersVersion,
        ["beta_end"] = 0.012,
        ["beta_schedule"] = "scaled_linear",
        ["beta_start"] = 0.00085,
        ["clip_sample"] = false,
        ["final_sigmas_type"] = "zero",
        ["interpolation_type"] = "linear",
        ["num_train_timesteps"] = 1000,
        ["prediction_type"] = "epsilon",
        ["rescale_betas_zero_snr"] = false,
        ["sample_max_value"] = 1.0,
        ["set_alpha_to_one"] = false,
        ["sigma_max"] = null,
        ["sigma_min"] = null,
        ["skip_prk_steps"] = true,
        ["steps_offset"] = 1,
        ["timestep_spacing"] = "leading",
        ["timestep_type"] = "discrete",
        ["trained_betas"] = null,
        ["use_beta_sigmas"] = false,
        ["use_exponential_sigmas"] = false,
        ["use_karras_sigmas"] = false,
    };

    private static JsonObject TextEncoderConfig(SyntheticModelOptions options, bool withProjection)
    {
        var hidden = withProjection ? options.TextHidden2 : options.TextHidden1;
        var architecture = withProjection ? "CLIPTextModelWithProjection" : "CLIPTextModel";
        return new JsonObject
        {
            ["_name_or_path"] = "synthetic/" + architecture,
            ["architectures"] = new JsonArray(architecture),
            ["attention_dropout"] = 0.0,
            ["bos_token_id"] = 0,
            ["dropout"] = 0.0,
            ["eos_token_id"] = 2, // as in the SDXL configs: transformers then pools at argmax(input_ids)
            ["export_model_type"] = withProjection ? "clip-text-with-projection" : "clip-text",
            ["hidden_act"] = withProjection ? "gelu" : "quick_gelu",
            ["hidden_size"] = hidden,
            ["initializer_factor"] = 1.0,
            ["initializer_range"] = 0.02,
            ["intermediate_size"] = 4 * hidden,
            ["layer_norm_eps"] = 1e-05,
            ["max_position_embeddings"] = TextEncoderGraph.MaxPositions,
            ["model_type"] = "clip_text_model",
            ["num_attention_heads"] = 1,
            ["num_hidden_layers"] = options.TextLayers,
            ["output_hidden_states"] = true,
            ["pad_token_id"] = 1,
            ["projection_dim"] = withProjection ? options.ProjectionDim : hidden,
            ["torch_dtype"] = options.Float16 ? "float16" : "float32",
            ["transformers_version"] = "4.57.1",
            ["vocab_size"] = options.VocabSize,
        };
    }

    private static JsonObject UnetConfig(SyntheticModelOptions options)
    {
        var channels = options.UnetBlockChannels();
        var down = new JsonArray();
        var up = new JsonArray();
        var heads = new JsonArray();
        var blockChannels = new JsonArray();
        for (var level = 0; level < channels.Length; level++)
        {
            down.Add(level == 0 ? "DownBlock2D" : "CrossAttnDownBlock2D");
            up.Add(level == channels.Length - 1 ? "UpBlock2D" : "CrossAttnUpBlock2D");
            heads.Add(1);
            blockChannels.Add(channels[level]);
        }

        return new JsonObject
        {
            ["_class_name"] = "UNet2DConditionModel",
            ["_diffusers_version"] = DiffusersVersion,
            ["act_fn"] = "silu",
            ["addition_embed_type"] = "text_time",
            ["addition_embed_type_num_heads"] = 64,
            ["addition_time_embed_dim"] = UnetGraph.AdditionTimeEmbedDim,
            ["attention_head_dim"] = heads,
            ["block_out_channels"] = blockChannels,
            ["center_input_sample"] = false,
            ["class_embed_type"] = null,
            ["conv_in_kernel"] = 3,
            ["conv_out_kernel"] = 3,
            ["cross_attention_dim"] = options.CrossAttentionDim,
            ["down_block_types"] = down,
            ["downsample_padding"] = 1,
            ["flip_sin_to_cos"] = true,
            ["freq_shift"] = 0,
            ["in_channels"] = options.UnetInChannels,
            ["layers_per_block"] = 1,
            ["mid_block_type"] = "UNetMidBlock2DCrossAttn",
            ["norm_eps"] = 1e-05,
            ["norm_num_groups"] = UnetGraph.NormGroups,
            ["out_channels"] = 4,
            ["projection_class_embeddings_input_dim"] = UnetGraph.AdditionTimeEmbedDim * options.TimeIdsWidth + options.ProjectionDim,
            ["sample_size"] = options.SampleSize,
            ["time_cond_proj_dim"] = options.TimeCondProjDim,
            ["time_embedding_dim"] = 4 * channels[0],
            ["time_embedding_type"] = "positional",
            ["transformer_layers_per_block"] = 1,
            ["up_block_types"] = up,
            ["use_linear_projection"] = true,
        };
    }

    private static JsonObject VaeConfig() => new()
    {
        ["_class_name"] = "AutoencoderKL",
        ["_diffusers_version"] = DiffusersVersion,
        ["act_fn"] = "silu",
        ["block_out_channels"] = new JsonArray(VaeGraphs.Channels, VaeGraphs.Channels, VaeGraphs.Channels, VaeGraphs.Channels),
        ["down_block_types"] = new JsonArray("DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"),
        ["force_upcast"] = true,
        ["in_channels"] = 3,
        ["latent_channels"] = 4,
        ["latents_mean"] = null,
        ["latents_std"] = null,
        ["layers_per_block"] = 1,
        ["norm_num_groups"] = UnetGraph.NormGroups,
        ["out_channels"] = 3,
        ["sample_size"] = 64,
        ["scaling_factor"] = 0.13025,
        ["shift_factor"] = null,
        ["up_block_types"] = new JsonArray("UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"),
        ["use_post_quant_conv"] = true,
        ["use_quant_conv"] = true,
    };
}
