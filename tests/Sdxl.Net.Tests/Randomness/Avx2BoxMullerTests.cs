using Sdxl.Net.Randomness;
using Xunit;

namespace Sdxl.Net.Tests.Randomness;

/// <summary>
/// The AVX2 block transform's two implementations: the lane-by-lane reference against torch's recorded values, and
/// the vectorized one against the reference.
/// </summary>
public sealed class Avx2BoxMullerTests
{
    public static TheoryData<int> Avx2RecordIndices => TorchRandnGolden.Avx2RecordIndices();

    [Theory]
    [MemberData(nameof(Avx2RecordIndices))]
    public void Reference_transform_of_torch_uniforms_gives_torch_normals(int index)
    {
        // randn of a multiple of 16 is rand of the same size followed by the block transform.
        var record = TorchRandnGolden.Record(TorchRandnGolden.Avx2Records, index);
        var values = new float[1024];
        new TorchCpuGenerator(record.GetProperty("seed").GetUInt64()).NextUniform(values);

        Avx2BoxMuller.TransformBlocksReference(values);

        BitExact.Equal(TorchRandnGolden.Floats(record.GetProperty("randn_1x4x16x16")), values, "reference transform");
    }

    [Fact]
    public void Vector_transform_equals_the_reference_bit_for_bit()
    {
        if (!Avx2BoxMuller.IsVectorSupported)
        {
            // Without AVX2/FMA the generator always takes the reference path; the vector path must refuse to run.
            Assert.Throws<PlatformNotSupportedException>(() => Avx2BoxMuller.TransformBlocksVector(new float[16]));
            return;
        }

        // A million torch uniforms, then the extremes: u1 = 1 (log 0, radius -0), the largest uniform, and angles
        // at every octant boundary the range reduction has to get right.
        var uniforms = new float[(1 << 20) + (4 * Avx2BoxMuller.BlockSize)];
        new TorchCpuGenerator(20240601).NextUniform(uniforms);
        var edges = uniforms.AsSpan(1 << 20);
        const float largest = 16777215f / 16777216f;
        for (var i = 0; i < edges.Length; i++)
        {
            edges[i] = (i % 3) switch { 0 => 0f, 1 => largest, _ => (i % 8) / 8f };
        }

        var expected = uniforms.ToArray();
        var actual = uniforms.ToArray();
        Avx2BoxMuller.TransformBlocksReference(expected);
        Avx2BoxMuller.TransformBlocksVector(actual);

        BitExact.Equal(expected, actual, "vector vs reference");
        Assert.Equal(0, BitConverter.SingleToInt32Bits(expected[1 << 20])); // -0 from a zero radius becomes +0, as in torch
    }
}
