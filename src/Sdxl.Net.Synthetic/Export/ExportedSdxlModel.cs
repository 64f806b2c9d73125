using System.Text.Json.Nodes;

namespace Sdxl.Net.Synthetic.Export;

/// <summary>Options of <see cref="ExportedSdxlModel.Write"/>.</summary>
public sealed record ExportedModelOptions
{
    /// <summary>The component sizes (default: SDXL base 1.0 at full size).</summary>
    public SdxlArchitecture Architecture { get; init; } = SdxlArchitecture.Base;

    /// <summary>Whether weights, arithmetic and float I/O are float16, as an fp16 export (<c>--dtype fp16</c>) writes them.</summary>
    public bool Float16 { get; init; }

    /// <summary>The seed of the random weights: equal options write byte-identical folders.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>Whether to write <c>vae_encoder/</c>.</summary>
    public bool IncludeVaeEncoder { get; init; } = true;
}

/// <summary>
/// Writes an SDXL ONNX folder with the real network structure, node names and parameter counts of an optimum export
/// (<see cref="SdxlArchitecture.Base"/>: a 2.57 B-parameter UNet, CLIP ViT-L and bigG, the SDXL VAE) and random
/// weights, streamed into each component's <c>model.onnx_data</c> as they are generated: the weights are never held in
/// memory as a whole, so a 10 GB UNet is written with a few MB of managed memory. The images are noise; sizes, memory
/// and time are real.
/// </summary>
public static class ExportedSdxlModel
{
    /// <summary>Writes the folder (created if missing; files are overwritten).</summary>
    /// <param name="directory">The folder.</param>
    /// <param name="options">Architecture, dtype and seed.</param>
    /// <param name="progress">Receives each component's name as it is written.</param>
    /// <returns>The parameters written per component.</returns>
    public static IReadOnlyDictionary<string, long> Write(string directory, ExportedModelOptions? options = null, IProgress<string>? progress = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        options ??= new ExportedModelOptions();
        var a = options.Architecture;
        a.Validate();
        Directory.CreateDirectory(directory);
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        var dtype = options.Float16 ? "float16" : "float32";

        SyntheticSdxlModel.WriteJson(Path.Combine(directory, "model_index.json"), ModelIndex(a));
        SyntheticSdxlModel.WriteJson(Path.Combine(directory, "scheduler", "scheduler_config.json"), SyntheticSdxlModel.SchedulerConfig());
        if (a.TextEncoder is { } clipL)
        {
            ClipVocabulary.Write(Path.Combine(directory, "tokenizer"), ClipVocabulary.EndOfText);
            counts["text_encoder"] = Save(directory, "text_encoder", options, 1, progress, g => ClipTextExport.Build(g, clipL));
            SyntheticSdxlModel.WriteJson(Path.Combine(directory, "text_encoder", "config.json"), ClipConfig(clipL, dtype));
        }

        ClipVocabulary.Write(Path.Combine(directory, "tokenizer_2"), "!");
        counts["text_encoder_2"] = Save(directory, "text_encoder_2", options, 2, progress, g => ClipTextExport.Build(g, a.TextEncoder2));
        SyntheticSdxlModel.WriteJson(Path.Combine(directory, "text_encoder_2", "config.json"), ClipConfig(a.TextEncoder2, dtype));

        counts["unet"] = Save(directory, "unet", options, 3, progress, g => UnetExport.Build(g, a));
        SyntheticSdxlModel.WriteJson(Path.Combine(directory, "unet", "config.json"), UnetConfig(a, dtype));

        counts["vae_decoder"] = Save(directory, "vae_decoder", options, 4, progress, g => VaeExport.BuildDecoder(g, a));
        SyntheticSdxlModel.WriteJson(Path.Combine(directory, "vae_decoder", "config.json"), VaeConfig(a, dtype));
        if (options.IncludeVaeEncoder)
        {
            counts["vae_encoder"] = Save(directory, "vae_encoder", options, 5, progress, g => VaeExport.BuildEncoder(g, a));
            SyntheticSdxlModel.WriteJson(Path.Combine(directory, "vae_encoder", "config.json"), VaeConfig(a, dtype));
        }

        return counts;
    }

    /// <summary>Counts each component's parameters without writing anything.</summary>
    public static IReadOnlyDictionary<string, long> CountParameters(SdxlArchitecture architecture)
    {
        ArgumentNullException.ThrowIfNull(architecture);
        architecture.Validate();
        long Count(Action<ExportGraph> build)
        {
            using var g = new ExportGraph("count", new WeightRandom(1), float16: false, dataPath: null);
            build(g);
            return g.ParameterCount;
        }

        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        if (architecture.TextEncoder is { } clipL)
        {
            counts["text_encoder"] = Count(g => ClipTextExport.Build(g, clipL));
        }

        counts["text_encoder_2"] = Count(g => ClipTextExport.Build(g, architecture.TextEncoder2));
        counts["unet"] = Count(g => UnetExport.Build(g, architecture));
        counts["vae_decoder"] = Count(g => VaeExport.BuildDecoder(g, architecture));
        counts["vae_encoder"] = Count(g => VaeExport.BuildEncoder(g, architecture));
        return counts;
    }

    private static long Save(string directory, string component, ExportedModelOptions options, int stream, IProgress<string>? progress, Action<ExportGraph> build)
    {
        progress?.Report(component);
        var folder = Path.Combine(directory, component);
        Directory.CreateDirectory(folder);
        using var g = new ExportGraph(component, WeightRandom.For(options.Seed, stream), options.Float16, Path.Combine(folder, "model.onnx_data"));
        build(g);
        g.Save(Path.Combine(folder, "model.onnx"));
        return g.ParameterCount;
    }

    private static JsonArray Pair(string? library, string? type) => [library, type];

    private static JsonArray Ints(IEnumerable<int> values)
    {
        var array = new JsonArray();
        foreach (var v in values)
        {
            array.Add(v);
        }

        return array;
    }

    private static JsonObject ModelIndex(SdxlArchitecture a)
    {
        var index = new JsonObject
        {
            ["_class_name"] = a.IsRefiner ? "StableDiffusionXLImg2ImgPipeline" : "StableDiffusionXLPipeline",
            ["_diffusers_version"] = SyntheticSdxlModel.DiffusersVersion,
            ["feature_extractor"] = Pair(null, null),
            ["force_zeros_for_empty_prompt"] = !a.IsRefiner,
            ["image_encoder"] = Pair(null, null),
        };
        if (a.IsRefiner)
        {
            index["requires_aesthetics_score"] = true;
        }

        index["scheduler"] = Pair("diffusers", "EulerDiscreteScheduler");
        index["text_encoder"] = a.IsRefiner ? Pair(null, null) : Pair("transformers", "CLIPTextModel");
        index["text_encoder_2"] = Pair("transformers", "CLIPTextModelWithProjection");
        index["tokenizer"] = a.IsRefiner ? Pair(null, null) : Pair("transformers", "CLIPTokenizer");
        index["tokenizer_2"] = Pair("transformers", "CLIPTokenizer");
        index["unet"] = Pair("diffusers", "UNet2DConditionModel");
        index["vae"] = Pair("diffusers", "AutoencoderKL");
        return index;
    }

    private static JsonObject ClipConfig(ClipTextArchitecture c, string dtype)
    {
        var architecture = c.Projection is null ? "CLIPTextModel" : "CLIPTextModelWithProjection";
        return new JsonObject
        {
            ["architectures"] = new JsonArray(architecture),
            ["attention_dropout"] = 0.0,
            ["bos_token_id"] = 0,
            ["dropout"] = 0.0,
            ["eos_token_id"] = 2,
            ["hidden_act"] = c.QuickGelu ? "quick_gelu" : "gelu",
            ["hidden_size"] = c.Hidden,
            ["initializer_factor"] = 1.0,
            ["initializer_range"] = 0.02,
            ["intermediate_size"] = c.Intermediate,
            ["layer_norm_eps"] = 1e-05,
            ["max_position_embeddings"] = ClipTextExport.MaxPositions,
            ["model_type"] = "clip_text_model",
            ["num_attention_heads"] = c.Heads,
            ["num_hidden_layers"] = c.Layers,
            ["pad_token_id"] = 1,
            ["projection_dim"] = c.Projection ?? 768,
            ["torch_dtype"] = dtype,
            ["transformers_version"] = "4.57.1",
            ["vocab_size"] = ClipTextExport.VocabSize,
        };
    }

    private static JsonObject UnetConfig(SdxlArchitecture a, string dtype)
    {
        var down = new JsonArray();
        var up = new JsonArray();
        int levels = a.UnetBlockChannels.Length;
        for (int level = 0; level < levels; level++)
        {
            down.Add(a.UnetTransformerDepth[level] > 0 ? "CrossAttnDownBlock2D" : "DownBlock2D");
            up.Add(a.UnetTransformerDepth[levels - 1 - level] > 0 ? "CrossAttnUpBlock2D" : "UpBlock2D");
        }

        return new JsonObject
        {
            ["_class_name"] = "UNet2DConditionModel",
            ["_diffusers_version"] = SyntheticSdxlModel.DiffusersVersion,
            ["act_fn"] = "silu",
            ["addition_embed_type"] = "text_time",
            ["addition_embed_type_num_heads"] = 64,
            ["addition_time_embed_dim"] = a.AdditionTimeEmbedDim,
            ["attention_head_dim"] = Ints(a.UnetBlockChannels.Select(c => c / a.UnetHeadDim)),
            ["block_out_channels"] = Ints(a.UnetBlockChannels),
            ["center_input_sample"] = false,
            ["cross_attention_dim"] = a.CrossAttentionDim,
            ["down_block_types"] = down,
            ["downsample_padding"] = 1,
            ["flip_sin_to_cos"] = true,
            ["freq_shift"] = 0,
            ["in_channels"] = 4,
            ["layers_per_block"] = a.UnetLayersPerBlock,
            ["mid_block_type"] = "UNetMidBlock2DCrossAttn",
            ["norm_eps"] = 1e-05,
            ["norm_num_groups"] = a.NormGroups,
            ["out_channels"] = 4,
            ["projection_class_embeddings_input_dim"] = a.PooledDim + (a.AdditionTimeEmbedDim * a.TimeIdsWidth),
            ["sample_size"] = a.SampleSize,
            ["time_cond_proj_dim"] = null,
            ["torch_dtype"] = dtype,
            ["transformer_layers_per_block"] = Ints(a.UnetTransformerDepth.Select(d => Math.Max(d, 1))),
            ["up_block_types"] = up,
            ["upcast_attention"] = a.IsRefiner ? null : false,
            ["use_linear_projection"] = true,
        };
    }

    private static JsonObject VaeConfig(SdxlArchitecture a, string dtype) => new()
    {
        ["_class_name"] = "AutoencoderKL",
        ["_diffusers_version"] = SyntheticSdxlModel.DiffusersVersion,
        ["act_fn"] = "silu",
        ["block_out_channels"] = Ints(a.VaeBlockChannels),
        ["down_block_types"] = new JsonArray(a.VaeBlockChannels.Select(_ => (JsonNode?)"DownEncoderBlock2D").ToArray()),
        ["force_upcast"] = true,
        ["in_channels"] = 3,
        ["latent_channels"] = 4,
        ["layers_per_block"] = a.VaeLayersPerBlock,
        ["norm_num_groups"] = a.NormGroups,
        ["out_channels"] = 3,
        ["sample_size"] = a.SampleSize * 8,
        ["scaling_factor"] = 0.13025,
        ["torch_dtype"] = dtype,
        ["up_block_types"] = new JsonArray(a.VaeBlockChannels.Select(_ => (JsonNode?)"UpDecoderBlock2D").ToArray()),
    };
}
