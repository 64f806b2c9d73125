using System.Text.Json;
using Sdxl.Net.Randomness;
using Xunit;

namespace Sdxl.Net.Tests.Randomness;

/// <summary>
/// <see cref="TorchCpuGenerator"/> against draws recorded from torch 1.13's CPU generator (torch_randn.json):
/// the AVX2 records with <see cref="TorchNormalKernel.Avx2"/>, the portable-kernel records with
/// <see cref="TorchNormalKernel.Scalar"/>, every value compared bit for bit.
/// </summary>
public sealed class TorchCpuGeneratorTests
{
    public static TheoryData<string, int> AllRecords => TorchRandnGolden.AllRecords();

    [Theory]
    [MemberData(nameof(AllRecords))]
    public void Raw_words_match_the_engine_including_the_second_state_regeneration(string set, int index)
    {
        var record = TorchRandnGolden.Record(set, index);
        var generator = NewGenerator(set, record);

        var first16 = TorchRandnGolden.UInt32s(record.GetProperty("mt19937_raw_u32_first16"));
        var words = new uint[630];
        for (var i = 0; i < words.Length; i++)
        {
            words[i] = generator.NextUInt32();
        }

        Assert.Equal(first16, words[..16]);
        Assert.Equal(TorchRandnGolden.UInt32s(record.GetProperty("mt19937_raw_u32_index_620_to_629")), words[620..630]);
    }

    [Theory]
    [MemberData(nameof(AllRecords))]
    public void Seed_reports_the_initial_seed(string set, int index)
    {
        var record = TorchRandnGolden.Record(set, index);

        Assert.Equal(record.GetProperty("initial_seed").GetUInt64(), NewGenerator(set, record).Seed);
    }

    [Theory]
    [MemberData(nameof(AllRecords))]
    public void Float32_uniforms_match_torch_rand(string set, int index)
    {
        var record = TorchRandnGolden.Record(set, index);

        var generator = NewGenerator(set, record);
        var first = new float[16];
        var second = new float[16];
        generator.NextUniform(first);
        generator.NextUniform(second);
        BitExact.Equal(TorchRandnGolden.Floats(record.GetProperty("rand_16")), first, "rand_16");
        BitExact.Equal(TorchRandnGolden.Floats(record.GetProperty("rand_16_second_draw")), second, "rand_16_second_draw");

        var latent = new float[256];
        NewGenerator(set, record).NextUniform(latent);
        BitExact.Equal(TorchRandnGolden.Floats(record.GetProperty("rand_1x4x8x8")), latent, "rand_1x4x8x8");
    }

    [Theory]
    [MemberData(nameof(AllRecords))]
    public void Float64_uniforms_match_torch_rand(string set, int index)
    {
        var record = TorchRandnGolden.Record(set, index);
        var values = new double[8];

        NewGenerator(set, record).NextUniform(values);

        BitExact.Equal(TorchRandnGolden.Doubles(record.GetProperty("rand_float64_8")), values, "rand_float64_8");
    }

    [Theory]
    [MemberData(nameof(AllRecords))]
    public void Float32_normals_of_a_latent_shape_match_torch_randn_draw_after_draw(string set, int index)
    {
        var record = TorchRandnGolden.Record(set, index);

        var generator = NewGenerator(set, record);
        var first = new float[256];
        var second = new float[256];
        generator.NextNormal(first);
        generator.NextNormal(second);
        BitExact.Equal(TorchRandnGolden.Floats(record.GetProperty("randn_1x4x8x8")), first, "randn_1x4x8x8");
        BitExact.Equal(
            TorchRandnGolden.Floats(record.GetProperty("randn_1x4x8x8_second_draw_same_generator")),
            second,
            "randn_1x4x8x8 second draw");

        var larger = new float[1024];
        NewGenerator(set, record).NextNormal(larger);
        BitExact.Equal(TorchRandnGolden.Floats(record.GetProperty("randn_1x4x16x16")), larger, "randn_1x4x16x16");
    }

    [Theory]
    [MemberData(nameof(AllRecords))]
    public void Float32_normals_of_every_recorded_size_match_torch_randn(string set, int index)
    {
        var record = TorchRandnGolden.Record(set, index);
        var sizes = record.EnumerateObject()
            .Select(p => p.Name)
            .Where(name => name.StartsWith("randn_", StringComparison.Ordinal) && int.TryParse(name["randn_".Length..], out _))
            .ToArray();

        // Serial sizes (< 16), whole blocks and sizes whose last block is redrawn must all be present.
        Assert.Contains("randn_15", sizes);
        Assert.Contains("randn_16", sizes);
        Assert.Contains("randn_17", sizes);
        Assert.Contains("randn_33", sizes);
        foreach (var name in sizes)
        {
            var expected = TorchRandnGolden.Floats(record.GetProperty(name));
            var actual = new float[int.Parse(name["randn_".Length..], System.Globalization.CultureInfo.InvariantCulture)];

            NewGenerator(set, record).NextNormal(actual);

            BitExact.Equal(expected, actual, name);
        }
    }

    [Theory]
    [MemberData(nameof(AllRecords))]
    public void Serial_draw_leaves_a_cached_normal_that_the_block_path_ignores(string set, int index)
    {
        var record = TorchRandnGolden.Record(set, index).GetProperty("randn_5_then_20_same_generator");
        var generator = NewGenerator(set, TorchRandnGolden.Record(set, index));
        var first = new float[5];
        var second = new float[20];

        generator.NextNormal(first);
        generator.NextNormal(second);

        BitExact.Equal(TorchRandnGolden.Floats(record.GetProperty("first")), first, "randn(5)");
        BitExact.Equal(TorchRandnGolden.Floats(record.GetProperty("second")), second, "randn(20) after randn(5)");
    }

    [Fact]
    public void Serial_draws_continue_from_the_cached_normal()
    {
        // randn(1) draws a pair and caches the sine half, which the next randn(1) returns: together they must equal
        // one randn(2) from a fresh generator (torch_randn.json randn_2).
        var record = TorchRandnGolden.Record(TorchRandnGolden.Avx2Records, 0);
        var generator = NewGenerator(TorchRandnGolden.Avx2Records, record);
        var values = new float[2];

        generator.NextNormal(values.AsSpan(0, 1));
        generator.NextNormal(values.AsSpan(1, 1));

        BitExact.Equal(TorchRandnGolden.Floats(record.GetProperty("randn_2")), values, "randn(1) twice");
    }

    [Theory]
    [MemberData(nameof(AllRecords))]
    public void Large_float32_draw_and_the_draw_after_it_match_torch_randn(string set, int index)
    {
        var record = TorchRandnGolden.Record(set, index);
        var summary = record.GetProperty("randn_2x4x128x128");
        var values = new float[summary.GetProperty("numel").GetInt32()];
        var generator = NewGenerator(set, record);

        generator.NextNormal(values);

        BitExact.Equal(TorchRandnGolden.Floats(summary.GetProperty("first64")), values.AsSpan(0, 64), "first64");
        BitExact.Equal(TorchRandnGolden.Floats(summary.GetProperty("last64")), values.AsSpan(values.Length - 64), "last64");
        foreach (var point in summary.GetProperty("values_at").EnumerateObject())
        {
            var at = int.Parse(point.Name, System.Globalization.CultureInfo.InvariantCulture);
            BitExact.Equal([point.Value.GetSingle()], values.AsSpan(at, 1), $"value at {at}");
        }

        double sum = 0, sumOfSquares = 0;
        foreach (var value in values)
        {
            sum += value;
            sumOfSquares += (double)value * value;
        }

        AssertRelativelyClose(summary.GetProperty("sum_float64").GetDouble(), sum, "sum");
        AssertRelativelyClose(summary.GetProperty("sum_sq_float64").GetDouble(), sumOfSquares, "sum of squares");

        var next = new float[256];
        generator.NextNormal(next);
        BitExact.Equal(
            TorchRandnGolden.Floats(record.GetProperty("randn_2x4x128x128_second_draw_1x4x8x8")), next, "draw after 2x4x128x128");
    }

    [Theory]
    [MemberData(nameof(AllRecords))]
    public void Float64_normals_match_torch_randn_on_both_paths(string set, int index)
    {
        var record = TorchRandnGolden.Record(set, index);
        var serial = new double[8];
        var blocks = new double[16];

        NewGenerator(set, record).NextNormal(serial);
        NewGenerator(set, record).NextNormal(blocks);

        BitExact.Equal(TorchRandnGolden.Doubles(record.GetProperty("randn_float64_8")), serial, "randn_float64_8");
        BitExact.Equal(TorchRandnGolden.Doubles(record.GetProperty("randn_float64_16")), blocks, "randn_float64_16");
    }

    [Theory]
    [MemberData(nameof(AllRecords))]
    public void Integers_match_torch_randint_for_32_and_64_bit_ranges(string set, int index)
    {
        var record = TorchRandnGolden.Record(set, index);
        (string Name, long Low, long High, int Count)[] cases =
        [
            ("randint_0_10_x32", 0, 10, 32),
            ("randint_0_1000_x16", 0, 1000, 16),
            ("randint_0_2pow32_x8", 0, 1L << 32, 8),
            ("randint_0_2pow33_x8", 0, 1L << 33, 8),
            ("randint_minus5_5_x16", -5, 5, 16),
        ];

        foreach (var (name, low, high, count) in cases)
        {
            var values = new long[count];
            NewGenerator(set, record).NextInt64(low, high, values);
            Assert.Equal(TorchRandnGolden.Int64s(record.GetProperty(name)), values);
        }
    }

    [Theory]
    [MemberData(nameof(AllRecords))]
    public void Seeds_that_agree_modulo_two_to_the_32_draw_the_same_stream(string set, int index)
    {
        var record = TorchRandnGolden.Record(set, index);
        var seed = record.GetProperty("seed").GetUInt64() + (5UL << 32);
        var generator = new TorchCpuGenerator(seed, KernelOf(set));
        var values = new float[256];

        generator.NextNormal(values);

        Assert.Equal(seed, generator.Seed);
        BitExact.Equal(TorchRandnGolden.Floats(record.GetProperty("randn_1x4x8x8")), values, $"randn_1x4x8x8, seed {seed}");
    }

    [Fact]
    public void Kernel_defaults_to_avx2()
    {
        Assert.Equal(TorchNormalKernel.Avx2, new TorchCpuGenerator(7).Kernel);
        Assert.Equal(TorchNormalKernel.Scalar, new TorchCpuGenerator(7, TorchNormalKernel.Scalar).Kernel);
    }

    [Fact]
    public void Undefined_kernel_is_rejected()
    {
        var exception = Assert.Throws<ArgumentOutOfRangeException>(() => new TorchCpuGenerator(0, (TorchNormalKernel)7));

        Assert.Equal("kernel", exception.ParamName);
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(5, -5)]
    public void Empty_integer_range_is_rejected(long low, long high)
    {
        var exception = Assert.Throws<ArgumentException>(() => new TorchCpuGenerator(0).NextInt64(low, high, new long[4]));

        Assert.Contains($"low = {low} and high = {high}", exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Empty_requests_draw_nothing()
    {
        var generator = new TorchCpuGenerator(0);

        generator.NextNormal(Span<float>.Empty);
        generator.NextNormal(Span<double>.Empty);
        generator.NextUniform(Span<float>.Empty);
        generator.NextInt64(0, 10, Span<long>.Empty);

        var record = TorchRandnGolden.Record(TorchRandnGolden.Avx2Records, 0);
        Assert.Equal(record.GetProperty("mt19937_raw_u32_first16")[0].GetUInt32(), generator.NextUInt32());
    }

    private static TorchNormalKernel KernelOf(string set) =>
        set == TorchRandnGolden.ScalarRecords ? TorchNormalKernel.Scalar : TorchNormalKernel.Avx2;

    private static TorchCpuGenerator NewGenerator(string set, JsonElement record) =>
        new(record.GetProperty("seed").GetUInt64(), KernelOf(set));

    private static void AssertRelativelyClose(double expected, double actual, string what)
    {
        var tolerance = 1e-9 * Math.Max(1.0, Math.Abs(expected));
        Assert.True(Math.Abs(expected - actual) <= tolerance, $"{what}: expected {expected:R}, got {actual:R}.");
    }
}
