using Sdxl.Net.Hub;

namespace Sdxl.Net.Tests.Hub;

public sealed class OnnxLayoutTests
{
    /// <summary>
    /// The stabilityai/stable-diffusion-xl-base-1.0 tree as the Hub lists it (unet/, vae_decoder/ and vae_encoder/ as
    /// read on the Hub's file pages; the other folders in the same pattern), ONNX files beside PyTorch and OpenVINO ones.
    /// </summary>
    private static readonly string[] StabilityBaseTree =
    [
        ".gitattributes", "01.png", "LICENSE.md", "README.md", "model_index.json", "sd_xl_base_1.0.safetensors",
        "sd_xl_base_1.0_0.9vae.safetensors", "sd_xl_offset_example-lora_1.0.safetensors",
        "scheduler/scheduler_config.json",
        "text_encoder/config.json", "text_encoder/model.fp16.safetensors", "text_encoder/model.onnx", "text_encoder/model.safetensors",
        "text_encoder/openvino_model.bin", "text_encoder/openvino_model.xml",
        "text_encoder_2/config.json", "text_encoder_2/model.fp16.safetensors", "text_encoder_2/model.onnx", "text_encoder_2/model.onnx_data",
        "text_encoder_2/model.safetensors",
        "tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json", "tokenizer/vocab.json",
        "tokenizer_2/merges.txt", "tokenizer_2/special_tokens_map.json", "tokenizer_2/tokenizer_config.json", "tokenizer_2/vocab.json",
        "unet/config.json", "unet/diffusion_pytorch_model.fp16.safetensors", "unet/diffusion_pytorch_model.safetensors",
        "unet/model.onnx", "unet/model.onnx_data", "unet/openvino_model.bin", "unet/openvino_model.xml",
        "vae/config.json", "vae/diffusion_pytorch_model.fp16.safetensors", "vae/diffusion_pytorch_model.safetensors",
        "vae_1_0/config.json", "vae_1_0/diffusion_pytorch_model.safetensors",
        "vae_decoder/config.json", "vae_decoder/model.onnx", "vae_decoder/openvino_model.bin", "vae_decoder/openvino_model.xml",
        "vae_encoder/config.json", "vae_encoder/model.onnx",
    ];

    [Fact]
    public void The_stability_base_repository_yields_its_onnx_files_and_configs_only()
    {
        var layout = Assert.Single(OnnxLayouts.Detect(StabilityBaseTree));

        Assert.Equal("", layout.Root);
        string[] expected =
        [
            "model_index.json", "scheduler/scheduler_config.json",
            "text_encoder/config.json", "text_encoder/model.onnx",
            "text_encoder_2/config.json", "text_encoder_2/model.onnx", "text_encoder_2/model.onnx_data",
            "tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json", "tokenizer/vocab.json",
            "tokenizer_2/merges.txt", "tokenizer_2/special_tokens_map.json", "tokenizer_2/tokenizer_config.json", "tokenizer_2/vocab.json",
            "unet/config.json", "unet/model.onnx", "unet/model.onnx_data",
            "vae/config.json", "vae_1_0/config.json",
            "vae_decoder/config.json", "vae_decoder/model.onnx",
            "vae_encoder/config.json", "vae_encoder/model.onnx",
        ];
        Assert.Equal(expected.Order(StringComparer.Ordinal), layout.Files);
    }

    [Fact]
    public void Olive_and_per_tensor_external_data_are_kept_and_variant_files_are_not()
    {
        var layout = Assert.Single(OnnxLayouts.Detect(
        [
            "model_index.json", "unet/model.onnx", "unet/weights.pb", "text_encoder_2/model.onnx", "text_encoder_2/model.onnx.data",
            "vae_decoder/model.onnx", "vae_decoder/onnx__Conv_1234", "unet/model.fp16.onnx", "unet/model.fp16.onnx_data",
            "safety_checker/model.onnx", "feature_extractor/preprocessor_config.json", "unet/diffusion_pytorch_model.safetensors.index.json",
        ]));

        Assert.Equal(
            ["model_index.json", "text_encoder_2/model.onnx", "text_encoder_2/model.onnx.data", "unet/model.onnx", "unet/weights.pb", "vae_decoder/model.onnx", "vae_decoder/onnx__Conv_1234"],
            layout.Files);
    }

    [Fact]
    public void Layouts_need_model_index_beside_the_unet_and_variants_pick_among_them()
    {
        string[] tree =
        [
            "model_index.json", "unet/diffusion_pytorch_model.safetensors",
            "onnx/model_index.json", "onnx/unet/model.onnx",
            "onnx-fp16/model_index.json", "onnx-fp16/unet/model.onnx",
            "stray/unet/model.onnx",
        ];
        var layouts = OnnxLayouts.Detect(tree);

        Assert.Equal(["onnx", "onnx-fp16"], layouts.Select(l => l.Root));
        Assert.Equal("onnx", OnnxLayouts.Choose(layouts, null)!.Root);
        Assert.Equal("onnx-fp16", OnnxLayouts.Choose(layouts, "fp16")!.Root);
        Assert.Equal("onnx-fp16", OnnxLayouts.Choose(layouts, "onnx-fp16")!.Root);
        Assert.Null(OnnxLayouts.Choose(layouts, "int8"));
        Assert.Empty(OnnxLayouts.Detect(["model_index.json", "unet/diffusion_pytorch_model.safetensors"]));
    }

    [Theory]
    [InlineData("\"abc123\"", "abc123")]
    [InlineData("W/\"abc123\"", "abc123")]
    [InlineData("abc123", "abc123")]
    [InlineData("", null)]
    public void ETags_are_normalised_as_huggingface_hub_does(string header, string? expected) =>
        Assert.Equal(expected, HubHttp.NormalizeEtag(header));

    [Theory]
    [InlineData("stabilityai/stable-diffusion-xl-base-1.0", true)]
    [InlineData("org/name.v2_x", true)]
    [InlineData("sdxl-base-onnx", false)]
    [InlineData("/models/sdxl", false)]
    [InlineData("models/sdxl/base", false)]
    [InlineData("org--x/name", false)]
    [InlineData("org/../name", false)]
    public void Repository_ids_are_owner_slash_name(string value, bool valid) => Assert.Equal(valid, HubRepoId.IsValid(value));
}
