using Sdxl.Net.Imaging;

namespace Sdxl.Net.Tests.Imaging;

public sealed class NpyFileTests
{
    [Fact]
    public void Round_trips_float32_arrays()
    {
        var data = Enumerable.Range(0, 2 * 3 * 4).Select(i => (float)Math.Sin(i)).ToArray();
        using var stream = new MemoryStream();
        NpyFile.Write(stream, data, [2, 3, 4]);
        Assert.Equal(0, (stream.Length - (2 * 3 * 4 * 4)) % 64);
        stream.Position = 0;
        var (read, shape) = NpyFile.Read(stream);
        Assert.Equal([2, 3, 4], shape);
        Assert.Equal(data, read);
    }

    [TinySdxlFact]
    public void Reads_numpy_written_latents()
    {
        var (data, shape) = NpyFile.Read(Path.Combine(TestPaths.TinySdxl!, "cases", "01_euler", "latents.npy"));
        Assert.Equal([1, 4, 8, 8], shape);
        Assert.Equal(256, data.Length);
        Assert.InRange(data.Select(Math.Abs).Average(), 0.3, 1.5);
    }

    [Fact]
    public void Rejects_non_npy_data_with_a_clear_message()
    {
        var e = Assert.Throws<FormatException>(() => NpyFile.Read(new MemoryStream([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])));
        Assert.Contains("magic", e.Message);
    }

    [Fact]
    public void Rejects_truncated_data()
    {
        using var stream = new MemoryStream();
        NpyFile.Write(stream, new float[16], [16]);
        var bytes = stream.ToArray()[..^8];
        var e = Assert.Throws<FormatException>(() => NpyFile.Read(new MemoryStream(bytes)));
        Assert.Contains("truncated", e.Message);
    }
}
