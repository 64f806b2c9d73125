using Sdxl.Net.Imaging;
using Sdxl.Net.Tests.Synthetic;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Formats.Webp;
using SixLabors.ImageSharp.PixelFormats;

namespace Sdxl.Net.Tests.Imaging;

public sealed class ImageFileSinkTests
{
    private static readonly DateTimeOffset Noon = new(2025, 3, 4, 12, 5, 6, 789, TimeSpan.Zero);

    [Fact]
    public async Task Template_placeholders_are_substituted_and_the_batch_is_written_under_the_root()
    {
        using var root = new TempDirectory();
        var sink = new ImageFileSink(root.Path, "out/{timestamp}-{seed}-{index}-{prompt-slug}.png", timeProvider: new FixedTime(Noon));
        var result = ImageSinkTestData.Result("A Lighthouse, at dawn!", count: 2, seed: 7);

        await sink.WriteAsync(result);

        var first = Path.Combine(root.Path, "out", "20250304-120506-789-7-0-a-lighthouse-at-dawn.png");
        var second = Path.Combine(root.Path, "out", "20250304-120506-789-8-1-a-lighthouse-at-dawn.png");
        Assert.Equal([first, second], Directory.GetFiles(Path.Combine(root.Path, "out")).Order(StringComparer.Ordinal));
        using var decoded = Image.Load<Rgb24>(second);
        using var expected = result.Images[1].ToImage();
        AssertSamePixels(expected, decoded);
        Assert.Equal("A Lighthouse, at dawn!", ImageRecipe.ReadRequest(first)!.Prompt);
    }

    [Theory]
    [InlineData("../../etc/passwd", "etc-passwd")]
    [InlineData("..\\..\\windows\\system32", "windows-system32")]
    [InlineData("/etc/shadow", "etc-shadow")]
    [InlineData("C:\\boot.ini", "c-boot-ini")]
    [InlineData("....", "image")]
    [InlineData("", "image")]
    [InlineData("smörgåsbord\0 ~/x", "sm-rg-sbord-x")]
    public void Hostile_prompts_become_plain_slugs(string prompt, string slug)
    {
        Assert.Equal(slug, ImageFileSink.Slugify(prompt));
    }

    [Fact]
    public void Slugs_are_capped()
    {
        var slug = ImageFileSink.Slugify(string.Concat(Enumerable.Repeat("ab ", 100)));
        Assert.True(slug.Length <= ImageFileSink.MaxSlugLength, slug);
        Assert.False(slug.EndsWith('-'));
        Assert.StartsWith("ab-ab-ab", slug);
    }

    [Fact]
    public async Task A_hostile_prompt_cannot_write_outside_the_root()
    {
        using var parent = new TempDirectory();
        var root = Path.Combine(parent.Path, "a", "b");
        var sink = new ImageFileSink(root, "{prompt-slug}.png");

        await sink.WriteAsync(ImageSinkTestData.Result("../../escaped"));

        Assert.Equal([Path.Combine(root, "escaped.png")], Directory.GetFiles(parent.Path, "*", SearchOption.AllDirectories));
    }

    [Theory]
    [InlineData("../out/{index}.png")]
    [InlineData("out/../../{index}.png")]
    [InlineData("./{index}.png")]
    [InlineData("/tmp/{index}.png")]
    [InlineData("C:/{index}.png")]
    [InlineData("out\\{index}.png")]
    [InlineData("out//{index}.png")]
    public void Templates_that_could_leave_the_root_are_rejected(string template)
    {
        var e = Assert.Throws<ArgumentException>(() => new ImageFileSink("root", template));
        Assert.Equal("template", e.ParamName);
        Assert.Contains(template, e.Message);
    }

    [Theory]
    [InlineData("{index}.gif", "Unsupported image file extension '.gif'")]
    [InlineData("{index}", "Unsupported image file extension ''")]
    [InlineData("{idx}.png", "unknown placeholder near '{idx}.png'")]
    [InlineData("{index.png", "unknown placeholder near '{index.png'")]
    [InlineData(".png", "no file name before its extension")]
    public void Malformed_templates_are_rejected_with_the_reason(string template, string reason)
    {
        var e = Assert.Throws<ArgumentException>(() => new ImageFileSink("root", template));
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public async Task A_template_that_names_two_batch_images_alike_writes_nothing()
    {
        using var root = new TempDirectory();
        var sink = new ImageFileSink(root.Path, "{prompt-slug}.png");

        var e = await Assert.ThrowsAsync<InvalidOperationException>(async () => await sink.WriteAsync(ImageSinkTestData.Result("cat", count: 2)));

        Assert.Contains("add {index}", e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(root.Path));
    }

    [Fact]
    public async Task A_failure_part_way_removes_the_files_already_written()
    {
        using var root = new TempDirectory();
        // The second image's target is an existing directory, so its rename fails after the first file landed.
        Directory.CreateDirectory(Path.Combine(root.Path, "img-1.png"));
        var sink = new ImageFileSink(root.Path, "img-{index}.png");

        await Assert.ThrowsAnyAsync<IOException>(async () => await sink.WriteAsync(ImageSinkTestData.Result("cat", count: 2)));

        Assert.Equal([Path.Combine(root.Path, "img-1.png")], Directory.GetFileSystemEntries(root.Path));
    }

    [Theory]
    [InlineData("x.png", typeof(PngFormat))]
    [InlineData("x.jpg", typeof(JpegFormat))]
    [InlineData("x.JPEG", typeof(JpegFormat))]
    [InlineData("x.webp", typeof(WebpFormat))]
    public async Task The_extension_chooses_the_encoder(string template, Type format)
    {
        using var root = new TempDirectory();
        var sink = new ImageFileSink(root.Path, template);

        await sink.WriteAsync(ImageSinkTestData.Result("cat"));

        var file = Path.Combine(root.Path, template);
        Assert.IsType(format, Image.DetectFormat(file));
        using var decoded = Image.Load<Rgb24>(file);
        Assert.Equal((16, 8), (decoded.Width, decoded.Height));
    }

    [Fact]
    public async Task Jpeg_and_webp_sinks_write_decodable_files_close_to_the_pixels()
    {
        using var root = new TempDirectory();
        var result = ImageSinkTestData.Result("cat", count: 2, width: 32, height: 32);

        await new JpegFileSink(Path.Combine(root.Path, "a.jpg"), quality: 95).WriteAsync(result);
        await new WebpFileSink(Path.Combine(root.Path, "a.webp"), quality: 95).WriteAsync(result);

        using var expected = result.Images[1].ToImage();
        foreach (var file in new[] { "a_1.jpg", "a_1.webp" })
        {
            using var decoded = Image.Load<Rgb24>(Path.Combine(root.Path, file));
            Assert.InRange(MeanAbsoluteError(expected, decoded), 0, 12);
        }

        Assert.Equal(4, Directory.GetFiles(root.Path).Length);
    }

    [Fact]
    public void Quality_outside_1_to_100_is_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new JpegFileSink("a.jpg", 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new WebpFileSink("a.webp", 101));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ImageFileSink("root", "a.jpg", quality: -1));
    }

    internal static void AssertSamePixels(Image<Rgb24> expected, Image<Rgb24> actual)
    {
        Assert.Equal((expected.Width, expected.Height), (actual.Width, actual.Height));
        for (int y = 0; y < expected.Height; y++)
        {
            for (int x = 0; x < expected.Width; x++)
            {
                Assert.Equal(expected[x, y], actual[x, y]);
            }
        }
    }

    private static double MeanAbsoluteError(Image<Rgb24> expected, Image<Rgb24> actual)
    {
        double sum = 0;
        for (int y = 0; y < expected.Height; y++)
        {
            for (int x = 0; x < expected.Width; x++)
            {
                Rgb24 e = expected[x, y], a = actual[x, y];
                sum += Math.Abs(e.R - a.R) + Math.Abs(e.G - a.G) + Math.Abs(e.B - a.B);
            }
        }

        return sum / (3.0 * expected.Width * expected.Height);
    }

    private sealed class FixedTime(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }
}
