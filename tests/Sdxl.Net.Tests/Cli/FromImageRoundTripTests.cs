using Sdxl.Cli;
using Sdxl.Net.Imaging;
using Sdxl.Net.Synthetic;
using Sdxl.Net.Tests.Reliability;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Sdxl.Net.Tests.Cli;

/// <summary>
/// Every option of the CLI that changes pixels survives a PNG recipe: generate with it, regenerate with
/// <c>--from-image</c> and only the inputs that are not stored (model, refiner folder, image, mask, latents), and get
/// the same pixels; an input that is missing or different is refused instead of silently making another image.
/// </summary>
public sealed class FromImageRoundTripTests
{
    /// <summary>Each case: the command and its options; {image}, {mask}, {latents}, {refiner} are prepared inputs.</summary>
    public static TheoryData<string> Cases() => new()
    {
        "generate",
        "generate --prompt-2 a_sea --negative-prompt fog --negative-prompt-2 rain",
        "generate --guidance 7.5 --guidance-rescale 0.7",
        "generate --guidance 1",
        "generate --scheduler dpmpp-2m",
        "generate --scheduler euler --karras",
        "generate --karras",
        "generate --timestep-spacing trailing",
        "generate --scheduler dpmpp-2m-sde --timestep-spacing linspace --karras",
        "generate --scheduler heun --steps 2",
        "generate --scheduler euler-a",
        "generate --batch 2 --seed 9",
        "generate --batch 2 --seeds 3,4",
        "generate --width 48 --height 64",
        "generate --original-size 128x96 --crop 8,16 --target-size 64x64 --negative-original-size 32x32 --negative-crop 4,4 --negative-target-size 48x48",
        "generate --latents {latents}",
        "generate --refiner {refiner}",
        "generate --refiner {refiner} --high-noise-fraction 0.6 --aesthetic-score 7.5 --negative-aesthetic-score 1.5",
        "generate --vae-tiling",
        "generate --memory-mode per-phase",
        "img2img --image {image}",
        "img2img --image {image} --strength 0.7 --resize crop --vae-sampling mean",
        "img2img --image {image} --resize pad --width 64 --height 48",
        "inpaint --image {image} --mask {mask}",
        "inpaint --image {image} --mask {mask} --strength 0.6 --scheduler ddim",
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task From_image_regenerates_identical_pixels(string options)
    {
        using var folder = new TempFolder();
        var inputs = Inputs.Value;
        var args = Expand(options, inputs);
        var first = folder["first.png"];
        await Succeed([.. WithDefaults(args), "--output", first]);

        // The regeneration gives only what a recipe cannot hold: the command, the model and the input files.
        var again = folder["again.png"];
        var replay = new List<string> { args[0], "--from-image", BatchFile(first, args), "--model", SyntheticModels.Get(), "--output", again };
        foreach (var input in (string[])["--image", "--mask", "--latents", "--refiner"])
        {
            int i = Array.IndexOf(args, input);
            if (i > 0)
            {
                replay.AddRange([input, args[i + 1]]);
            }
        }

        await Succeed([.. replay]);
        int count = args.Contains("--batch") ? 2 : 1;
        for (int i = 0; i < count; i++)
        {
            AssertSamePixels(PngFileSink.PathFor(first, i, count), PngFileSink.PathFor(again, i, count));
        }
    }

    [Fact]
    public async Task The_recipe_holds_the_sampler_configuration_the_refiner_and_the_inputs()
    {
        using var folder = new TempFolder();
        var inputs = Inputs.Value;
        await Succeed(["img2img", "--model", SyntheticModels.Get(), "--prompt", "x", "--steps", "4", "--seed", "1", "--scheduler", "euler",
            "--karras", "--timestep-spacing", "trailing", "--image", inputs.Image, "--resize", "crop", "--vae-sampling", "mean",
            "--width", "64", "--height", "64", "--output", folder["a.png"]]);
        var recipe = ImageRecipe.ReadRecipe(folder["a.png"])!;
        Assert.Equal("euler-karras", recipe.Scheduler!.Name);
        Assert.Equal("EulerDiscreteScheduler", recipe.Scheduler.ClassName);
        Assert.Equal("trailing", recipe.Scheduler.ConfigChanges["timestep_spacing"]!.GetValue<string>());
        Assert.True(recipe.Scheduler.ConfigChanges["use_karras_sigmas"]!.GetValue<bool>());
        Assert.Null(recipe.Refiner);
        Assert.Equal(ImageResizeMode.CenterCrop, recipe.Request.ResizeMode);
        Assert.Equal(VaeSampling.Mean, recipe.Request.VaeSampling);

        // The digest is SHA-256 over (width, height as little-endian int32) and the RGB24 rows, computed here independently.
        using var image = Image.Load<Rgb24>(inputs.Image);
        var bytes = new List<byte>(BitConverter.GetBytes(image.Width).Concat(BitConverter.GetBytes(image.Height)));
        for (int y = 0; y < image.Height; y++)
        {
            for (int x = 0; x < image.Width; x++)
            {
                bytes.AddRange([image[x, y].R, image[x, y].G, image[x, y].B]);
            }
        }

        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes.ToArray())), recipe.Inputs!.ImageSha256);

        var text = File.ReadAllText(folder["a.png"], System.Text.Encoding.Latin1);
        Assert.DoesNotContain("use_refiner", text);
        Assert.Contains("Sampler: Euler, Schedule type: Karras", text);
        Assert.Contains("Denoising strength: 0.3", text);
    }

    [Fact]
    public async Task A_refined_recipe_names_its_refiner_and_fraction()
    {
        using var folder = new TempFolder();
        var refiner = Inputs.Value.Refiner;
        await Succeed(["generate", "--model", SyntheticModels.Get(), "--prompt", "x", "--width", "64", "--height", "64", "--steps", "4", "--seed", "1",
            "--refiner", refiner, "--high-noise-fraction", "0.6", "--aesthetic-score", "7", "--output", folder["a.png"]]);
        var recipe = ImageRecipe.ReadRecipe(folder["a.png"])!;
        Assert.Equal(new RecipeRefiner(Path.GetFileName(refiner), 0.6, 7, 2.5, true), recipe.Refiner);
        Assert.True(recipe.Request.UseRefiner);
        Assert.Contains($"Refiner: {Path.GetFileName(refiner)}, Refiner switch at: 0.6", File.ReadAllText(folder["a.png"], System.Text.Encoding.Latin1));
    }

    public static TheoryData<string, string, string> Refusals() => new()
    {
        { "generate --refiner {refiner}", "generate", "was refined with" },
        { "generate --refiner {refiner}", "generate --refiner {other}", "not '" },
        { "img2img --image {image}", "img2img --image {other-image}", "--image differs" },
        { "inpaint --image {image} --mask {mask}", "inpaint --image {image} --mask {image}", "--mask differs" },
        { "generate --latents {latents}", "generate --latents {other-latents}", "--latents differs" },
        { "generate --latents {latents}", "generate", "pass the same --latents" },
        { "img2img --image {image}", "generate", "use that command" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task A_missing_or_different_input_is_refused(string original, string regeneration, string message)
    {
        using var folder = new TempFolder();
        var inputs = Inputs.Value;
        await Succeed([.. WithDefaults(Expand(original, inputs)), "--output", folder["a.png"]]);
        var err = new StringWriter();
        int exit = await CliApp.RunAsync([.. Expand(regeneration, inputs), "--from-image", folder["a.png"], "--model", SyntheticModels.Get(), "--output", folder["b.png"]], new StringWriter(), err);
        Assert.Equal(CliApp.UsageFailure, exit);
        Assert.Contains(message, err.ToString());
        Assert.False(File.Exists(folder["b.png"]));
    }

    /// <summary>The case's options plus the model and the defaults it does not set (4 steps: image-to-image's 0.3 strength keeps one).</summary>
    private static string[] WithDefaults(string[] args)
    {
        var all = new List<string>(args) { "--model", SyntheticModels.Get() };
        foreach (var (name, value) in (ReadOnlySpan<(string, string)>)[("--prompt", "a lighthouse"), ("--width", "64"), ("--height", "64"), ("--steps", "4"), ("--seed", "5")])
        {
            if (!args.Contains(name) && !(name == "--seed" && args.Contains("--seeds")))
            {
                all.AddRange([name, value]);
            }
        }

        return [.. all];
    }

    private static string BatchFile(string first, string[] args) => args.Contains("--batch") ? PngFileSink.PathFor(first, 1, 2) : first;

    private static string[] Expand(string options, InputFiles inputs) => options
        .Replace("{image}", inputs.Image, StringComparison.Ordinal)
        .Replace("{other-image}", inputs.OtherImage, StringComparison.Ordinal)
        .Replace("{mask}", inputs.Mask, StringComparison.Ordinal)
        .Replace("{latents}", inputs.Latents, StringComparison.Ordinal)
        .Replace("{other-latents}", inputs.OtherLatents, StringComparison.Ordinal)
        .Replace("{refiner}", inputs.Refiner, StringComparison.Ordinal)
        .Replace("{other}", inputs.OtherRefiner, StringComparison.Ordinal)
        .Split(' ')
        .Select(a => Path.IsPathRooted(a) ? a : a.Replace('_', ' '))
        .ToArray();

    private static async Task Succeed(string[] args)
    {
        var err = new StringWriter();
        int exit = await CliApp.RunAsync(args, new StringWriter(), err);
        Assert.True(exit == 0, $"sdxl {string.Join(' ', args)}: exit {exit}: {err}");
    }

    private static void AssertSamePixels(string expected, string actual)
    {
        using var a = Image.Load<Rgb24>(expected);
        using var b = Image.Load<Rgb24>(actual);
        Assert.Equal((a.Width, a.Height), (b.Width, b.Height));
        for (int y = 0; y < a.Height; y++)
        {
            for (int x = 0; x < a.Width; x++)
            {
                Assert.True(a[x, y] == b[x, y], $"{Path.GetFileName(actual)} differs at ({x}, {y})");
            }
        }
    }

    private sealed record InputFiles(string Image, string OtherImage, string Mask, string Latents, string OtherLatents, string Refiner, string OtherRefiner);

    /// <summary>Written once for the class, in a folder removed when the test process exits.</summary>
    private static readonly Lazy<InputFiles> Inputs = new(() =>
    {
        var dir = Directory.CreateTempSubdirectory("sdxl-roundtrip-").FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Directory.Delete(dir, recursive: true);
        var random = new Random(7);
        string WriteImage(string name, int width, int height, bool binary)
        {
            using var image = new Image<Rgb24>(width, height);
            for (int y = 0; y < height; y++)
            {
                for (int x = 0; x < width; x++)
                {
                    byte v = (byte)random.Next(256);
                    image[x, y] = binary ? (x < width / 2 ? new Rgb24(255, 255, 255) : new Rgb24(0, 0, 0)) : new Rgb24(v, (byte)random.Next(256), (byte)(255 - v));
                }
            }

            var path = Path.Combine(dir, name);
            image.SaveAsPng(path);
            return path;
        }

        string WriteLatents(string name)
        {
            var values = new float[4 * 8 * 8];
            for (int i = 0; i < values.Length; i++)
            {
                values[i] = (float)((random.NextDouble() * 2) - 1);
            }

            var path = Path.Combine(dir, name);
            using (var stream = File.Create(path))
            {
                NpyFile.Write(stream, values, [1, 4, 8, 8]);
            }

            return path;
        }

        var otherRefiner = Path.Combine(dir, "another-refiner");
        SyntheticSdxlModel.Write(otherRefiner, new SyntheticModelOptions { Refiner = true });
        return new InputFiles(WriteImage("image.png", 64, 64, false), WriteImage("other.png", 64, 64, false), WriteImage("mask.png", 64, 64, true),
            WriteLatents("latents.npy"), WriteLatents("other.npy"), SyntheticModels.Get(new SyntheticModelOptions { Refiner = true }), otherRefiner);
    });
}
