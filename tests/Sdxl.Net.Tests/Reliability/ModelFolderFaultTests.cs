using Sdxl.Net.Synthetic;

namespace Sdxl.Net.Tests.Reliability;

/// <summary>A broken model folder fails in Build with an SdxlModelException that names the component and the file.</summary>
public sealed class ModelFolderFaultTests
{
    private static SdxlModelException BuildFails(string model)
    {
        var e = Assert.Throws<SdxlModelException>(() => Faults.Pipeline(model).Dispose());
        Assert.DoesNotContain('\n', e.Message);
        return e;
    }

    [Theory]
    [InlineData("unet/model.onnx", "unet: model file not found")]
    [InlineData("vae_decoder/model.onnx", "vae_decoder: model file not found")]
    [InlineData("text_encoder/model.onnx", "text_encoder: model file not found")]
    [InlineData("text_encoder_2/model.onnx", "text_encoder_2: model file not found")]
    [InlineData("tokenizer/vocab.json", "tokenizer: cannot read the tokenizer")]
    [InlineData("tokenizer_2/merges.txt", "tokenizer_2: cannot read the tokenizer")]
    [InlineData("model_index.json", "model_index.json: required file not found")]
    public void Missing_file_is_named(string file, string message)
    {
        using var model = Faults.CopyModel();
        File.Delete(model[file]);
        var e = BuildFails(model.Path);
        Assert.Contains(message, e.Message);
        Assert.Contains(Path.GetFileName(file), e.Message);
    }

    [Fact]
    public void Missing_text_encoder_folder_of_a_base_model_is_a_missing_file_not_a_width_mismatch()
    {
        using var model = Faults.CopyModel();
        Directory.Delete(model["text_encoder"], recursive: true);
        var e = BuildFails(model.Path);
        Assert.Contains("text_encoder: model file not found", e.Message);
    }

    [Theory]
    [InlineData("unet/model.onnx")]
    [InlineData("text_encoder_2/model.onnx")]
    [InlineData("vae_decoder/model.onnx")]
    public void Truncated_onnx_file_is_named(string file)
    {
        using var model = Faults.CopyModel();
        var bytes = File.ReadAllBytes(model[file]);
        File.WriteAllBytes(model[file], bytes.AsSpan(0, bytes.Length / 2).ToArray());
        var e = BuildFails(model.Path);
        Assert.Contains("ONNX Runtime cannot load", e.Message);
        Assert.Contains(file.Replace('/', Path.DirectorySeparatorChar), e.Message);
    }

    [Fact]
    public void Garbage_onnx_file_is_named()
    {
        using var model = Faults.CopyModel();
        var garbage = new byte[4096];
        new Random(7).NextBytes(garbage);
        File.WriteAllBytes(model["unet/model.onnx"], garbage);
        var e = BuildFails(model.Path);
        Assert.Contains("unet: ONNX Runtime cannot load", e.Message);
    }

    [Fact]
    public void Vae_decoder_placed_in_unet_is_a_signature_error()
    {
        using var model = Faults.CopyModel();
        File.Copy(model["vae_decoder/model.onnx"], model["unet/model.onnx"], overwrite: true);
        var e = BuildFails(model.Path);
        Assert.Contains("unet: the model has no input 'sample'", e.Message);
        Assert.Contains("latent_sample", e.Message); // the signature found
        Assert.Contains(Path.Combine("unet", "model.onnx"), e.Message);
    }

    [Fact]
    public void Text_encoder_2_without_projection_is_a_signature_error()
    {
        using var model = Faults.CopyModel();
        File.Copy(model["text_encoder/model.onnx"], model["text_encoder_2/model.onnx"], overwrite: true);
        var e = BuildFails(model.Path);
        Assert.Contains("text_encoder_2: the model has no output 'text_embeds'", e.Message);
    }

    [Fact]
    public void Refiner_unet_in_a_base_folder_does_not_fit()
    {
        using var model = Faults.CopyModel();
        File.Copy(Path.Combine(SyntheticModels.Get(new SyntheticModelOptions { Refiner = true }), "unet", "model.onnx"), model["unet/model.onnx"], overwrite: true);
        var e = BuildFails(model.Path);
        Assert.Contains("do not fit together", e.Message);
        Assert.Contains("text_encoder (32) + text_encoder_2 (64) = 96", e.Message);
        Assert.Contains("width 64", e.Message);
    }

    [Fact]
    public void Base_unet_in_a_refiner_folder_does_not_fit()
    {
        using var model = Faults.CopyModel(new SyntheticModelOptions { Refiner = true });
        File.Copy(Path.Combine(SyntheticModels.Get(), "unet", "model.onnx"), model["unet/model.onnx"], overwrite: true);
        var e = Assert.Throws<SdxlModelException>(() => Sdxl.Net.Models.SdxlModelFolder.Open(model.Path, Sdxl.Net.Runtime.ExecutionProviderOptions.Cpu).Dispose());
        Assert.Contains("text_encoder_2 (64) must equal the UNet's encoder_hidden_states width 96", e.Message);
    }

    [Fact]
    public void Pooled_width_that_differs_from_text_embeds_does_not_fit()
    {
        using var model = Faults.CopyModel();
        var other = SyntheticModels.Get(new SyntheticModelOptions { ProjectionDim = 40 });
        File.Copy(Path.Combine(other, "text_encoder_2", "model.onnx"), model["text_encoder_2/model.onnx"], overwrite: true);
        var e = BuildFails(model.Path);
        Assert.Contains("text_embeds width 40 differs from the UNet's text_embeds input width 48", e.Message);
    }

    [Fact]
    public void Unknown_scheduler_class_names_the_config_file()
    {
        using var model = Faults.CopyModel();
        var path = model["scheduler/scheduler_config.json"];
        File.WriteAllText(path, File.ReadAllText(path).Replace("EulerDiscreteScheduler", "FancyScheduler", StringComparison.Ordinal));
        var e = BuildFails(model.Path);
        Assert.Contains("'FancyScheduler' is not supported", e.Message);
        Assert.Contains("scheduler_config.json", e.Message);
    }

    [Theory]
    [InlineData("scheduler/scheduler_config.json", "scheduler:")]
    [InlineData("model_index.json", "model_index.json:")]
    [InlineData("unet/config.json", "unet:")]
    [InlineData("vae_decoder/config.json", "vae_decoder:")]
    public void Invalid_json_config_is_named(string file, string component)
    {
        using var model = Faults.CopyModel();
        File.WriteAllText(model[file], "{ \"_class_name\": \"EulerDiscreteScheduler\", ");
        var e = BuildFails(model.Path);
        Assert.StartsWith(component, e.Message);
        Assert.Contains("not valid JSON", e.Message);
        Assert.Contains(Path.GetFileName(file), e.Message);
    }

    [Fact]
    public void Missing_model_folder_is_named()
    {
        var missing = Path.Combine(Path.GetTempPath(), "no-such-model-" + Guid.NewGuid().ToString("N"));
        var e = BuildFails(missing);
        Assert.Contains("Model folder not found", e.Message);
        Assert.Contains(missing, e.Message);
    }

    [Fact]
    public void Intact_copy_builds()
    {
        // The baseline every fault above differs from by one file.
        using var model = Faults.CopyModel();
        using var pipeline = Faults.Pipeline(model.Path);
        Assert.Equal(16, pipeline.PixelMultiple);
    }
}
