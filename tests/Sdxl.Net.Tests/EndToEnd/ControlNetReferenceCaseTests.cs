using System.Globalization;
using System.Text.Json;
using Sdxl.Net.ControlNet;
using Sdxl.Net.Imaging;

namespace Sdxl.Net.Tests.EndToEnd;

/// <summary>
/// The ControlNet cases of ../shared/golden/tiny-sdxl/feature-cases (diffusers' StableDiffusionXLControlNetPipeline on
/// tiny ControlNet folders), run through the CLI exactly as a user would and compared with diffusers' image; and the
/// control images preprocessed as diffusers' control image processor did (control_image_k.npy).
/// </summary>
public sealed class ControlNetReferenceCaseTests
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        if (TestPaths.TinySdxl is { } root && Directory.Exists(Path.Combine(root, "feature-cases")))
        {
            foreach (var dir in Directory.GetDirectories(Path.Combine(root, "feature-cases")).Order(StringComparer.Ordinal))
            {
                var parameters = Path.Combine(dir, "params.json");
                if (File.Exists(parameters) && File.ReadAllText(parameters).Contains("\"controlnets\"", StringComparison.Ordinal))
                {
                    data.Add(Path.GetFileName(dir));
                }
            }
        }

        if (data.Count == 0)
        {
            data.Add("(none)");
        }

        return data;
    }

    [TinySdxlTheory]
    [MemberData(nameof(Cases))]
    public async Task Cli_reproduces_the_diffusers_controlnet_image(string caseName)
    {
        var root = TestPaths.TinySdxl!;
        var caseDir = Path.Combine(root, "feature-cases", caseName);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(caseDir, "params.json")));
        var p = doc.RootElement;
        var output = Path.Combine(Path.GetTempPath(), $"sdxl-cn-{caseName}-{Guid.NewGuid():N}.npy");
        await TinyReferenceCaseTests.AssertCliReproduces(caseName, caseDir, p, ToCliArguments(p, root, caseDir, output), output);
    }

    // control_image_k.npy is the tensor diffusers' control image processor made (Pillow resize, RGB / 255, one CFG
    // half); ours must equal it to the last bit, since both are byte / 255 in float32.
    [TinySdxlTheory]
    [MemberData(nameof(Cases))]
    public void Control_images_are_preprocessed_as_diffusers_does(string caseName)
    {
        var caseDir = Path.Combine(TestPaths.TinySdxl!, "feature-cases", caseName);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(caseDir, "params.json")));
        var p = doc.RootElement;
        int k = 0;
        foreach (var net in p.GetProperty("controlnets").EnumerateArray())
        {
            var expectedPath = Path.Combine(caseDir, $"control_image_{k}.npy");
            if (File.Exists(expectedPath))
            {
                var (expected, shape) = NpyFile.Read(expectedPath);
                using var image = ImageInput.Load(Path.Combine(caseDir, net[1].GetString()!));
                var actual = ControlNetStage.Preprocess(image, shape[3], shape[2]);
                Assert.Equal(3 * shape[2] * shape[3], actual.Length);
                for (int i = 0; i < actual.Length; i++)
                {
                    Assert.True(actual[i] == expected[i], $"control image {k}, element {i}: {actual[i]} != {expected[i]}");
                }
            }

            k++;
        }
    }

    /// <summary>
    /// The case's CLI line: the common flags as TinyReferenceCaseTests maps them, the model variant, then one
    /// <c>--controlnet --control-image --control-scale --control-start --control-end</c> group per net.
    /// </summary>
    internal static List<string> ToCliArguments(JsonElement p, string root, string caseDir, string output)
    {
        var args = TinyReferenceCaseTests.ToCliArguments(p, root, caseDir, output);
        if (p.TryGetProperty("variant", out var variant) && variant.ValueKind == JsonValueKind.String)
        {
            args[args.IndexOf("--model") + 1] = Path.Combine(root, "variants", variant.GetString()!);
        }

        if (p.TryGetProperty("image", out var image) && image.ValueKind == JsonValueKind.String)
        {
            args[0] = "img2img";
            args.AddRange(["--image", Path.Combine(caseDir, image.GetString()!)]);
            if (p.TryGetProperty("strength", out var strength) && strength.ValueKind == JsonValueKind.Number)
            {
                args.AddRange(["--strength", strength.GetDouble().ToString("R", CultureInfo.InvariantCulture)]);
            }
        }

        if (p.TryGetProperty("guess_mode", out var guess) && guess.ValueKind == JsonValueKind.True)
        {
            args.Add("--guess-mode");
        }

        foreach (var net in p.GetProperty("controlnets").EnumerateArray())
        {
            var folder = net[0].GetString()!;
            var dir = Directory.Exists(Path.Combine(root, folder)) ? Path.Combine(root, folder) : Path.Combine(root, "variants", folder);
            args.AddRange([
                "--controlnet", dir,
                "--control-image", Path.Combine(caseDir, net[1].GetString()!),
                "--control-scale", net[2].GetDouble().ToString("R", CultureInfo.InvariantCulture),
                "--control-start", net[3].GetDouble().ToString("R", CultureInfo.InvariantCulture),
                "--control-end", net[4].GetDouble().ToString("R", CultureInfo.InvariantCulture),
            ]);
        }

        return args;
    }
}
