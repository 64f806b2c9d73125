using System.Security.Cryptography;
using Sdxl.Cli;
using Sdxl.Net.Imaging;
using Sdxl.Net.Synthetic;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Sdxl.Net.Tests.ControlNet;

/// <summary>The ControlNet options of <c>sdxl generate</c>, the recipe block they leave in PNGs, and <c>sdxl canny</c>.</summary>
public sealed class ControlNetCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sdxl-cn-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static async Task<(int Exit, string Out, string Err)> Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int exit = await CliApp.RunAsync(args, stdout, stderr);
        return (exit, stdout.ToString(), stderr.ToString());
    }

    private string StepImage(string name, int width, int height, int edgeColumn)
    {
        using var image = new Image<Rgb24>(width, height);
        for (int y = 0; y < height; y++)
        {
            for (int x = edgeColumn; x < width; x++)
            {
                image[x, y] = new Rgb24(255, 255, 255);
            }
        }

        var path = Path.Combine(_dir, name);
        image.SaveAsPng(path);
        return path;
    }

    [Fact]
    public async Task Canny_writes_the_edges_of_an_image()
    {
        // A 0 | 255 step between columns 5 and 6: by cv2.Canny's rule the edge is column 5 (see CannyEdgeDetectorTests).
        var input = StepImage("step.png", 12, 9, 6);
        var output = Path.Combine(_dir, "edges.png");
        var (exit, _, err) = await Run("canny", input, output);
        Assert.True(exit == 0, err);
        using var edges = Image.Load<Rgb24>(output);
        for (int x = 0; x < 12; x++)
        {
            Assert.Equal(x == 5 ? (byte)255 : (byte)0, edges[x, 4].R);
        }

        Assert.Equal(2, (await Run("canny", Path.Combine(_dir, "missing.png"), output)).Exit);
        Assert.Equal(2, (await Run("canny", input, Path.Combine(_dir, "edges.jpg"))).Exit);
        Assert.Equal(2, (await Run("canny", input)).Exit);
    }

    [Fact]
    public async Task Generate_with_a_controlnet_records_it_in_the_png_recipe()
    {
        var model = SyntheticModels.Get(new SyntheticModelOptions { ControlNetUNet = ControlNetUNetLayout.OnnxStackFolder });
        var net = Path.Combine(_dir, "edges-net");
        SyntheticSdxlModel.WriteControlNet(net);
        var control = StepImage("control.png", 64, 64, 20);
        var output = Path.Combine(_dir, "out.png");
        string[] common = ["generate", "--model", model, "--prompt", "a house", "--width", "64", "--height", "64", "--steps", "3", "--guidance", "5", "--seed", "4"];
        var (exit, _, err) = await Run([.. common, "--controlnet", net, "--control-image", control, "--control-scale", "0.7", "--control-start", "0.1", "--control-end", "0.9", "--output", output]);
        Assert.True(exit == 0, err);

        var recipe = ImageRecipe.ReadRecipe(output)!;
        var unit = Assert.Single(recipe.ControlNets!);
        Assert.Equal("edges-net", unit.Net);
        Assert.Equal(0.7, unit.Scale);
        Assert.Equal((0.1, 0.9), (unit.GuidanceStart, unit.GuidanceEnd));

        // The hash of the control image's RGB pixels, computed here from the decoded file.
        using var decoded = Image.Load<Rgb24>(control);
        var rgb = new byte[64 * 64 * 3];
        decoded.CopyPixelDataTo(rgb);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(rgb)), unit.ImageSha256);

        using var png = Image.Load(output);
        var parameters = png.Metadata.GetPngMetadata().TextData.Single(t => t.Keyword == ImageRecipe.ParametersKeyword).Value;
        Assert.Contains("ControlNet 0: \"Model: edges-net, Weight: 0.7, Guidance Start: 0.1, Guidance End: 0.9\"", parameters);

        var again = await Run("generate", "--from-image", output, "--model", model, "--output", Path.Combine(_dir, "again.png"));
        Assert.Equal(2, again.Exit);
        Assert.Contains("--controlnet", again.Err);
    }

    [Theory]
    [InlineData("--control-image", "C")]
    [InlineData("--control-scale", "0.5")]
    public async Task ControlNet_options_without_controlnet_are_usage_errors(string flag, string value)
    {
        var control = StepImage("c.png", 64, 64, 3);
        var (exit, _, err) = await Run("generate", "--model", SyntheticModels.Get(), "--prompt", "x", "--steps", "2", "--guidance", "5",
            flag, value == "C" ? control : value, "--output", Path.Combine(_dir, "o.png"));
        Assert.Equal(2, exit);
        Assert.Contains("--controlnet", err);
    }

    [Fact]
    public async Task Mismatched_counts_and_windows_are_usage_errors()
    {
        var model = SyntheticModels.Get(new SyntheticModelOptions { ControlNetUNet = ControlNetUNetLayout.OnnxStackFolder });
        var net = Path.Combine(_dir, "n");
        SyntheticSdxlModel.WriteControlNet(net);
        var control = StepImage("c.png", 64, 64, 3);
        string[] common = ["generate", "--model", model, "--prompt", "x", "--steps", "2", "--guidance", "5", "--output", Path.Combine(_dir, "o.png")];
        var twoNets = await Run([.. common, "--controlnet", net, "--controlnet", net, "--control-image", control]);
        Assert.Equal(2, twoNets.Exit);
        Assert.Contains("one --control-image per --controlnet", twoNets.Err);
        var window = await Run([.. common, "--controlnet", net, "--control-image", control, "--control-start", "0.8", "--control-end", "0.2"]);
        Assert.Equal(2, window.Exit);
        Assert.Contains("--control-start", window.Err);
    }
}
