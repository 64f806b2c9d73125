using System.Globalization;
using System.Text.Json;
using Sdxl.Cli;
using Sdxl.Net.Imaging;

namespace Sdxl.Net.Tests.EndToEnd;

/// <summary>
/// Every case of ../shared/golden/tiny-sdxl/cases, run through the CLI exactly as a user would, compared with the image
/// diffusers' loop made from the same models (max abs error on the [0, 1] image).
/// </summary>
public sealed class TinyReferenceCaseTests
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        if (TestPaths.TinySdxl is { } root && Directory.Exists(Path.Combine(root, "cases")))
        {
            foreach (var dir in Directory.GetDirectories(Path.Combine(root, "cases")).Order(StringComparer.Ordinal))
            {
                data.Add(Path.GetFileName(dir));
            }
        }
        else
        {
            data.Add("(none)");
        }

        return data;
    }

    [TinySdxlTheory]
    [MemberData(nameof(Cases))]
    public async Task Cli_reproduces_the_diffusers_image(string caseName)
    {
        var root = TestPaths.TinySdxl!;
        await AssertCliReproduces(root, Path.Combine(root, "cases", caseName));
    }

    /// <summary>Runs the case in <paramref name="caseDir"/> through the CLI and compares with its expected image.</summary>
    internal static async Task AssertCliReproduces(string root, string caseDir)
    {
        var caseName = Path.GetFileName(caseDir);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(caseDir, "params.json")));
        var p = doc.RootElement;
        var output = Path.Combine(Path.GetTempPath(), $"sdxl-case-{caseName}-{Guid.NewGuid():N}.npy");
        await AssertCliReproduces(caseName, caseDir, p, ToCliArguments(p, root, caseDir, output), output);
    }

    /// <summary>Runs the CLI with <paramref name="args"/> (which write <paramref name="output"/>) and compares the image with the case's expected_image.npy.</summary>
    internal static async Task AssertCliReproduces(string caseName, string caseDir, JsonElement p, List<string> args, string output)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int exit = await CliApp.RunAsync(args.ToArray(), stdout, stderr);
        try
        {
            Assert.True(exit == 0, $"exit {exit}: {stderr}\nargs: {string.Join(' ', args)}");
            var (actual, shape) = NpyFile.Read(output);
            var (expected, expectedShape) = NpyFile.Read(Path.Combine(caseDir, "expected_image.npy"));
            Assert.Equal(expectedShape, shape);
            double tolerance = p.TryGetProperty("tolerance_max_abs", out var tol) ? tol.GetDouble() : 2e-3;
            double maxError = 0;
            for (int i = 0; i < actual.Length; i++)
            {
                maxError = Math.Max(maxError, Math.Abs(actual[i] - expected[i]));
            }

            Assert.True(maxError <= tolerance, $"{caseName}: max abs error {maxError:E3} > {tolerance:E1}");
        }
        finally
        {
            File.Delete(output);
        }
    }

    internal static List<string> ToCliArguments(JsonElement p, string root, string caseDir, string output)
    {
        var args = new List<string> { "generate", "--model", Path.Combine(root, p.GetProperty("model").GetString()!) };
        void Add(string flag, JsonElement value)
        {
            if (value.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined)
            {
                return;
            }

            args.Add(flag);
            args.Add(value.ValueKind switch
            {
                JsonValueKind.String => value.GetString()!,
                JsonValueKind.Array when value.GetArrayLength() == 2 && flag.Contains("crop", StringComparison.Ordinal) =>
                    string.Create(CultureInfo.InvariantCulture, $"{value[0].GetInt32()},{value[1].GetInt32()}"),
                JsonValueKind.Array when value.GetArrayLength() == 2 =>
                    string.Create(CultureInfo.InvariantCulture, $"{value[0].GetInt32()}x{value[1].GetInt32()}"),
                _ => value.GetRawText(),
            });
        }

        var map = new Dictionary<string, string>
        {
            ["prompt"] = "--prompt", ["prompt_2"] = "--prompt-2", ["negative_prompt"] = "--negative-prompt",
            ["negative_prompt_2"] = "--negative-prompt-2", ["width"] = "--width", ["height"] = "--height",
            ["steps"] = "--steps", ["guidance"] = "--guidance", ["guidance_rescale"] = "--guidance-rescale",
            ["scheduler"] = "--scheduler", ["original_size"] = "--original-size", ["crops_coords_top_left"] = "--crop",
            ["target_size"] = "--target-size", ["negative_original_size"] = "--negative-original-size",
            ["negative_crops_coords_top_left"] = "--negative-crop", ["negative_target_size"] = "--negative-target-size",
            ["batch"] = "--batch", ["num_images_per_prompt"] = "--batch", ["seed"] = "--seed",
            ["high_noise_fraction"] = "--high-noise-fraction", ["aesthetic_score"] = "--aesthetic-score",
            ["negative_aesthetic_score"] = "--negative-aesthetic-score",
            ["prompt_syntax"] = "--prompt-syntax", ["prompt_weighting"] = "--prompt-weighting", ["clip_skip"] = "--clip-skip",
        };
        foreach (var prop in p.EnumerateObject())
        {
            if (map.TryGetValue(prop.Name, out var flag))
            {
                Add(flag, prop.Value);
            }
        }

        if (p.TryGetProperty("refiner", out var refiner) && refiner.ValueKind == JsonValueKind.String)
        {
            args.AddRange(["--refiner", Path.Combine(root, refiner.GetString()!)]);
        }

        if (p.TryGetProperty("latents", out var latents) && latents.ValueKind == JsonValueKind.String)
        {
            args.AddRange(["--latents", Path.Combine(caseDir, latents.GetString()!)]);
        }

        args.AddRange(["--device", "cpu", "--output", output]);
        return args;
    }
}
