using System.Text;
using Sdxl.Net.Lora;
using Sdxl.Net.Tests.Synthetic;

namespace Sdxl.Net.Tests.Lora;

/// <summary>Reading LoRA files as untrusted input and telling their formats apart by their keys.</summary>
public sealed class LoraFileTests
{
    [Fact]
    public void Hostile_safetensors_files_fail_clearly()
    {
        using var dir = new TempDirectory();
        string Write(string name, byte[] header, byte[] data, ulong? declared = null)
        {
            var path = Path.Combine(dir.Path, name);
            SafetensorsWriter.WriteRaw(path, header, data, declared);
            return path;
        }

        var valid = Encoding.UTF8.GetBytes("""{"a.lora_down.weight":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}}""");
        var huge = Write("huge.safetensors", valid, new byte[8], declared: 1UL << 40);
        Assert.Contains("at most 104857600", Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(huge)).Message, StringComparison.Ordinal);

        var pastFile = Write("short.safetensors", valid, [], declared: (ulong)valid.Length + 100);
        Assert.Contains("only", Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(pastFile)).Message, StringComparison.Ordinal);

        var offsets = Write("offsets.safetensors", Encoding.UTF8.GetBytes("""{"a":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}}"""), new byte[4]);
        Assert.Contains("run past the end of the data (4 bytes)", Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(offsets)).Message, StringComparison.Ordinal);

        var dtype = Write("dtype.safetensors", Encoding.UTF8.GetBytes("""{"a":{"dtype":"I8","shape":[2],"data_offsets":[0,2]}}"""), new byte[2]);
        Assert.Contains("dtype I8; LoRA weights must be F32, F16 or BF16", Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(dtype)).Message, StringComparison.Ordinal);

        var size = Write("size.safetensors", Encoding.UTF8.GetBytes("""{"a":{"dtype":"F16","shape":[3],"data_offsets":[0,8]}}"""), new byte[8]);
        Assert.Contains("needs 6 bytes; data_offsets give 8", Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(size)).Message, StringComparison.Ordinal);

        var json = Write("json.safetensors", Encoding.UTF8.GetBytes("{not json"), []);
        Assert.Contains("not valid JSON", Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(json)).Message, StringComparison.Ordinal);

        var tiny = Path.Combine(dir.Path, "tiny.safetensors");
        File.WriteAllBytes(tiny, [1, 2, 3]);
        Assert.Contains("8-byte header size", Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(tiny)).Message, StringComparison.Ordinal);

        // Through the public API, the same faults are argument errors naming the file.
        var e = Assert.Throws<ArgumentException>(() => LoraInspection.Inspect(dtype));
        Assert.Contains("dtype.safetensors", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("lora_unet_down_blocks_1_attentions_0_proj_in.hada_w1_a", "LoHa")]
    [InlineData("lora_unet_down_blocks_1_attentions_0_proj_in.lokr_w1", "LoKr")]
    [InlineData("lora_unet_down_blocks_1_attentions_0_proj_in.lora_mid.weight", "lora_mid")]
    [InlineData("lora_unet_down_blocks_1_attentions_0_proj_in.dora_scale", "DoRA")]
    [InlineData("unet.down_blocks.1.attentions.0.proj_in.lora_magnitude_vector", "DoRA")]
    [InlineData("lora_unet_down_blocks_1_attentions_0_proj_in.oft_blocks", "OFT")]
    public void Unsupported_adapter_kinds_are_refused_by_name(string key, string kind)
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "adapter.safetensors");
        SafetensorsWriter.Write(path, [new TestTensor(key, [2, 2], new float[4])]);
        var e = Assert.Throws<InvalidDataException>(() => LoraFile.Open(path));
        Assert.Contains(kind, e.Message, StringComparison.Ordinal);
        Assert.Contains(key, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Formats_ranks_and_alphas_are_read_from_the_keys()
    {
        using var dir = new TempDirectory();
        var kohya = Path.Combine(dir.Path, "k.bin"); // the name says nothing; the keys do
        SafetensorsWriter.Write(kohya,
        [
            new("lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight", [2, 3, 3, 3], new float[54]),
            new("lora_unet_down_blocks_0_resnets_0_conv1.lora_up.weight", [5, 2, 1, 1], new float[10]),
            new("lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight", [2, 4], new float[8]),
            new("lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight", [4, 2], new float[8]),
            new("lora_te_text_model_encoder_layers_0_mlp_fc1.alpha", [], [0f]),
            new("lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight", [2, 4], new float[8], "F16"),
            new("lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_up.weight", [4, 2], new float[8], "BF16"),
            new("lora_te2_text_model_encoder_layers_0_mlp_fc1.alpha", [], [1f]),
        ]);
        var file = LoraFile.Open(kohya);
        Assert.Equal("kohya (LoCon)", file.Format);
        Assert.Equal(3, file.Modules.Count);
        var conv = Assert.Single(file.Modules, m => m.IsConvolution);
        Assert.Equal(LoraComponent.Unet, conv.Component);
        Assert.Equal(1f, conv.AlphaScale); // no alpha: alpha = rank
        Assert.Equal(1f, file.Modules.Single(m => m.Component == LoraComponent.TextEncoder).AlphaScale); // alpha 0 means rank (sd-scripts)
        Assert.Equal(0.5f, file.Modules.Single(m => m.Component == LoraComponent.TextEncoder2).AlphaScale); // 1 / rank 2

        var peft = Path.Combine(dir.Path, "p.safetensors");
        SafetensorsWriter.Write(peft,
        [
            new("unet.mid_block.attentions.0.proj_in.lora_A.weight", [4, 8], new float[32]),
            new("unet.mid_block.attentions.0.proj_in.lora_B.weight", [8, 4], new float[32]),
            new("text_encoder_2.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight", [4, 8], new float[32]),
            new("text_encoder_2.text_model.encoder.layers.0.self_attn.q_proj.lora_B.weight", [8, 4], new float[32]),
        ], new Dictionary<string, string>
        {
            ["lora_adapter_metadata"] = """{"unet.lora_alpha": 8, "unet.alpha_pattern": {"proj_in": 2}, "text_encoder_2.lora_alpha": 16}""",
        });
        file = LoraFile.Open(peft);
        Assert.Equal("diffusers/PEFT", file.Format);
        Assert.Equal(0.5f, file.Modules.Single(m => m.Component == LoraComponent.Unet).AlphaScale); // alpha_pattern 2 / rank 4
        Assert.Equal(4f, file.Modules.Single(m => m.Component == LoraComponent.TextEncoder2).AlphaScale);
        Assert.Equal("mid_block.attentions.0.proj_in", file.Modules.Single(m => m.Component == LoraComponent.Unet).Name);

        var nothing = Path.Combine(dir.Path, "n.safetensors");
        SafetensorsWriter.Write(nothing, [new TestTensor("model.diffusion_model.x.weight", [2], new float[2])]);
        Assert.Contains("holds no LoRA module", Assert.Throws<InvalidDataException>(() => LoraFile.Open(nothing)).Message, StringComparison.Ordinal);

        var ranks = Path.Combine(dir.Path, "r.safetensors");
        SafetensorsWriter.Write(ranks,
        [
            new("lora_unet_a.lora_down.weight", [4, 8], new float[32]),
            new("lora_unet_a.lora_up.weight", [8, 2], new float[16]),
        ]);
        Assert.Contains("ranks differ", Assert.Throws<InvalidDataException>(() => LoraFile.Open(ranks)).Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// sd-scripts' SDXL names against SDXL base's config (3 levels, layers_per_block 2, attention in levels 1-2):
    /// the expected diffusers names are those of diffusers' LDM→diffusers conversion for that UNet.
    /// </summary>
    [Theory]
    [InlineData("input_blocks_1_0_in_layers_2", "down_blocks_0_resnets_0_conv1")]
    [InlineData("input_blocks_2_0_emb_layers_1", "down_blocks_0_resnets_1_time_emb_proj")]
    [InlineData("input_blocks_3_0_op", "down_blocks_0_downsamplers_0_conv")]
    [InlineData("input_blocks_4_0_skip_connection", "down_blocks_1_resnets_0_conv_shortcut")]
    [InlineData("input_blocks_4_1_transformer_blocks_0_attn1_to_q", "down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q")]
    [InlineData("input_blocks_5_1_proj_in", "down_blocks_1_attentions_1_proj_in")]
    [InlineData("input_blocks_6_0_op", "down_blocks_1_downsamplers_0_conv")]
    [InlineData("input_blocks_8_1_transformer_blocks_9_ff_net_2", "down_blocks_2_attentions_1_transformer_blocks_9_ff_net_2")]
    [InlineData("middle_block_0_out_layers_3", "mid_block_resnets_0_conv2")]
    [InlineData("middle_block_1_transformer_blocks_0_attn2_to_k", "mid_block_attentions_0_transformer_blocks_0_attn2_to_k")]
    [InlineData("middle_block_2_in_layers_2", "mid_block_resnets_1_conv1")]
    [InlineData("output_blocks_0_1_proj_out", "up_blocks_0_attentions_0_proj_out")]
    [InlineData("output_blocks_2_2_conv", "up_blocks_0_upsamplers_0_conv")]
    [InlineData("output_blocks_5_2_conv", "up_blocks_1_upsamplers_0_conv")]
    [InlineData("output_blocks_8_0_skip_connection", "up_blocks_2_resnets_2_conv_shortcut")]
    [InlineData("time_embed_0", "time_embedding_linear_1")]
    [InlineData("label_emb_0_2", "add_embedding_linear_2")]
    [InlineData("out_2", "conv_out")]
    public void Sgm_names_map_onto_diffusers_names_from_the_unet_config(string sgm, string diffusers)
    {
        using var dir = new TempDirectory();
        var config = Path.Combine(dir.Path, "config.json");
        File.WriteAllText(config, """
            {"block_out_channels": [320, 640, 1280], "layers_per_block": 2,
             "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
             "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
             "mid_block_type": "UNetMidBlock2DCrossAttn"}
            """);
        var names = SgmUnetNames.For(SgmUnetNames.LayoutFromConfig(config)!);
        Assert.Equal(diffusers, names.ToDiffusers(sgm));
    }

    [Fact]
    public void Sgm_names_outside_the_unet_map_to_nothing()
    {
        var names = SgmUnetNames.For(new SgmUnetNames.Layout([1, 1], [false, true], [true, false], MidAttention: true));
        Assert.Null(names.ToDiffusers("input_blocks_9_1_proj_in"));
        Assert.Null(names.ToDiffusers("input_blocks_1_0_unknown_layer"));
        Assert.Equal("down_blocks_1_attentions_0_proj_in", names.ToDiffusers("input_blocks_3_1_proj_in"));
        Assert.Equal("up_blocks_0_upsamplers_0_conv", names.ToDiffusers("output_blocks_1_2_conv"));
    }
}
