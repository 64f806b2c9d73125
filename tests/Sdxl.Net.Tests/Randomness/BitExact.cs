using Xunit;

namespace Sdxl.Net.Tests.Randomness;

/// <summary>Bit-for-bit comparisons that report how many values differ and where the first one is.</summary>
internal static class BitExact
{
    public static void Equal(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what) =>
        Equal(expected, actual, what, BitConverter.SingleToInt32Bits);

    public static void Equal(ReadOnlySpan<double> expected, ReadOnlySpan<double> actual, string what) =>
        Equal(expected, actual, what, BitConverter.DoubleToInt64Bits);

    private static void Equal<T, TBits>(ReadOnlySpan<T> expected, ReadOnlySpan<T> actual, string what, Func<T, TBits> bits)
        where TBits : IEquatable<TBits>
    {
        Assert.True(expected.Length == actual.Length, $"{what}: expected {expected.Length} values, got {actual.Length}.");
        var mismatches = 0;
        var first = -1;
        for (var i = 0; i < expected.Length; i++)
        {
            if (!bits(expected[i]).Equals(bits(actual[i])))
            {
                mismatches++;
                first = first < 0 ? i : first;
            }
        }

        Assert.True(
            mismatches == 0,
            mismatches == 0 ? string.Empty : $"{what}: {mismatches} of {expected.Length} values differ; first at [{first}]: " +
            $"expected {expected[first]:R}, got {actual[first]:R}.");
    }
}
