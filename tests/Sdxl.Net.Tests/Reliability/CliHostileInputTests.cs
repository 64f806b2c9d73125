using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using Sdxl.Cli;
using Sdxl.Net.Imaging;

namespace Sdxl.Net.Tests.Reliability;

/// <summary>
/// The CLI on hostile inputs of the second round: each case ends with the documented exit code, one stderr line, no
/// stack trace, no output or temporary file. Signals and ONNX Runtime's native log need a real process.
/// </summary>
public sealed class CliHostileInputTests
{
    private static async Task<(int Exit, string Stdout, string[] Lines)> RunInProcess(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int exit = await CliApp.RunAsync(args, stdout, stderr);
        return (exit, stdout.ToString(), Lines(stderr.ToString()));
    }

    private static string[] Lines(string text) =>
        text.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => !l.StartsWith("Denoising ", StringComparison.Ordinal)).ToArray();

    private static string[] Generate(string model, string output, params string[] extra) =>
        ["generate", "--model", model, "--prompt", "a lighthouse", "--width", "64", "--height", "64", "--steps", "2", "--guidance", "5", "--seed", "1", "--output", output, .. extra];

    [Fact]
    public async Task Huge_num_train_timesteps_fails_at_once_naming_the_file()
    {
        // It used to allocate past 11 GB in Build() and never return.
        using var model = Faults.CopyModel();
        ModelConfigValidationTests.SetRaw(model["scheduler/scheduler_config.json"], "num_train_timesteps", "2000000000");
        using var output = new TempFolder();
        var (exit, stdout, lines) = await RunInProcess(Generate(model.Path, output["out.png"]));
        Assert.Equal(CliApp.RuntimeFailure, exit);
        var line = Assert.Single(lines);
        Assert.StartsWith("sdxl: failed: scheduler:", line);
        Assert.Contains("scheduler_config.json': num_train_timesteps is 2000000000", line);
        Assert.DoesNotContain("wrote", stdout);
        Assert.Empty(output.Files());
    }

    [Fact]
    public async Task Output_name_longer_than_the_file_system_allows_is_a_usage_error_before_generating()
    {
        // 250 bytes plus the batch suffix "_1" exceeds NAME_MAX only for the second image: refused up front.
        using var output = new TempFolder();
        var name = new string('n', 250) + ".png";
        var (exit, _, lines) = await RunInProcess(Generate(SyntheticModels.Get(), output[name], "--batch", "2"));
        Assert.Equal(CliApp.UsageFailure, exit);
        Assert.Contains("is 256 bytes (with the batch suffix); file systems allow at most 255", Assert.Single(lines));
        Assert.Empty(output.Files());
    }

    [Fact]
    public async Task Output_name_of_250_bytes_is_written()
    {
        using var output = new TempFolder();
        var name = new string('n', 251) + ".png";
        var (exit, stdout, lines) = await RunInProcess(Generate(SyntheticModels.Get(), output[name]));
        Assert.True(exit == CliApp.Ok, string.Join(" | ", lines));
        Assert.Contains("wrote", stdout);
        Assert.Equal([name], output.Files());
    }

    [Theory]
    [InlineData("nuls", "only of control characters")]
    [InlineData("lone surrogate", "lone UTF-16 surrogate")]
    public async Task Prompt_without_text_is_a_usage_error(string kind, string fragment)
    {
        // Built here: test-case serialization would replace a lone surrogate by U+FFFD.
        var prompt = kind == "nuls" ? "\0\0" : "cat " + '\ud800';
        using var output = new TempFolder();
        var args = Generate(SyntheticModels.Get(), output["out.png"]);
        args[Array.IndexOf(args, "--prompt") + 1] = prompt;
        var (exit, _, lines) = await RunInProcess(args);
        Assert.Equal(CliApp.UsageFailure, exit);
        Assert.Contains(fragment, Assert.Single(lines));
        Assert.Empty(output.Files());
    }

    [Fact]
    public async Task Latents_of_absurd_magnitude_are_a_usage_error()
    {
        using var output = new TempFolder();
        var latents = new float[4 * 8 * 8];
        latents[10] = 1e30f;
        using (var file = File.Create(output["noise.npy"]))
        {
            NpyFile.Write(file, latents, [1, 4, 8, 8]);
        }

        var (exit, _, lines) = await RunInProcess(Generate(SyntheticModels.Get(), output["out.png"], "--latents", output["noise.npy"]));
        Assert.Equal(CliApp.UsageFailure, exit);
        Assert.Contains("InitialLatents[10] is 1E+30", Assert.Single(lines));
        Assert.Equal(["noise.npy"], output.Files());
    }

    [Fact]
    public async Task Img2img_from_a_png_holding_half_its_rows_is_a_usage_error_not_a_black_half()
    {
        using var output = new TempFolder();
        int w = 64, h = 64, row = 1 + (3 * w);
        var raw = new byte[h * row];
        new Random(1).NextBytes(raw);
        for (int y = 0; y < h; y++)
        {
            raw[y * row] = 0;
        }

        using (var z = new MemoryStream())
        {
            using (var zlib = new ZLibStream(z, CompressionLevel.Fastest, leaveOpen: true))
            {
                zlib.Write(raw, 0, (h / 2) * row);
            }

            File.WriteAllBytes(output["half.png"], UntrustedImageTests.HandPng(w, h, z.ToArray()));
        }

        var args = Generate(SyntheticModels.Get(), output["out.png"]);
        args[0] = "img2img";
        var (exit, stdout, lines) = await RunInProcess([.. args, "--image", output["half.png"]]);
        Assert.Equal(CliApp.UsageFailure, exit);
        Assert.Contains("truncated PNG", Assert.Single(lines));
        Assert.DoesNotContain("wrote", stdout);
        Assert.Equal(["half.png"], output.Files());
    }

    /// <summary>Runs the built CLI (sdxl.dll next to the tests) as a process; <paramref name="onStderr"/> sees stderr as it arrives.</summary>
    private static async Task<(int Exit, string Stdout, string Stderr)> RunProcess(string[] args, Action<Process, string>? onStderr = null)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "sdxl.dll"));
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        using var process = Process.Start(start)!;
        var stdoutTask = process.StandardOutput.ReadToEndAsync();
        var stderr = new StringBuilder();
        var buffer = new char[256];
        int read;
        while ((read = await process.StandardError.ReadAsync(buffer)) > 0)
        {
            stderr.Append(buffer, 0, read);
            onStderr?.Invoke(process, stderr.ToString());
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdoutTask, stderr.ToString());
    }

    private static void Signal(Process process, string signal)
    {
        using var kill = Process.Start("kill", ["-" + signal, process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!;
        kill.WaitForExit();
    }

    [Theory]
    [InlineData("INT", CliApp.Interrupted, "sdxl: interrupted; nothing was written")]
    [InlineData("TERM", CliApp.Terminated, "sdxl: terminated; nothing was written")]
    public async Task Signal_during_generation_exits_128_plus_signal_and_leaves_no_file(string signal, int expectedExit, string expectedLine)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        using var output = new TempFolder();
        var args = Generate(SyntheticModels.Get(), output["out.png"]);
        args[Array.IndexOf(args, "--steps") + 1] = "1000";
        bool sent = false;
        var (exit, stdout, stderr) = await RunProcess(args, (process, text) =>
        {
            if (!sent && text.Contains("Denoising 2/", StringComparison.Ordinal))
            {
                sent = true;
                Signal(process, signal);
            }
        });

        Assert.True(sent, stderr);
        Assert.Equal(expectedExit, exit);
        Assert.Equal(expectedLine, Assert.Single(Lines(stderr)));
        Assert.DoesNotContain("wrote", stdout);
        Assert.Empty(output.Files());
    }

    [Fact]
    public async Task Onnx_runtime_log_never_reaches_stderr_for_a_broken_model()
    {
        // Truncated external weights and a garbage UNet: ONNX Runtime logs errors natively; only the CLI's own line
        // may appear on the process's real stderr.
        using var model = Faults.CopyModel(new Sdxl.Net.Synthetic.SyntheticModelOptions { UnetExternalData = true });
        var data = File.ReadAllBytes(model["unet/model.onnx_data"]);
        File.WriteAllBytes(model["unet/model.onnx_data"], data[..(data.Length / 3)]);
        using var output = new TempFolder();
        var (exit, _, stderr) = await RunProcess(Generate(model.Path, output["out.png"]));
        Assert.Equal(CliApp.RuntimeFailure, exit);
        var line = Assert.Single(Lines(stderr));
        Assert.StartsWith("sdxl: failed: unet:", line);

        File.WriteAllBytes(model["unet/model.onnx"], Encoding.ASCII.GetBytes(new string('x', 5000)));
        (exit, _, stderr) = await RunProcess(Generate(model.Path, output["out.png"]));
        Assert.Equal(CliApp.RuntimeFailure, exit);
        Assert.StartsWith("sdxl: failed: unet:", Assert.Single(Lines(stderr)));
        Assert.Empty(output.Files());
    }
}
