using System.Text;
using Sdxl.Net.Imaging;
using Sdxl.Net.Runtime;
using Sdxl.Net.Tests.Imaging;

namespace Sdxl.Net.Tests.Reliability;

/// <summary>Temporary names within NAME_MAX, temporary files removed at exit, recipes the reader always accepts, OS errors in words.</summary>
public sealed class FileSafetyTests
{
    [Theory]
    [InlineData(200, 'a')]
    [InlineData(218, 'a')]
    [InlineData(251, 'a')]
    [InlineData(85, 'é')]
    [InlineData(63, '\u6f22')]
    public async Task Output_names_up_to_255_bytes_are_written_through_a_temporary_name_that_fits(int stemLength, char c)
    {
        // 218-255-byte names used to fail after generating: ".NAME.GUID.tmp" is 38 bytes longer.
        using var folder = new TempFolder();
        var name = new string(c, stemLength) + ".png";
        Assert.True(Encoding.UTF8.GetByteCount(name) <= 255);
        var temp = AtomicFile.TemporaryName(name);
        Assert.True(Encoding.UTF8.GetByteCount(temp) <= AtomicFile.MaxNameBytes, $"{Encoding.UTF8.GetByteCount(temp)} bytes");

        await new PngFileSink(folder[name]).WriteAsync(ImageSinkTestData.Result("a cat"));
        Assert.Equal([name], folder.Files());
    }

    [Fact]
    public void Shortened_temporary_names_of_different_outputs_differ()
    {
        // The hash of the whole name keeps two long names with a common prefix apart.
        var a = AtomicFile.TemporaryName(new string('x', 240) + "-a.png");
        var b = AtomicFile.TemporaryName(new string('x', 240) + "-b.png");
        Assert.NotEqual(a[..a.IndexOf('~', StringComparison.Ordinal)] + a.Substring(a.IndexOf('~', StringComparison.Ordinal), 9), b[..b.IndexOf('~', StringComparison.Ordinal)] + b.Substring(b.IndexOf('~', StringComparison.Ordinal), 9));
    }

    [Fact]
    public async Task A_write_in_flight_at_process_exit_leaves_no_temporary_file()
    {
        // What the exit handler does when SIGTERM or a second Ctrl+C ends the process mid-write.
        using var folder = new TempFolder();
        var started = new TaskCompletionSource();
        var release = new TaskCompletionSource();
        var write = AtomicFile.WriteAsync(folder["out.png"], async (stream, ct) =>
        {
            await stream.WriteAsync(new byte[1000], ct);
            await stream.FlushAsync(ct);
            started.SetResult();
            await release.Task;
        }, CancellationToken.None);
        await started.Task;
        Assert.Single(folder.Files());
        Assert.Contains(AtomicFile.InFlightFiles, f => f.StartsWith(folder.Path, StringComparison.Ordinal));

        AtomicFile.DeleteInFlight();
        Assert.Empty(folder.Files());
        release.SetResult();
        await Assert.ThrowsAnyAsync<IOException>(() => write);
        Assert.Empty(folder.Files());
    }

    [Fact]
    public async Task The_largest_recipe_the_writer_can_produce_is_read_back()
    {
        // Four prompts at the 100 000-character limit, of characters JSON escapes to 6 bytes each (2.4 MB): the
        // reader's cap used to refuse PNGs the CLI itself wrote.
        using var folder = new TempFolder();
        string Long(char c) => string.Concat(Enumerable.Repeat("é\u0001" + c, 100_000 / 3)) + "a";
        var result = ImageSinkTestData.Result(Long('x'));
        var request = result.Request with { Prompt2 = Long('y'), NegativePrompt = Long('z'), NegativePrompt2 = Long('w') };
        result = new GenerationResult(request, result.Images, result.Seed, result.Scheduler, [], result.Elapsed, result.Model);
        Assert.Equal(100_000, request.Prompt.Length);

        await new PngFileSink(folder["big.png"]).WriteAsync(result);
        var read = ImageRecipe.ReadRequest(folder["big.png"])!;
        Assert.Equal(request.Prompt, read.Prompt);
        Assert.Equal(request.NegativePrompt2, read.NegativePrompt2);
    }

    [Fact]
    public void Symbolic_link_loop_as_a_model_file_is_named_in_words()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        using var model = Faults.CopyModel();
        File.Delete(model["unet/model.onnx"]);
        File.CreateSymbolicLink(model["unet/model.onnx"], model["unet/model.onnx"]);
        var e = Assert.Throws<SdxlModelException>(() => Faults.Pipeline(model.Path).Dispose());
        Assert.Contains("unet: cannot read", e.Message);
        Assert.Contains("too many levels of symbolic links", e.Message);
        Assert.DoesNotContain("system error", e.Message);
    }

    [Fact]
    public void Model_file_that_is_a_directory_is_named()
    {
        using var model = Faults.CopyModel();
        File.Delete(model["vae_decoder/model.onnx"]);
        Directory.CreateDirectory(model["vae_decoder/model.onnx"]);
        var e = Assert.Throws<SdxlModelException>(() => Faults.Pipeline(model.Path).Dispose());
        Assert.Contains("vae_decoder:", e.Message);
        Assert.Contains("is a directory", e.Message);
    }

    [Theory]
    [InlineData("truncated")]
    [InlineData("empty")]
    [InlineData("directory")]
    public void Broken_external_data_is_a_model_exception_naming_the_file(string how)
    {
        // Real exports over 2 GB keep their weights in model.onnx_data: a cut-off or unreadable one fails the load
        // as an SdxlModelException naming component and file, never a KeyNotFoundException or a native log.
        using var model = Faults.CopyModel(new Sdxl.Net.Synthetic.SyntheticModelOptions { UnetExternalData = true });
        var data = model["unet/model.onnx_data"];
        Assert.True(File.Exists(data));
        switch (how)
        {
            case "truncated":
                var bytes = File.ReadAllBytes(data);
                File.WriteAllBytes(data, bytes[..(bytes.Length / 2)]);
                break;
            case "empty":
                File.WriteAllBytes(data, []);
                break;
            default:
                File.Delete(data);
                Directory.CreateDirectory(data);
                break;
        }

        var e = Assert.Throws<SdxlModelException>(() => Faults.Pipeline(model.Path).Dispose());
        Assert.StartsWith("unet:", e.Message);
        Assert.Contains("model.onnx", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Intact_external_data_builds()
    {
        using var model = Faults.CopyModel(new Sdxl.Net.Synthetic.SyntheticModelOptions { UnetExternalData = true });
        using var pipeline = Faults.Pipeline(model.Path);
        Assert.Equal(16, pipeline.PixelMultiple);
    }

    [Fact]
    public void Safetensors_header_with_invalid_utf8_is_invalid_data()
    {
        // The fuzz command's finding (seed 1): a tensor name holding byte 0xFF made JsonDocument throw
        // InvalidOperationException when the name was read.
        using var folder = new TempFolder();
        var json = Encoding.UTF8.GetBytes("{\"a\u00e9\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}");
        int at = Array.IndexOf(json, (byte)0xC3);
        json[at] = 0xFF;
        var file = new byte[8 + json.Length + 4];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)json.Length);
        json.CopyTo(file, 8);
        File.WriteAllBytes(folder["bad.safetensors"], file);
        var e = Assert.Throws<InvalidDataException>(() => Sdxl.Net.Lora.SafetensorsFile.Open(folder["bad.safetensors"]));
        Assert.Contains("not valid UTF-8", e.Message);
    }

    [Theory]
    [InlineData("Load model from /m/unet/model.onnx failed: system error number 13", "failed: permission denied")]
    [InlineData("open: system error number 40", "too many levels of symbolic links")]
    [InlineData("system error number 9999", "system error 9999")]
    public void Native_error_numbers_are_translated(string message, string expected) =>
        Assert.Contains(expected, FileAccessCheck.Translate(message));
}
