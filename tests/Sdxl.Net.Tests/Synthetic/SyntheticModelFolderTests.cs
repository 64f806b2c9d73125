using System.Text.Json.Nodes;
using Onnx;
using Sdxl.Net.Synthetic;
using Xunit;

namespace Sdxl.Net.Tests.Synthetic;

public sealed class SyntheticModelFolderTests
{
    [Fact]
    public void Base_folder_has_the_optimum_layout_and_describes_its_models()
    {
        using var folder = new TempDirectory();
        SyntheticSdxlModel.Write(folder.Path);

        var index = ReadJson(folder.Path, "model_index.json");
        Assert.Equal("StableDiffusionXLPipeline", (string?)index["_class_name"]);
        Assert.True((bool)index["force_zeros_for_empty_prompt"]!);
        Assert.Null(index["requires_aesthetics_score"]);
        Assert.Equal("CLIPTextModel", (string?)index["text_encoder"]![1]);
        Assert.Equal("CLIPTokenizer", (string?)index["tokenizer"]![1]);

        var scheduler = ReadJson(folder.Path, "scheduler", "scheduler_config.json");
        Assert.Equal("EulerDiscreteScheduler", (string?)scheduler["_class_name"]);
        Assert.Equal("leading", (string?)scheduler["timestep_spacing"]);
        Assert.Equal(1, (int)scheduler["steps_offset"]!);
        Assert.Equal(0.00085, (double)scheduler["beta_start"]!);
        Assert.Equal(0.012, (double)scheduler["beta_end"]!);
        Assert.Equal("scaled_linear", (string?)scheduler["beta_schedule"]);

        var unet = ReadJson(folder.Path, "unet", "config.json");
        Assert.Equal([32, 64], unet["block_out_channels"]!.AsArray().Select(v => (int)v!));
        Assert.Equal(4, (int)unet["in_channels"]!);
        Assert.Equal(4, (int)unet["out_channels"]!);
        Assert.Equal(32 + 64, (int)unet["cross_attention_dim"]!);
        Assert.Equal("text_time", (string?)unet["addition_embed_type"]);
        var timeEmbedDim = (int)unet["addition_time_embed_dim"]!;
        Assert.Equal(timeEmbedDim * 6 + 48, (int)unet["projection_class_embeddings_input_dim"]!);
        Assert.Null(unet["time_cond_proj_dim"]);
        Assert.Equal(8, (int)unet["sample_size"]!);

        var textEncoder = ReadJson(folder.Path, "text_encoder", "config.json");
        Assert.Equal("CLIPTextModel", (string?)textEncoder["architectures"]![0]);
        Assert.Equal(32, (int)textEncoder["hidden_size"]!);
        Assert.Equal(3, (int)textEncoder["num_hidden_layers"]!);
        Assert.Equal(49408, (int)textEncoder["vocab_size"]!);
        var textEncoder2 = ReadJson(folder.Path, "text_encoder_2", "config.json");
        Assert.Equal("CLIPTextModelWithProjection", (string?)textEncoder2["architectures"]![0]);
        Assert.Equal(64, (int)textEncoder2["hidden_size"]!);
        Assert.Equal(48, (int)textEncoder2["projection_dim"]!);

        foreach (var vae in new[] { "vae_decoder", "vae_encoder" })
        {
            var config = ReadJson(folder.Path, vae, "config.json");
            Assert.Equal("AutoencoderKL", (string?)config["_class_name"]);
            Assert.Equal(0.13025, (double)config["scaling_factor"]!);
            Assert.True((bool)config["force_upcast"]!);
            Assert.Equal(4, config["block_out_channels"]!.AsArray().Count);
        }

        Assert.False(File.Exists(Path.Combine(folder.Path, "unet", "model.onnx_data")));
    }

    [Fact]
    public void Refiner_folder_has_no_first_text_encoder_and_asks_for_aesthetic_scores()
    {
        using var folder = new TempDirectory();
        SyntheticSdxlModel.Write(folder.Path, new SyntheticModelOptions { Refiner = true });

        var index = ReadJson(folder.Path, "model_index.json");
        Assert.Equal("StableDiffusionXLImg2ImgPipeline", (string?)index["_class_name"]);
        Assert.True((bool)index["requires_aesthetics_score"]!);
        Assert.False((bool)index["force_zeros_for_empty_prompt"]!);
        Assert.Null(index["text_encoder"]![0]);
        Assert.Null(index["tokenizer"]![0]);
        Assert.False(Directory.Exists(Path.Combine(folder.Path, "text_encoder")));
        Assert.False(Directory.Exists(Path.Combine(folder.Path, "tokenizer")));
        Assert.True(File.Exists(Path.Combine(folder.Path, "tokenizer_2", "vocab.json")));

        var unet = ReadJson(folder.Path, "unet", "config.json");
        Assert.Equal(64, (int)unet["cross_attention_dim"]!);
        Assert.Equal((int)unet["addition_time_embed_dim"]! * 5 + 48, (int)unet["projection_class_embeddings_input_dim"]!);
    }

    [Fact]
    public void Inpainting_folder_names_the_inpaint_pipeline_and_a_nine_channel_unet()
    {
        using var folder = new TempDirectory();
        SyntheticSdxlModel.Write(folder.Path, new SyntheticModelOptions { UnetInChannels = 9 });

        Assert.Equal("StableDiffusionXLInpaintPipeline", (string?)ReadJson(folder.Path, "model_index.json")["_class_name"]);
        Assert.Equal(9, (int)ReadJson(folder.Path, "unet", "config.json")["in_channels"]!);
    }

    [Fact]
    public void Tokenizers_have_a_clip_style_vocabulary_and_differ_only_in_padding()
    {
        using var folder = new TempDirectory();
        SyntheticSdxlModel.Write(folder.Path);

        var vocab = ReadJson(folder.Path, "tokenizer", "vocab.json");
        Assert.Equal(SyntheticSdxlModel.MinimumVocabSize, vocab.Count);
        Assert.Equal(Enumerable.Range(0, vocab.Count), vocab.Select(pair => (int)pair.Value!).Order());
        Assert.Equal(0, (int)vocab["!"]!);
        Assert.Equal(256, (int)vocab["!</w>"]!);
        Assert.Equal(vocab.Count - 2, (int)vocab["<|startoftext|>"]!);
        Assert.Equal(vocab.Count - 1, (int)vocab["<|endoftext|>"]!);
        Assert.Equal(188, (int)vocab["\u0100"]!); // byte 0 is the first non-printable byte, after 188 printable ones

        var merges = File.ReadAllLines(Path.Combine(folder.Path, "tokenizer", "merges.txt"));
        Assert.Equal("#version: 0.2", merges[0]);
        Assert.All(merges.Skip(1), merge =>
        {
            var parts = merge.Split(' ');
            Assert.Equal(2, parts.Length);
            Assert.True(vocab.ContainsKey(parts[0]) && vocab.ContainsKey(parts[1]) && vocab.ContainsKey(parts[0] + parts[1]), merge);
        });

        Assert.Equal("<|endoftext|>", (string?)ReadJson(folder.Path, "tokenizer", "tokenizer_config.json")["pad_token"]);
        Assert.Equal("!", (string?)ReadJson(folder.Path, "tokenizer_2", "tokenizer_config.json")["pad_token"]);
        Assert.Equal("!", (string?)ReadJson(folder.Path, "tokenizer_2", "special_tokens_map.json")["pad_token"]);
        Assert.Equal(77, (int)ReadJson(folder.Path, "tokenizer_2", "tokenizer_config.json")["model_max_length"]!);
        Assert.Equal(
            File.ReadAllBytes(Path.Combine(folder.Path, "tokenizer", "vocab.json")),
            File.ReadAllBytes(Path.Combine(folder.Path, "tokenizer_2", "vocab.json")));
    }

    [Fact]
    public void Equal_seeds_write_identical_folders_and_other_seeds_other_weights()
    {
        using var first = new TempDirectory();
        using var second = new TempDirectory();
        using var third = new TempDirectory();
        SyntheticSdxlModel.Write(first.Path, new SyntheticModelOptions { Seed = 7 });
        SyntheticSdxlModel.Write(second.Path, new SyntheticModelOptions { Seed = 7 });
        SyntheticSdxlModel.Write(third.Path, new SyntheticModelOptions { Seed = 8 });

        var files = Directory.GetFiles(first.Path, "*", SearchOption.AllDirectories)
            .Select(path => Path.GetRelativePath(first.Path, path)).Order().ToArray();
        Assert.Equal(files, Directory.GetFiles(second.Path, "*", SearchOption.AllDirectories)
            .Select(path => Path.GetRelativePath(second.Path, path)).Order());
        foreach (var file in files)
        {
            Assert.True(File.ReadAllBytes(Path.Combine(first.Path, file)).SequenceEqual(File.ReadAllBytes(Path.Combine(second.Path, file))), file);
        }

        foreach (var model in new[] { "text_encoder", "text_encoder_2", "unet", "vae_decoder", "vae_encoder" })
        {
            var path = Path.Combine(model, "model.onnx");
            Assert.False(File.ReadAllBytes(Path.Combine(first.Path, path)).SequenceEqual(File.ReadAllBytes(Path.Combine(third.Path, path))), path);
        }
    }

    [Fact]
    public void Default_folder_is_tiny()
    {
        using var folder = new TempDirectory();
        SyntheticSdxlModel.Write(folder.Path);

        var bytes = Directory.GetFiles(folder.Path, "*", SearchOption.AllDirectories).Sum(path => new FileInfo(path).Length);
        Assert.InRange(bytes, 100_000, 3_000_000);
    }

    [Fact]
    public void External_data_unet_keeps_its_weights_in_model_onnx_data()
    {
        using var folder = new TempDirectory();
        SyntheticSdxlModel.Write(folder.Path, new SyntheticModelOptions { UnetExternalData = true });
        using var inline = new TempDirectory();
        SyntheticSdxlModel.Write(inline.Path);

        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(folder.Path, "unet", "model.onnx")));
        var external = model.Graph.Initializer.Where(t => t.DataLocation == TensorProto.Types.DataLocation.External).ToList();
        Assert.NotEmpty(external);
        var dataLength = new FileInfo(Path.Combine(folder.Path, "unet", "model.onnx_data")).Length;
        long weightBytes = 0;
        foreach (var tensor in external)
        {
            Assert.True(tensor.RawData.IsEmpty, tensor.Name);
            var entries = tensor.ExternalData.ToDictionary(e => e.Key, e => e.Value);
            Assert.Equal("model.onnx_data", entries["location"]);
            var offset = long.Parse(entries["offset"], System.Globalization.CultureInfo.InvariantCulture);
            var length = long.Parse(entries["length"], System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(4 * tensor.Dims.Aggregate(1L, (a, b) => a * b), length);
            Assert.True(offset % 4096 == 0 && offset + length <= dataLength, tensor.Name);
            weightBytes += length;
        }

        // Only small tensors (under 1 KiB) stay inline, as onnx's own external-data writer does.
        Assert.All(model.Graph.Initializer.Where(t => t.DataLocation != TensorProto.Types.DataLocation.External),
            t => Assert.True(t.RawData.Length < 1024, t.Name));
        var inlineUnet = new FileInfo(Path.Combine(inline.Path, "unet", "model.onnx")).Length;
        Assert.True(new FileInfo(Path.Combine(folder.Path, "unet", "model.onnx")).Length < inlineUnet - weightBytes / 2);
    }

    [Fact]
    public void Small_preset_has_a_unet_of_about_fifty_million_parameters()
    {
        var small = SyntheticSdxlModel.CountUnetParameters(SyntheticModelOptions.Small);
        Assert.InRange(small, 40_000_000, 60_000_000);
        Assert.InRange(SyntheticSdxlModel.CountUnetParameters(new SyntheticModelOptions()), 100_000, 1_000_000);
    }

    [Theory]
    [InlineData(nameof(SyntheticModelOptions.TextLayers))]
    [InlineData(nameof(SyntheticModelOptions.UnetChannels))]
    [InlineData(nameof(SyntheticModelOptions.UnetDownLevels))]
    [InlineData(nameof(SyntheticModelOptions.SampleSize))]
    [InlineData(nameof(SyntheticModelOptions.VocabSize))]
    [InlineData(nameof(SyntheticModelOptions.UnetInChannels))]
    [InlineData(nameof(SyntheticModelOptions.Timestep))]
    public void Invalid_options_are_rejected_before_anything_is_written(string option)
    {
        var options = option switch
        {
            nameof(SyntheticModelOptions.TextLayers) => new SyntheticModelOptions { TextLayers = 0 },
            nameof(SyntheticModelOptions.UnetChannels) => new SyntheticModelOptions { UnetChannels = 36 },
            nameof(SyntheticModelOptions.UnetDownLevels) => new SyntheticModelOptions { UnetDownLevels = 0 },
            nameof(SyntheticModelOptions.SampleSize) => new SyntheticModelOptions { UnetDownLevels = 3, SampleSize = 6 },
            nameof(SyntheticModelOptions.VocabSize) => new SyntheticModelOptions { VocabSize = 500 },
            nameof(SyntheticModelOptions.UnetInChannels) => new SyntheticModelOptions { UnetInChannels = 0 },
            _ => new SyntheticModelOptions { Timestep = (TimestepInput)42 },
        };
        using var folder = new TempDirectory();
        var target = Path.Combine(folder.Path, "model");

        var error = Assert.Throws<ArgumentOutOfRangeException>(() => SyntheticSdxlModel.Write(target, options));
        Assert.Equal(option, error.ParamName);
        Assert.False(Directory.Exists(target));
    }

    private static JsonObject ReadJson(params string[] path) =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(path)))!.AsObject();
}
