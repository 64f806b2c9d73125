using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Sdxl.Net.Randomness;

/// <summary>
/// A random source that reproduces PyTorch's CPU generator, <c>torch.Generator("cpu").manual_seed(seed)</c>,
/// bit for bit: the same seed gives the same <c>torch.randn</c>, <c>torch.rand</c> and <c>torch.randint</c>
/// values, draw after draw, so a seed means the same image as in diffusers with a CPU generator.
/// </summary>
/// <remarks>
/// <para>
/// The engine is a 32-bit Mersenne Twister seeded from the low 32 bits of the seed. Float32 <c>randn</c> of 16 or
/// more values first fills the whole tensor with uniforms and then applies Box-Muller to blocks of 16 (element k
/// paired with k + 8); when the count is not a multiple of 16, the last 16 values are drawn again and
/// transformed as one more block. Fewer than 16 values take PyTorch's serial path, computed in double,
/// which leaves every second normal cached in the generator for the next serial draw.
/// </para>
/// <para>
/// The AVX2 kernel is emulated in portable code (IEEE float operations and fused multiply-adds) and gives the
/// same values on every platform. Float64 normals and draws of fewer than 16 values use the C runtime's double
/// <c>log</c>, <c>sin</c> and <c>cos</c>, as PyTorch does; they match glibc-built PyTorch bit for bit on Linux.
/// </para>
/// <para>
/// CUDA generators (Philox) produce different numbers; this type reproduces only CPU-seeded noise.
/// An instance is stateful and not thread-safe.
/// </para>
/// </remarks>
public sealed class TorchCpuGenerator : IRandomSource
{
    // torch transforms normals in blocks of this many values, and draws fewer than this one at a time.
    private const int BlockSize = Avx2BoxMuller.BlockSize;
    private const float FloatUniformScale = 1f / (1 << 24);
    private const double DoubleUniformScale = 1.0 / (1UL << 53);

    private readonly Mt19937 _engine;
    private double? _cachedNormal;

    /// <summary>
    /// Creates a generator in the state of <c>torch.Generator("cpu").manual_seed(seed)</c>.
    /// </summary>
    /// <param name="seed">
    /// The seed. As in PyTorch, only its low 32 bits select the stream: seeds that agree modulo 2^32 draw the
    /// same numbers, while <see cref="Seed"/> still reports the full value.
    /// </param>
    /// <param name="kernel">
    /// The float32 normal arithmetic to reproduce; <see cref="TorchNormalKernel.Avx2"/> (the default) matches
    /// PyTorch on x86-64, <see cref="TorchNormalKernel.Scalar"/> matches it on ARM and Apple silicon.
    /// </param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="kernel"/> is not a defined value.</exception>
    public TorchCpuGenerator(ulong seed, TorchNormalKernel kernel = TorchNormalKernel.Avx2)
    {
        if (kernel is not (TorchNormalKernel.Avx2 or TorchNormalKernel.Scalar))
        {
            throw new ArgumentOutOfRangeException(
                nameof(kernel), kernel, $"Expected {nameof(TorchNormalKernel.Avx2)} or {nameof(TorchNormalKernel.Scalar)}.");
        }

        Seed = seed;
        Kernel = kernel;
        _engine = new Mt19937(seed);
    }

    /// <summary>Gets the seed the generator was created with (what <c>initial_seed()</c> returns).</summary>
    public ulong Seed { get; }

    /// <summary>Gets the float32 normal arithmetic this generator reproduces.</summary>
    public TorchNormalKernel Kernel { get; }

    /// <summary>
    /// Fills <paramref name="destination"/> as one <c>torch.randn(n, generator=g, dtype=torch.float32)</c> call with
    /// <c>n == destination.Length</c>.
    /// </summary>
    /// <param name="destination">The tensor's values in memory order.</param>
    public void NextNormal(Span<float> destination)
    {
        if (destination.Length < BlockSize)
        {
            for (var i = 0; i < destination.Length; i++)
            {
                destination[i] = (float)NextSerialNormal();
            }

            return;
        }

        FillUniform(destination);
        var wholeBlocks = destination.Length - (destination.Length % BlockSize);
        TransformBlocks(destination[..wholeBlocks]);
        if (wholeBlocks != destination.Length)
        {
            // torch redraws and re-transforms the last 16 values, overwriting part of the last whole block.
            var tail = destination[^BlockSize..];
            FillUniform(tail);
            TransformBlocks(tail);
        }
    }

    /// <summary>
    /// Fills <paramref name="destination"/> as one <c>torch.randn(n, generator=g, dtype=torch.float64)</c> call with
    /// <c>n == destination.Length</c>.
    /// </summary>
    /// <param name="destination">The tensor's values in memory order.</param>
    public void NextNormal(Span<double> destination)
    {
        if (destination.Length < BlockSize)
        {
            for (var i = 0; i < destination.Length; i++)
            {
                destination[i] = NextSerialNormal();
            }

            return;
        }

        FillUniform(destination);
        var wholeBlocks = destination.Length - (destination.Length % BlockSize);
        for (var offset = 0; offset < wholeBlocks; offset += BlockSize)
        {
            TransformDoubleBlock(destination.Slice(offset, BlockSize));
        }

        if (wholeBlocks != destination.Length)
        {
            var tail = destination[^BlockSize..];
            FillUniform(tail);
            TransformDoubleBlock(tail);
        }
    }

    /// <summary>
    /// Fills <paramref name="destination"/> as one <c>torch.rand(n, generator=g, dtype=torch.float32)</c> call:
    /// one 32-bit draw per value, of which the low 24 bits give a multiple of 2^-24 in [0, 1).
    /// </summary>
    /// <param name="destination">The tensor's values in memory order.</param>
    public void NextUniform(Span<float> destination) => FillUniform(destination);

    /// <summary>
    /// Fills <paramref name="destination"/> as one <c>torch.rand(n, generator=g, dtype=torch.float64)</c> call:
    /// two 32-bit draws per value, of which the low 53 bits give a multiple of 2^-53 in [0, 1).
    /// </summary>
    /// <param name="destination">The tensor's values in memory order.</param>
    public void NextUniform(Span<double> destination) => FillUniform(destination);

    /// <summary>
    /// Fills <paramref name="destination"/> as one <c>torch.randint(low, high, (n,), generator=g)</c> call
    /// (int64): each value is <c>low + draw mod (high - low)</c>, where the draw takes 64 bits when the range is
    /// 2^32 or more and 32 bits otherwise. Like PyTorch, this is slightly biased towards small values for ranges
    /// that do not divide the draw's range.
    /// </summary>
    /// <param name="low">The smallest value that can be returned.</param>
    /// <param name="high">One more than the largest value that can be returned.</param>
    /// <param name="destination">The tensor's values in memory order.</param>
    /// <exception cref="ArgumentException"><paramref name="low"/> is not less than <paramref name="high"/>.</exception>
    public void NextInt64(long low, long high, Span<long> destination)
    {
        if (low >= high)
        {
            throw new ArgumentException(
                $"The range [low, high) must not be empty, but low = {low} and high = {high}.", nameof(high));
        }

        var range = unchecked((ulong)high - (ulong)low);
        for (var i = 0; i < destination.Length; i++)
        {
            ulong draw = range >= (1UL << 32) ? _engine.NextUInt64() : _engine.NextUInt32();
            destination[i] = unchecked((long)((draw % range) + (ulong)low));
        }
    }

    /// <summary>
    /// Returns the next raw 32-bit output of the Mersenne Twister, as the generator's <c>random()</c> does.
    /// </summary>
    /// <returns>The tempered 32-bit word.</returns>
    public uint NextUInt32() => _engine.NextUInt32();

    private void FillUniform(Span<float> destination)
    {
        // Draw the words into the destination itself, then convert them in place: no buffer, one pass each.
        var words = MemoryMarshal.Cast<float, uint>(destination);
        _engine.Fill(words);

        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var lowBits = Vector256.Create(0xFFFFFFu);
            var scale = Vector256.Create(FloatUniformScale);
            for (; i <= words.Length - Vector256<uint>.Count; i += Vector256<uint>.Count)
            {
                var word = Vector256.Create((ReadOnlySpan<uint>)words.Slice(i, Vector256<uint>.Count));
                var uniform = Vector256.ConvertToSingle((word & lowBits).AsInt32()) * scale;
                uniform.CopyTo(destination.Slice(i, Vector256<float>.Count));
            }
        }

        for (; i < words.Length; i++)
        {
            destination[i] = (words[i] & 0xFFFFFF) * FloatUniformScale;
        }
    }

    private void FillUniform(Span<double> destination)
    {
        for (var i = 0; i < destination.Length; i++)
        {
            destination[i] = NextDoubleUniform();
        }
    }

    private double NextDoubleUniform() => (_engine.NextUInt64() & ((1UL << 53) - 1)) * DoubleUniformScale;

    /// <summary>
    /// torch's serial normal (<c>at::normal_distribution&lt;double&gt;</c>): Box-Muller in double where the first
    /// uniform is the angle and the second the radius; the sine half is cached for the next serial draw.
    /// </summary>
    private double NextSerialNormal()
    {
        if (_cachedNormal is { } cached)
        {
            _cachedNormal = null;
            return cached + 0.0;
        }

        var angleUniform = NextDoubleUniform();
        var radiusUniform = NextDoubleUniform();

        // PyTorch 1.13 computes log(1 - u); later versions write log1p(-u), which differs at most in the last bit.
        var radius = Math.Sqrt(-2.0 * Math.Log(1.0 - radiusUniform));
        var theta = 2.0 * Math.PI * angleUniform;
        _cachedNormal = radius * Math.Sin(theta);

        // "* std + mean" with std = 1 and mean = 0 is exact except that it turns -0 into +0.
        return (radius * Math.Cos(theta)) + 0.0;
    }

    private void TransformBlocks(Span<float> data)
    {
        if (Kernel == TorchNormalKernel.Avx2)
        {
            Avx2BoxMuller.TransformBlocks(data);
            return;
        }

        for (var offset = 0; offset < data.Length; offset += BlockSize)
        {
            TransformScalarBlock(data.Slice(offset, BlockSize));
        }
    }

    /// <summary>
    /// torch's portable <c>normal_fill_16&lt;float&gt;</c>: float log/cos/sin from the C library, with the angle
    /// computed in double and rounded to float.
    /// </summary>
    /// <remarks>
    /// <see cref="MathF.Log(float)"/>, <see cref="MathF.Cos"/> and <see cref="MathF.Sin"/> call the C runtime's
    /// <c>logf</c>, <c>cosf</c> and <c>sinf</c>; with glibc they reproduce every recorded portable-kernel value exactly.
    /// </remarks>
    private static void TransformScalarBlock(Span<float> block)
    {
        const int half = BlockSize / 2;
        for (var j = 0; j < half; j++)
        {
            var u1 = 1f - block[j];
            var u2 = block[j + half];
            var radius = MathF.Sqrt(-2f * MathF.Log(u1));
            var theta = (float)(2.0 * Math.PI * u2);
            block[j] = (radius * MathF.Cos(theta)) + 0f;
            block[j + half] = (radius * MathF.Sin(theta)) + 0f;
        }
    }

    /// <summary>torch's <c>normal_fill_16&lt;double&gt;</c>: the same block layout, in double.</summary>
    private static void TransformDoubleBlock(Span<double> block)
    {
        const int half = BlockSize / 2;
        for (var j = 0; j < half; j++)
        {
            var u1 = 1.0 - block[j];
            var u2 = block[j + half];
            var radius = Math.Sqrt(-2.0 * Math.Log(u1));
            var theta = 2.0 * Math.PI * u2;
            block[j] = (radius * Math.Cos(theta)) + 0.0;
            block[j + half] = (radius * Math.Sin(theta)) + 0.0;
        }
    }
}
