using Sdxl.Net.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;

namespace Sdxl.Net.Tests.Imaging;

public sealed class StreamImageSinkTests
{
    [Fact]
    public async Task Each_image_goes_to_its_own_stream_as_a_png_with_the_recipe()
    {
        var streams = new List<MemoryStream>();
        var sink = new StreamImageSink((_, image, _) =>
        {
            Assert.Equal(streams.Count, image.Index);
            var stream = new MemoryStream();
            streams.Add(stream);
            return ValueTask.FromResult<Stream>(stream);
        }, leaveOpen: true);
        var result = ImageSinkTestData.Result("a red fox", count: 2);

        await sink.WriteAsync(result);

        Assert.Equal(2, streams.Count);
        for (int i = 0; i < 2; i++)
        {
            streams[i].Position = 0;
            using var decoded = Image.Load<Rgb24>(streams[i]);
            using var expected = result.Images[i].ToImage();
            ImageFileSinkTests.AssertSamePixels(expected, decoded);
            var text = decoded.Metadata.GetPngMetadata().TextData;
            Assert.Contains(text, t => t.Keyword == ImageRecipe.ParametersKeyword && t.Value.StartsWith("a red fox\nSteps: 4", StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task Streams_are_disposed_unless_left_open()
    {
        var stream = new MemoryStream();
        await new StreamImageSink((_, _, _) => ValueTask.FromResult<Stream>(stream)).WriteAsync(ImageSinkTestData.Result("x"));
        Assert.False(stream.CanWrite);
    }

    [Fact]
    public async Task A_read_only_stream_is_reported()
    {
        var sink = new StreamImageSink((_, _, _) => ValueTask.FromResult<Stream>(new MemoryStream([], writable: false)));
        var e = await Assert.ThrowsAsync<InvalidOperationException>(async () => await sink.WriteAsync(ImageSinkTestData.Result("x")));
        Assert.Contains("not writable", e.Message);
    }
}
