using Sdxl.Net.Randomness;
using Xunit;

namespace Sdxl.Net.Tests.Randomness;

/// <summary>
/// <see cref="PerImageRandomSource"/>: a batch drawn with one generator per image, as diffusers does with a
/// generator list, checked against torch's recorded draws for each seed.
/// </summary>
public sealed class PerImageRandomSourceTests
{
    [Fact]
    public void Each_image_gets_the_draws_of_its_own_generator()
    {
        var first = TorchRandnGolden.Record(TorchRandnGolden.Avx2Records, 0);
        var second = TorchRandnGolden.Record(TorchRandnGolden.Avx2Records, 1);
        var source = new PerImageRandomSource(
        [
            new TorchCpuGenerator(first.GetProperty("seed").GetUInt64()),
            new TorchCpuGenerator(second.GetProperty("seed").GetUInt64()),
        ]);
        var batch = new float[2 * 256];
        var secondBatch = new float[2 * 256];

        source.NextNormal(batch);
        source.NextNormal(secondBatch);

        BitExact.Equal(TorchRandnGolden.Floats(first.GetProperty("randn_1x4x8x8")), batch.AsSpan(0, 256), "image 0");
        BitExact.Equal(TorchRandnGolden.Floats(second.GetProperty("randn_1x4x8x8")), batch.AsSpan(256), "image 1");
        BitExact.Equal(
            TorchRandnGolden.Floats(first.GetProperty("randn_1x4x8x8_second_draw_same_generator")),
            secondBatch.AsSpan(0, 256),
            "image 0, second draw");
        BitExact.Equal(
            TorchRandnGolden.Floats(second.GetProperty("randn_1x4x8x8_second_draw_same_generator")),
            secondBatch.AsSpan(256),
            "image 1, second draw");
    }

    [Fact]
    public void Uniforms_are_split_the_same_way()
    {
        var first = TorchRandnGolden.Record(TorchRandnGolden.Avx2Records, 0);
        var second = TorchRandnGolden.Record(TorchRandnGolden.Avx2Records, 1);
        var source = new PerImageRandomSource(
        [
            new TorchCpuGenerator(first.GetProperty("seed").GetUInt64()),
            new TorchCpuGenerator(second.GetProperty("seed").GetUInt64()),
        ]);
        var batch = new float[2 * 16];

        source.NextUniform(batch);

        BitExact.Equal(TorchRandnGolden.Floats(first.GetProperty("rand_16")), batch.AsSpan(0, 16), "image 0");
        BitExact.Equal(TorchRandnGolden.Floats(second.GetProperty("rand_16")), batch.AsSpan(16), "image 1");
    }

    [Fact]
    public void A_single_source_draws_the_whole_request()
    {
        var record = TorchRandnGolden.Record(TorchRandnGolden.Avx2Records, 0);
        var source = new PerImageRandomSource([new TorchCpuGenerator(record.GetProperty("seed").GetUInt64())]);
        var values = new float[1024];

        source.NextNormal(values);

        BitExact.Equal(TorchRandnGolden.Floats(record.GetProperty("randn_1x4x16x16")), values, "single source");
        Assert.Equal(1, source.Count);
    }

    [Theory]
    [InlineData(255)]
    [InlineData(1)]
    public void Length_that_does_not_split_evenly_is_rejected(int length)
    {
        var source = new PerImageRandomSource([new TorchCpuGenerator(0), new TorchCpuGenerator(1)]);

        var normal = Assert.Throws<ArgumentException>(() => source.NextNormal(new float[length]));
        var uniform = Assert.Throws<ArgumentException>(() => source.NextUniform(new float[length]));

        Assert.Equal("destination", normal.ParamName);
        Assert.Contains($"{length} values", normal.Message, StringComparison.Ordinal);
        Assert.Contains("multiple of 2", normal.Message, StringComparison.Ordinal);
        Assert.Equal(normal.Message, uniform.Message);
    }

    [Fact]
    public void Empty_or_null_sources_are_rejected()
    {
        Assert.Throws<ArgumentNullException>(() => new PerImageRandomSource(null!));
        Assert.Throws<ArgumentException>(() => new PerImageRandomSource([]));
        var exception = Assert.Throws<ArgumentNullException>(() => new PerImageRandomSource([new TorchCpuGenerator(0), null!]));
        Assert.Contains("image 1", exception.Message, StringComparison.Ordinal);
    }
}
