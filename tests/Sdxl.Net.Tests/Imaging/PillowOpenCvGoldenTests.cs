using System.Text.Json;
using Sdxl.Net.ControlNet;
using Sdxl.Net.Imaging;

namespace Sdxl.Net.Tests.Imaging;

/// <summary>
/// The resampler and the Canny detector against the real libraries: TestData/golden/imaging/imaging.json was written by
/// Pillow 9.4.0 (<c>Image.resize(size, Image.LANCZOS)</c>, and diffusers' crop geometry on it) and OpenCV 4.6.0 (<c>cv2.Canny(image, low, high)</c>) on
/// small synthetic pictures with gradients, hard edges and noise (make_imaging_golden.py beside it). Exact equality.
/// </summary>
public sealed class PillowOpenCvGoldenTests
{
    private static readonly Lazy<JsonDocument> Golden = new(() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.Golden, "imaging", "imaging.json"))));

    public static TheoryData<int> ResizeCases() => Indices("resize");

    public static TheoryData<int> CannyCases() => Indices("canny");

    public static TheoryData<int> CropCases() => Indices("crop");

    [Theory]
    [MemberData(nameof(ResizeCases))]
    public void Lanczos_resize_equals_pillow(int index)
    {
        var c = Golden.Value.RootElement.GetProperty("resize")[index];
        int w = c.GetProperty("width").GetInt32(), h = c.GetProperty("height").GetInt32();
        int nw = c.GetProperty("new_width").GetInt32(), nh = c.GetProperty("new_height").GetInt32();
        var actual = PilResampler.Resize(Bytes(c, "pixels"), w, h, c.GetProperty("channels").GetInt32(), nw, nh);
        var expected = Bytes(c, "expected");
        Assert.Equal(expected.Length, actual.Length);
        int differing = expected.Where((v, i) => v != actual[i]).Count();
        Assert.True(differing == 0, $"{w}x{h} -> {nw}x{nh}: {differing} of {expected.Length} values differ from Pillow");
    }

    // diffusers' resize_mode="crop" (_resize_and_crop: scale to cover with floor division, paste centred on black).
    [Theory]
    [MemberData(nameof(CropCases))]
    public void Center_crop_equals_diffusers_resize_and_crop(int index)
    {
        var c = Golden.Value.RootElement.GetProperty("crop")[index];
        int w = c.GetProperty("width").GetInt32(), h = c.GetProperty("height").GetInt32();
        int nw = c.GetProperty("new_width").GetInt32(), nh = c.GetProperty("new_height").GetInt32();
        var actual = ImageInput.Fit(Bytes(c, "pixels"), w, h, 3, nw, nh, ImageResizeMode.CenterCrop);
        Assert.Equal(Bytes(c, "expected"), actual);
    }

    [Theory]
    [MemberData(nameof(CannyCases))]
    public void Canny_equals_opencv(int index)
    {
        var c = Golden.Value.RootElement.GetProperty("canny")[index];
        int w = c.GetProperty("width").GetInt32(), h = c.GetProperty("height").GetInt32();
        var actual = CannyEdgeDetector.Edges(Bytes(c, "pixels"), w, h, 3, c.GetProperty("low").GetDouble(), c.GetProperty("high").GetDouble());
        var expected = Bytes(c, "expected");
        int differing = expected.Where((v, i) => v != actual[i]).Count();
        Assert.True(differing == 0, $"{w}x{h}: {differing} of {expected.Length} edge pixels differ from OpenCV ({expected.Count(v => v != 0)} edges expected)");
    }

    private static byte[] Bytes(JsonElement c, string name) => Convert.FromBase64String(c.GetProperty(name).GetString()!);

    private static TheoryData<int> Indices(string kind)
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < Golden.Value.RootElement.GetProperty(kind).GetArrayLength(); i++)
        {
            data.Add(i);
        }

        return data;
    }
}
