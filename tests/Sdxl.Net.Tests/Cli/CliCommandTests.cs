using System.Text.Json;
using Sdxl.Cli;

namespace Sdxl.Net.Tests.Cli;

public sealed class CliCommandTests
{
    private static async Task<(int Exit, string Out, string Err)> Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int exit = await CliApp.RunAsync(args, stdout, stderr);
        return (exit, stdout.ToString(), stderr.ToString());
    }

    [TinySdxlFact]
    public async Task Schedule_json_matches_the_reference_case_schedule()
    {
        var root = TestPaths.TinySdxl!;
        using var reference = JsonDocument.Parse(File.ReadAllText(Path.Combine(root, "cases", "01_euler", "params.json")));
        var (exit, output, err) = await Run("schedule", "--model", Path.Combine(root, "tiny-sdxl-base"), "--scheduler", "euler", "--steps", "8", "--json");
        Assert.True(exit == 0, err);
        using var doc = JsonDocument.Parse(output);
        var expected = reference.RootElement.GetProperty("timesteps").EnumerateArray().Select(t => t.GetDouble()).ToArray();
        var actual = doc.RootElement.GetProperty("timesteps").EnumerateArray().Select(t => t.GetDouble()).ToArray();
        Assert.Equal(expected, actual);
        Assert.Equal(reference.RootElement.GetProperty("init_noise_sigma").GetDouble(), doc.RootElement.GetProperty("init_noise_sigma").GetDouble(), 5);
        Assert.Equal(1, doc.RootElement.GetProperty("order").GetInt32());
        Assert.Equal(9, doc.RootElement.GetProperty("sigmas").GetArrayLength());
    }

    [TinySdxlFact]
    public async Task Schedule_with_strength_shows_the_img2img_window()
    {
        var model = Path.Combine(TestPaths.TinySdxl!, "tiny-sdxl-base");
        var (exit, output, err) = await Run("schedule", "--model", model, "--steps", "30", "--strength", "0.3", "--json");
        Assert.True(exit == 0, err);
        using var doc = JsonDocument.Parse(output);
        var timesteps = doc.RootElement.GetProperty("timesteps");

        // diffusers: init_timestep = int(30 * 0.3) = 9 steps, from t = 265 (img2img.json).
        Assert.Equal(9, timesteps.GetArrayLength());
        Assert.Equal(265, timesteps[0].GetDouble(), 3);
    }

    [Fact]
    public async Task Schedule_ddim_has_unit_init_noise_sigma_and_no_sigmas()
    {
        var (exit, output, err) = await Run("schedule", "--model", SyntheticModels.Get(), "--scheduler", "ddim", "--steps", "10", "--json");
        Assert.True(exit == 0, err);
        using var doc = JsonDocument.Parse(output);
        Assert.Equal(1.0, doc.RootElement.GetProperty("init_noise_sigma").GetDouble());
        Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("sigmas").ValueKind);
        Assert.Equal(10, doc.RootElement.GetProperty("timesteps").GetArrayLength());
    }

    [TinySdxlFact]
    public async Task Tokenize_json_matches_the_reference_case_token_ids()
    {
        var root = TestPaths.TinySdxl!;
        using var reference = JsonDocument.Parse(File.ReadAllText(Path.Combine(root, "cases", "01_euler", "params.json")));
        var prompt = reference.RootElement.GetProperty("prompt").GetString()!;
        var (exit, output, err) = await Run("tokenize", "--model", Path.Combine(root, "tiny-sdxl-base"), "--prompt", prompt, "--json");
        Assert.True(exit == 0, err);
        using var doc = JsonDocument.Parse(output);
        var ids = reference.RootElement.GetProperty("token_ids");
        foreach (var (name, key) in new[] { ("tokenizer", "text_encoder.prompt"), ("tokenizer_2", "text_encoder_2.prompt") })
        {
            var expected = ids.GetProperty(key);
            Assert.Equal(expected.EnumerateArray().Select(e => e.GetInt32()), doc.RootElement.GetProperty(name).GetProperty("input_ids").EnumerateArray().Select(e => e.GetInt32()));

            Assert.Equal(77, doc.RootElement.GetProperty(name).GetProperty("input_ids").GetArrayLength());
            Assert.False(doc.RootElement.GetProperty(name).GetProperty("truncated").GetBoolean());
            Assert.Equal(10, doc.RootElement.GetProperty(name).GetProperty("token_count").GetInt32());
        }
    }

    [Fact]
    public async Task Info_describes_the_variant_and_signatures()
    {
        var (exit, output, err) = await Run("info", SyntheticModels.Get());
        Assert.True(exit == 0, err);
        Assert.Contains("variant:      base; UNet I/O float32; float32 scalar timestep", output);
        Assert.Contains("multiples of 16 px", output);
        Assert.Contains("text_encoder_2:", output);
        Assert.Contains("out_sample", output);
    }

    [Fact]
    public async Task Demo_writes_a_png_and_says_it_is_noise()
    {
        var dir = Directory.CreateTempSubdirectory("sdxl-demo-test-").FullName;
        try
        {
            var output = Path.Combine(dir, "demo.png");
            var (exit, text, err) = await Run("demo", "--output", output, "--steps", "2");
            Assert.True(exit == 0, err);
            Assert.True(File.Exists(output));
            Assert.Contains("noise", text);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Buckets_finds_the_nearest_bucket()
    {
        var (exit, output, _) = await Run("buckets", "--width", "1920", "--height", "1080");
        Assert.Equal(0, exit);
        Assert.StartsWith("1344x768", output);
    }

    [Fact]
    public async Task No_arguments_prints_usage_and_exits_2()
    {
        var (exit, output, _) = await Run();
        Assert.Equal(2, exit);
        Assert.Contains("generate", output);
    }
}

public sealed class CliSeedsTests
{
    [Fact]
    public async Task Seeds_give_each_image_its_own_generator()
    {
        var model = SyntheticModels.Get();
        var dir = Directory.CreateTempSubdirectory("sdxl-cli-seeds-").FullName;
        try
        {
            string[] common = ["generate", "--model", model, "--prompt", "a tree", "--width", "64", "--height", "64", "--steps", "2", "--guidance", "5"];
            var err = new StringWriter();
            Assert.Equal(0, await CliApp.RunAsync([.. common, "--batch", "2", "--seeds", "3,4", "--output", Path.Combine(dir, "b.npy")], new StringWriter(), err));
            Assert.Equal(0, await CliApp.RunAsync([.. common, "--seed", "4", "--output", Path.Combine(dir, "s.npy")], new StringWriter(), err));
            var batch = Sdxl.Net.Imaging.NpyFile.Read(Path.Combine(dir, "b.npy")).Data;
            var single = Sdxl.Net.Imaging.NpyFile.Read(Path.Combine(dir, "s.npy")).Data;
            Assert.Equal(single, batch.AsSpan(single.Length).ToArray());
            Assert.Equal(2, await CliApp.RunAsync([.. common, "--batch", "2", "--seeds", "3", "--output", Path.Combine(dir, "x.npy")], new StringWriter(), err));
            Assert.Equal(2, await CliApp.RunAsync([.. common, "--seed", "1", "--seeds", "3", "--output", Path.Combine(dir, "x.npy")], new StringWriter(), err));
            Assert.False(File.Exists(Path.Combine(dir, "x.npy")));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
