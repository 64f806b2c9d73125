using Sdxl.Net.Randomness;
using Xunit;

namespace Sdxl.Net.Tests.Randomness;

/// <summary>The engine's bulk fill against its one-word-at-a-time output.</summary>
public sealed class Mt19937Tests
{
    [Fact]
    public void Bulk_fill_continues_the_stream_exactly_like_single_draws()
    {
        var single = new Mt19937(1234);
        var bulk = new Mt19937(1234);
        var expected = new uint[5000];
        for (var i = 0; i < expected.Length; i++)
        {
            expected[i] = single.NextUInt32();
        }

        // Uneven chunks, mixed with single draws, so that fills start and end inside vectors and cross regenerations.
        var actual = new uint[expected.Length];
        var position = 0;
        foreach (var chunk in new[] { 3, 1, 620, 7, 1, 1300, 13, 2000, 1 })
        {
            bulk.Fill(actual.AsSpan(position, chunk));
            position += chunk;
            actual[position++] = bulk.NextUInt32();
        }

        bulk.Fill(actual.AsSpan(position));
        Assert.Equal(expected, actual);
    }
}
