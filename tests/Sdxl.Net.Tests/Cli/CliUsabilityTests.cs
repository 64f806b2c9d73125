using System.Diagnostics;
using System.Text.RegularExpressions;
using Sdxl.Cli;
using Sdxl.Net.Imaging;
using Sdxl.Net.Tests.Reliability;

namespace Sdxl.Net.Tests.Cli;

/// <summary>--version, per-command help, library defaults, every output format, progress lines and Ctrl+C.</summary>
public sealed partial class CliUsabilityTests
{
    private static async Task<(int Exit, string Out, string Err)> Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int exit = await CliApp.RunAsync(args, stdout, stderr);
        return (exit, stdout.ToString(), stderr.ToString());
    }

    private static string[] Generate(string output, params string[] more) =>
        ["generate", "--model", SyntheticModels.Get(), "--prompt", "x", "--width", "64", "--height", "64", "--seed", "3", "--output", output, .. more];

    [Fact]
    public async Task Version_prints_the_assembly_version()
    {
        var (exit, output, _) = await Run("--version");
        Assert.Equal(0, exit);
        var version = typeof(CliApp).Assembly.GetName().Version!;
        Assert.StartsWith($"sdxl {version.Major}.{version.Minor}.{version.Build}", output);
    }

    [Fact]
    public async Task Command_help_shows_that_command_and_the_options_it_inherits_only()
    {
        var (exit, output, _) = await Run("inpaint", "--help");
        Assert.Equal(0, exit);
        Assert.Contains("--mask FILE", output);
        Assert.Contains("--resize stretch|crop|pad", output);   // img2img's, which inpaint takes
        Assert.Contains("--negative-prompt", output);           // generate's, which img2img takes
        Assert.DoesNotContain("tokenize  --model", output);
        Assert.DoesNotContain("buckets", output);

        (exit, output, _) = await Run("help", "schedule");
        Assert.Equal(0, exit);
        Assert.Contains("--strength S", output);
        Assert.DoesNotContain("--mask", output);
    }

    [Theory]
    // Magic numbers from the formats' specifications: PNG, JPEG (SOI + marker), RIFF/WEBP, NumPy's .npy.
    [InlineData("png", "89504E470D0A1A0A", 0)]
    [InlineData("jpg", "FFD8FF", 0)]
    [InlineData("jpeg", "FFD8FF", 0)]
    [InlineData("webp", "57454250", 8)]
    [InlineData("npy", "934E554D5059", 0)]
    public async Task Every_sink_extension_is_accepted_for_output(string extension, string magicHex, int offset)
    {
        using var folder = new TempFolder();
        var output = folder[$"out.{extension}"];
        var (exit, _, err) = await Run(["generate", "--model", SyntheticModels.Get(), "--prompt", "x", "--width", "64", "--height", "64", "--steps", "1", "-o", output]);
        Assert.True(exit == 0, err);
        var bytes = File.ReadAllBytes(output);
        Assert.Equal(magicHex, Convert.ToHexString(bytes, offset, magicHex.Length / 2));
    }

    [Fact]
    public async Task Steps_and_guidance_default_to_the_librarys_defaults()
    {
        using var folder = new TempFolder();
        var (exit, _, err) = await Run(Generate(folder["a.png"]));
        Assert.True(exit == 0, err);

        // diffusers' StableDiffusionXLPipeline.__call__: num_inference_steps=50, guidance_scale=5.0.
        var recipe = ImageRecipe.ReadRequest(folder["a.png"])!;
        Assert.Equal(50, recipe.Steps);
        Assert.Equal(5f, recipe.GuidanceScale);
    }

    [GeneratedRegex(@"^Denoising (\d+)/(\d+)( · \d+\.\d (it/s|s/it))? · ETA \d+:\d\d$")]
    private static partial Regex ProgressLine();

    [Fact]
    public async Task Progress_is_plain_lines_with_steps_rate_and_eta_counting_heun_steps_not_evaluations()
    {
        using var folder = new TempFolder();
        // Heun visits 2N − 1 = 5 timesteps for 3 steps; the display must count the user's 3.
        var (exit, _, err) = await Run(Generate(folder["a.png"], "--steps", "3", "--scheduler", "heun"));
        Assert.True(exit == 0, err);
        Assert.DoesNotContain('\r', err);
        var steps = err.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith("Denoising", StringComparison.Ordinal)).ToList();
        Assert.Equal(["1/3", "2/3", "3/3"], steps.Select(l => ProgressLine().Match(l)).Select(m => Assert.IsType<Match>(m) is { Success: true } ok
            ? $"{ok.Groups[1].Value}/{ok.Groups[2].Value}" : $"no match: {m.Value}"));
        Assert.All(steps, l => Assert.Matches(ProgressLine(), l));
    }

    [Fact]
    public void Durations_are_minutes_and_seconds_then_hours()
    {
        Assert.Equal("0:05", StepLine.FormatDuration(TimeSpan.FromSeconds(4.2)));
        Assert.Equal("2:03", StepLine.FormatDuration(TimeSpan.FromSeconds(123)));
        Assert.Equal("1:00:00", StepLine.FormatDuration(TimeSpan.FromHours(1)));
    }

    [Fact]
    public async Task Ctrl_C_exits_130_and_leaves_no_file()
    {
        if (OperatingSystem.IsWindows())
        {
            return;   // SIGINT is sent with kill(1) below; Windows has no such signal for a child process.
        }

        using var folder = new TempFolder();
        var start = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        // The CLI from its own output folder (the test output's dependency set is the test host's, not the tool's).
        var output = new DirectoryInfo(AppContext.BaseDirectory);
        var sdxl = Path.Combine(TestPaths.RepositoryRoot, "samples", "Sdxl.Cli", "bin", output.Parent!.Name, output.Name, "sdxl.dll");
        foreach (var arg in (string[])[sdxl, .. Generate(folder["a.png"], "--steps", "1000")])
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var denoising = new TaskCompletionSource();
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data?.StartsWith("Denoising", StringComparison.Ordinal) == true)
            {
                denoising.TrySetResult();
            }
        };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        try
        {
            // Denoising has started, or the tool ended early (then its exit code and output tell why).
            await Task.WhenAny(denoising.Task, process.WaitForExitAsync()).WaitAsync(TimeSpan.FromMinutes(2));
            Assert.False(process.HasExited, $"sdxl ended before denoising: exit {(process.HasExited ? process.ExitCode : 0)}");
            using (var kill = Process.Start("kill", ["-INT", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync();
            }

            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(1));
            Assert.Equal(CliApp.Interrupted, process.ExitCode);
            Assert.Empty(folder.Files());
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill();
            }
        }
    }
}
