using Sdxl.Cli;
using Sdxl.Net.Imaging;
using Sdxl.Net.Synthetic;
using Sdxl.Net.Tests.Synthetic;
using SixLabors.ImageSharp;

namespace Sdxl.Net.Tests.FewStep;

/// <summary>The few-step and preview flags of <c>sdxl generate</c>.</summary>
public sealed class FewStepCliTests
{
    private static async Task<(int Exit, string Out, string Err)> Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int exit = await CliApp.RunAsync(args, stdout, stderr);
        return (exit, stdout.ToString(), stderr.ToString());
    }

    private static string[] Generate(string model, string output, params string[] extra) =>
        ["generate", "--model", model, "--prompt", "a red kite", "--width", "64", "--height", "64", "--seed", "9", "--device", "cpu", "--output", output, .. extra];

    [Fact]
    public async Task Preview_every_n_writes_one_png_per_due_step()
    {
        using var dir = new TempDirectory();
        var previews = Path.Combine(dir.Path, "previews");
        var (exit, _, err) = await Run(Generate(SyntheticModels.Get(), Path.Combine(dir.Path, "out.png"),
            "--steps", "5", "--guidance", "5", "--preview-every", "2", "--preview-dir", previews));
        Assert.True(exit == 0, err);
        Assert.Equal(["step_002.png", "step_004.png"], Directory.GetFiles(previews).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        var info = Image.Identify(Path.Combine(previews, "step_004.png"));
        Assert.Equal((8, 8), (info.Width, info.Height));
    }

    [Fact]
    public async Task Taesd_previews_from_the_cli_are_full_size()
    {
        using var dir = new TempDirectory();
        var taesd = Path.Combine(dir.Path, "taesd");
        SyntheticSdxlModel.WriteTaesdDecoder(taesd);
        var previews = Path.Combine(dir.Path, "previews");
        var (exit, _, err) = await Run(Generate(SyntheticModels.Get(), Path.Combine(dir.Path, "out.png"),
            "--preset", "turbo", "--preview-every", "1", "--preview-dir", previews, "--taesd", taesd));
        Assert.True(exit == 0, err);
        var info = Image.Identify(Path.Combine(previews, "step_001.png"));
        Assert.Equal((64, 64), (info.Width, info.Height));
    }

    [Fact]
    public async Task Preset_eta_and_custom_timesteps_are_recorded_and_reproduced_from_the_recipe()
    {
        using var dir = new TempDirectory();
        var first = Path.Combine(dir.Path, "tcd.png");
        var (exit, output, err) = await Run(Generate(SyntheticModels.Get(), first, "--scheduler", "tcd", "--eta", "0.3", "--timesteps", "999,759,499,259", "--guidance", "5"));
        Assert.True(exit == 0, err);
        Assert.Contains("tcd", output);
        var recipe = ImageRecipe.ReadRecipe(first)!.Request;
        Assert.Equal(0.3f, recipe.Eta);
        Assert.Equal([999.0, 759, 499, 259], recipe.Timesteps!);

        var again = Path.Combine(dir.Path, "again.png");
        (exit, _, err) = await Run("generate", "--model", SyntheticModels.Get(), "--from-image", first, "--device", "cpu", "--output", again);
        Assert.True(exit == 0, err);
        Assert.Equal(await File.ReadAllBytesAsync(first), await File.ReadAllBytesAsync(again));

        var lcm = Path.Combine(dir.Path, "lcm.png");
        (exit, output, err) = await Run(Generate(SyntheticModels.Get(new SyntheticModelOptions { TimeCondProjDim = 16 }), lcm, "--preset", "lcm"));
        Assert.True(exit == 0, err);
        var lcmRecipe = ImageRecipe.ReadRecipe(lcm)!.Request;
        Assert.Equal(("lcm", "lcm", 4, 8f), (lcmRecipe.Preset, lcmRecipe.Scheduler, lcmRecipe.Steps, lcmRecipe.GuidanceScale));
    }

    [Theory]
    [InlineData("--preview-dir", "x")]
    [InlineData("--preset", "fast")]
    [InlineData("--timesteps", "999,abc")]
    [InlineData("--sigmas", "1.0")]
    public async Task Bad_few_step_flags_are_usage_errors(string flag, string value)
    {
        using var dir = new TempDirectory();
        var (exit, _, err) = await Run(Generate(SyntheticModels.Get(), Path.Combine(dir.Path, "out.png"), "--steps", "2", "--guidance", "5", flag, value));
        Assert.Equal(2, exit);
        Assert.StartsWith("sdxl: error:", err);
    }

    [Theory]
    [InlineData("--timesteps", "500,700", "strictly descending")]
    [InlineData("--timesteps", "1000,500", "from 0 to")]
    [InlineData("--sigmas", "14,20,0", "strictly descending")]
    public async Task Custom_schedules_that_are_not_descending_are_usage_errors(string flag, string value, string reason)
    {
        using var dir = new TempDirectory();
        var output = Path.Combine(dir.Path, "out.png");
        var (exit, _, err) = await Run(Generate(SyntheticModels.Get(), output, "--guidance", "5", flag, value));
        Assert.Equal(2, exit);
        Assert.Contains(reason, err);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public async Task A_preview_folder_that_cannot_be_written_is_a_usage_error_before_generating()
    {
        using var dir = new TempDirectory();
        var blocker = Path.Combine(dir.Path, "a-file");
        await File.WriteAllTextAsync(blocker, "not a folder");
        var output = Path.Combine(dir.Path, "out.png");
        var (exit, _, err) = await Run(Generate(SyntheticModels.Get(), output, "--steps", "2", "--guidance", "5",
            "--preview-every", "1", "--preview-dir", Path.Combine(blocker, "previews")));
        Assert.Equal(2, exit);
        Assert.StartsWith("sdxl: error: --preview-dir: cannot write previews to", err);
        Assert.DoesNotContain("Denoising", err);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public async Task A_scheduler_without_custom_timesteps_is_a_usage_error()
    {
        using var dir = new TempDirectory();
        var (exit, _, err) = await Run(Generate(SyntheticModels.Get(), Path.Combine(dir.Path, "out.png"), "--scheduler", "heun", "--guidance", "5", "--timesteps", "999,499"));
        Assert.Equal(2, exit);
        Assert.Contains("euler, lcm and tcd", err);
    }
}
