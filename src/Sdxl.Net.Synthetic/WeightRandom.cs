namespace Sdxl.Net.Synthetic;

/// <summary>
/// A SplitMix64 generator: deterministic across runtimes and platforms, so equal seeds always write equal weights
/// (System.Random's seeded sequence is an implementation detail).
/// </summary>
internal sealed class WeightRandom(ulong seed)
{
    private ulong _state = seed;

    /// <summary>Derives the generator of one model from the folder seed and the model's stream number.</summary>
    public static WeightRandom For(int seed, int stream) =>
        new(unchecked(((ulong)(uint)seed << 32) ^ (ulong)stream * 0x9E3779B97F4A7C15UL));

    /// <summary>The next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        var z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Fills <paramref name="values"/> uniformly with zero mean and standard deviation <paramref name="std"/>.</summary>
    public void FillUniform(Span<float> values, float std)
    {
        var halfWidth = std * MathF.Sqrt(3f);
        for (var i = 0; i < values.Length; i++)
        {
            var unit = (NextUInt64() >> 40) * (1.0f / (1 << 24)); // [0, 1) with 24 bits
            values[i] = (2f * unit - 1f) * halfWidth;
        }
    }
}
