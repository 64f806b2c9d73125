using System.Text;
using Sdxl.Cli;
using Sdxl.Net.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Sdxl.Net.Tests.Reliability;

/// <summary>
/// Every CLI failure exits 2 (usage) or 1 (runtime) with one line on stderr, no stack trace, nothing on stdout
/// claiming success and no file (output or temporary) left behind.
/// </summary>
public sealed class CliFailureTests
{
    private const string Usage = "usage";
    private const string Runtime = "runtime";

    /// <summary>
    /// Each case: a name, the expected kind, a fragment of the message, and the arguments with placeholders:
    /// {model} the synthetic model, {out} the output folder, {files} a folder of prepared input files.
    /// </summary>
    public static TheoryData<string, string, string, string> Cases() => new()
    {
        { "unknown command", Usage, "unknown command 'paint'", "paint --model {model}" },
        { "unknown option", Usage, "unknown option --colour", "generate {base} --colour red" },
        { "argument without --", Usage, "unexpected argument 'fast'", "generate {base} fast" },
        { "option given twice", Usage, "--steps is given twice", "generate {base} --steps 3" },
        { "option without value", Usage, "--seed needs a value", "generate {base} --seed" },
        { "missing --model", Usage, "--model is required", "generate --prompt x --steps 2 --guidance 5 --output {out}/a.png" },
        { "model folder missing", Usage, "--model: folder not found", "generate --model {out}/nope --prompt x --steps 2 --guidance 5 --output {out}/a.png" },
        { "missing --prompt", Usage, "--prompt is required", "generate --model {model} --steps 2 --output {out}/a.png" },
        { "width not a number", Usage, "--width must be an integer from 1 to 65536; got 'wide'", "generate {base} --width wide --height 64" },
        { "width not a model multiple", Usage, "Width must be a multiple of 16", "generate {base} --width 70 --height 64" },
        { "width absurd (memory guard)", Usage, "activation memory", "generate {base} --width 4096 --height 4096 --batch 8" },
        { "steps zero", Usage, "--steps must be an integer from 1 to 1000; got '0'", "generate --model {model} --prompt x --steps 0 --guidance 5 --output {out}/a.png" },
        { "guidance not finite", Usage, "--guidance must be a number from 0 to 100; got 'NaN'", "generate --model {model} --prompt x --steps 2 --guidance NaN --output {out}/a.png" },
        { "guidance overflow", Usage, "got '1e400'", "generate --model {model} --prompt x --steps 2 --guidance 1e400 --output {out}/a.png" },
        { "negative seed", Usage, "--seed must be an integer from 0", "generate {base} --seed -4" },
        { "batch zero", Usage, "--batch must be an integer from 1 to 64", "generate {base} --batch 0" },
        { "high-noise fraction 1", Usage, "--high-noise-fraction must be strictly between 0 and 1", "generate {base} --high-noise-fraction 1" },
        { "bad size syntax", Usage, "--original-size must be HEIGHTxWIDTH", "generate {base} --original-size 64by64" },
        { "bad crop syntax", Usage, "--crop must be TOP,LEFT", "generate {base} --crop -1,0" },
        { "unknown scheduler", Usage, "Unknown scheduler 'euler-fancy'", "generate {base} --scheduler euler-fancy" },
        { "unknown device", Usage, "--device:", "generate {base} --device quantum" },
        { "output extension", Usage, "--output must end in .png, .jpg, .jpeg, .webp or .npy", "generate --model {model} --prompt x --steps 2 --guidance 5 --output {out}/a.gif" },
        { "output parent is a file", Usage, "--output: directory does not exist", "generate --model {model} --prompt x --steps 2 --guidance 5 --output {files}/blocker/a.png" },
        { "output directory missing", Usage, "--output: directory does not exist", "generate --model {model} --prompt x --steps 2 --guidance 5 --output {out}/missing/a.png" },
        { "strength on generate", Usage, "belong to the img2img and inpaint commands", "generate {base} --strength 0.5" },
        { "latents file missing", Usage, "--latents: file not found", "generate {base} --width 64 --height 64 --latents {files}/none.npy" },
        { "latents not npy", Usage, "--latents: ", "generate {base} --width 64 --height 64 --latents {files}/garbage.npy" },
        { "latents truncated header", Usage, "corrupt .npy file", "generate {base} --width 64 --height 64 --latents {files}/short.npy" },
        { "latents truncated data", Usage, "truncated: the header promises 256 values", "generate {base} --width 64 --height 64 --latents {files}/cut.npy" },
        { "latents wrong dtype", Usage, "unsupported dtype '<i4'", "generate {base} --width 64 --height 64 --latents {files}/int.npy" },
        { "latents wrong shape", Usage, "expected a float32 array [1, 4, 8, 8]; found shape [1, 4, 16, 4]", "generate {base} --width 64 --height 64 --latents {files}/transposed.npy" },
        { "latents wrong channels", Usage, "found shape [1, 3, 8, 8]", "generate {base} --width 64 --height 64 --latents {files}/rgb.npy" },
        { "latents non-finite", Usage, "InitialLatents contains a non-finite value", "generate {base} --width 64 --height 64 --latents {files}/nan.npy" },
        { "image missing", Usage, "--image: file not found", "img2img {base} --image {files}/none.png" },
        { "image truncated", Usage, "--image: ", "img2img {base} --image {files}/truncated.png" },
        { "image claiming 100000x100000", Usage, "declares 100000x100000 pixels", "img2img {base} --image {files}/huge.png" },
        { "image is not an image", Usage, "is not a PNG, JPEG, WebP or BMP image", "img2img {base} --image {files}/garbage.npy" },
        { "inpaint without mask", Usage, "--mask is required", "inpaint {base} --image {files}/ok.png" },
        { "mask size differs", Usage, "Mask is 32x64 but Image is 64x64", "inpaint --model {model} --prompt x --steps 2 --guidance 5 --output {out}/a.png --image {files}/ok.png --mask {files}/narrow.png" },
        { "resize mode unknown", Usage, "--resize must be stretch, crop or pad", "img2img {base} --image {files}/ok.png --resize squash" },
        { "recipe from a non-PNG", Usage, "is not a PNG file", "generate --model {model} --from-image {files}/garbage.npy --output {out}/a.png" },
        { "recipe bomb", Usage, "decompression bomb", "generate --model {model} --from-image {files}/bomb.png --output {out}/a.png" },
        { "missing unet", Runtime, "unet: model file not found", "generate --model {files}/no-unet --prompt x --steps 2 --guidance 5 --output {out}/a.png" },
        { "corrupt unet", Runtime, "unet: ONNX Runtime cannot load", "generate --model {files}/bad-unet --prompt x --steps 2 --guidance 5 --output {out}/a.png" },
        { "unknown scheduler class", Runtime, "'FancyScheduler' is not supported", "generate --model {files}/bad-scheduler --prompt x --steps 2 --guidance 5 --output {out}/a.png" },
        { "output path is a directory", Runtime, "sdxl: failed: ", "generate --model {model} --prompt x --width 64 --height 64 --steps 2 --guidance 5 --output {files}/taken.png" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Failure_exits_non_zero_with_one_line_and_leaves_no_file(string what, string kind, string message, string args)
    {
        var files = Shared.Value;
        using var output = new TempFolder();
        var (exit, stdout, errorLines) = await Run(args, files, output);

        Assert.True(exit == (kind == Usage ? CliApp.UsageFailure : CliApp.RuntimeFailure), $"{what}: exit {exit}; stderr: {string.Join(" | ", errorLines)}");
        var line = Assert.Single(errorLines);
        Assert.StartsWith(kind == Usage ? "sdxl: error: " : "sdxl: failed: ", line);
        Assert.True(line.Contains(message, StringComparison.Ordinal), $"{what}: {line}");
        Assert.DoesNotContain("wrote", stdout);
        Assert.Empty(output.Files());
        Assert.Equal(files.Expected, files.Folder.Files());
    }

    [Fact]
    public async Task Valid_arguments_succeed_and_write_the_file()
    {
        // The baseline the failures differ from, with the same placeholders.
        var files = Shared.Value;
        using var output = new TempFolder();
        var (exit, stdout, errorLines) = await Run("generate {base} --width 64 --height 64 --latents {files}/good.npy", files, output);
        Assert.True(exit == 0, string.Join(" | ", errorLines));
        Assert.Contains("wrote", stdout);
        Assert.Equal(["a.png"], output.Files());

        (exit, _, errorLines) = await Run("img2img {base} --image {files}/ok.png --strength 0.5 --width 64 --height 64 --output {out}/b.png", files, output, replaceOutput: true);
        Assert.True(exit == 0, string.Join(" | ", errorLines));
    }

    [Fact]
    public async Task Verbose_adds_the_stack_trace_that_is_otherwise_withheld()
    {
        var files = Shared.Value;
        using var output = new TempFolder();
        var (exit, _, quiet) = await Run("generate --model {files}/bad-unet --prompt x --steps 2 --guidance 5 --output {out}/a.png", files, output);
        Assert.Equal(CliApp.RuntimeFailure, exit);
        Assert.DoesNotContain(quiet, l => l.TrimStart().StartsWith("at ", StringComparison.Ordinal));
        var (_, _, verbose) = await Run("generate --model {files}/bad-unet --prompt x --steps 2 --guidance 5 --output {out}/a.png --verbose", files, output);
        Assert.Contains(verbose, l => l.TrimStart().StartsWith("at ", StringComparison.Ordinal));
    }

    private static async Task<(int Exit, string Stdout, List<string> ErrorLines)> Run(string args, Files files, TempFolder output, bool replaceOutput = false)
    {
        var text = args.Replace("{base}", replaceOutput
                ? "--model {model} --prompt x --steps 2 --guidance 5"
                : "--model {model} --prompt x --steps 2 --guidance 5 --output {out}/a.png", StringComparison.Ordinal)
            .Replace("{model}", SyntheticModels.Get(), StringComparison.Ordinal)
            .Replace("{out}", output.Path, StringComparison.Ordinal)
            .Replace("{files}", files.Folder.Path, StringComparison.Ordinal);
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int exit = await CliApp.RunAsync(text.Split(' '), stdout, stderr);

        // Progress lines (starting with a phase name) are not messages.
        var lines = stderr.ToString().Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => !Enum.GetNames<GenerationPhase>().Any(p => l.StartsWith(p + " ", StringComparison.Ordinal)))
            .ToList();
        return (exit, stdout.ToString(), lines);
    }

    /// <summary>Prepared once; the tests only read it (and check that they left it as it was).</summary>
    private static readonly Lazy<Files> Shared = new(PrepareFiles);

    private sealed record Files(TempFolder Folder, string[] Expected);

    private static Files PrepareFiles()
    {
        var folder = new TempFolder();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => folder.Dispose();
        File.WriteAllText(folder["blocker"], "a file where a directory is expected");
        Directory.CreateDirectory(folder["taken.png"]);
        File.WriteAllBytes(folder["garbage.npy"], Encoding.ASCII.GetBytes("this is not an array at all"));
        File.WriteAllBytes(folder["short.npy"], [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, 0x40, 0, (byte)'{']);
        WriteNpy(folder["good.npy"], new float[256], [1, 4, 8, 8]);
        var cut = File.ReadAllBytes(folder["good.npy"]);
        File.WriteAllBytes(folder["cut.npy"], cut[..^100]);
        WriteRaw(folder["int.npy"], "<i4", "(1, 4, 8, 8)", new byte[1024]);
        WriteNpy(folder["transposed.npy"], new float[256], [1, 4, 16, 4]);
        WriteNpy(folder["rgb.npy"], new float[192], [1, 3, 8, 8]);
        var nan = new float[256];
        nan[9] = float.NaN;
        WriteNpy(folder["nan.npy"], nan, [1, 4, 8, 8]);

        var png = HostileImageTests.Png(64, 64);
        File.WriteAllBytes(folder["ok.png"], png);
        File.WriteAllBytes(folder["truncated.png"], png[..(png.Length / 2)]);
        var huge = (byte[])png.Clone();
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(huge.AsSpan(16), 100_000);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(huge.AsSpan(20), 100_000);
        File.WriteAllBytes(folder["huge.png"], huge);
        using (var narrow = new Image<Rgb24>(32, 64))
        {
            narrow.SaveAsPng(folder["narrow.png"]);
        }

        File.WriteAllBytes(folder["bomb.png"], HostileImageTests.Bomb("zTXt", ImageRecipe.RequestKeyword, 64 << 20));

        using (var noUnet = Faults.CopyModel())
        {
            CopyTree(noUnet.Path, folder["no-unet"]);
        }

        File.Delete(Path.Combine(folder["no-unet"], "unet", "model.onnx"));
        CopyTree(folder["no-unet"], folder["bad-unet"]);
        File.WriteAllBytes(Path.Combine(folder["bad-unet"], "unet", "model.onnx"), Encoding.ASCII.GetBytes("garbage, not protobuf"));
        using (var copy = Faults.CopyModel())
        {
            CopyTree(copy.Path, folder["bad-scheduler"]);
        }

        var config = Path.Combine(folder["bad-scheduler"], "scheduler", "scheduler_config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("EulerDiscreteScheduler", "FancyScheduler", StringComparison.Ordinal));
        return new Files(folder, folder.Files());
    }

    private static void WriteNpy(string path, float[] data, int[] shape)
    {
        using var stream = File.Create(path);
        NpyFile.Write(stream, data, shape);
    }

    private static void WriteRaw(string path, string descr, string shape, byte[] data)
    {
        var header = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}".PadRight(117) + "\n";
        byte[] prefix = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, (byte)header.Length, 0];
        File.WriteAllBytes(path, [.. prefix, .. Encoding.ASCII.GetBytes(header), .. data]);
    }

    private static void CopyTree(string source, string target)
    {
        foreach (var file in Directory.GetFiles(source, "*", SearchOption.AllDirectories))
        {
            var to = Path.Combine(target, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(file, to, overwrite: true);
        }
    }
}
