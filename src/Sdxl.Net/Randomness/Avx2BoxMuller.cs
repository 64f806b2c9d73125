using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Sdxl.Net.Randomness;

/// <summary>
/// The Box-Muller block transform of PyTorch's AVX2 <c>normal_fill_16_AVX2</c>, bit for bit: float32
/// <c>log256_ps</c> and <c>sincos256_ps</c> from <c>avx_mathfun.h</c> (Cephes approximations), with the
/// multiply/add pairs that GCC contracts into FMA in PyTorch's AVX2 build fused here too.
/// </summary>
/// <remarks>
/// Each block holds 16 uniforms in [0, 1): for j in 0..7, <c>1 - block[j]</c> gives the radius and
/// <c>block[j + 8]</c> the angle; the cosine result goes to <c>block[j]</c>, the sine result to <c>block[j + 8]</c>.
/// Every <see cref="MathF.FusedMultiplyAdd"/> below stands where the compiled PyTorch kernel has an FMA, and
/// every plain operation where it has none; the JIT never contracts on its own, so the two stay apart.
/// <see cref="TransformBlocksReference"/> is the definition; <see cref="TransformBlocksVector"/> computes the same
/// eight lanes at once and must agree with it exactly.
/// </remarks>
internal static class Avx2BoxMuller
{
    /// <summary>Number of values one transform consumes and produces.</summary>
    public const int BlockSize = 16;

    private const int HalfBlock = BlockSize / 2;

    // Constants are written as the C source writes them (double literals stored into float), so each is the
    // float nearest to the double, exactly like _PS256_CONST in avx_mathfun.h (a float literal could round
    // differently from the decimal).
    private const float TwoPi = (float)(2.0 * Math.PI);
    private const float MinNormalPositive = 1.17549435E-38f; // 2^-126, the smallest normal float
    private const float SqrtHalf = (float)0.707106781186547524;
    private const float LogP0 = (float)7.0376836292E-2;
    private const float LogP1 = (float)-1.1514610310E-1;
    private const float LogP2 = (float)1.1676998740E-1;
    private const float LogP3 = (float)-1.2420140846E-1;
    private const float LogP4 = (float)1.4249322787E-1;
    private const float LogP5 = (float)-1.6668057665E-1;
    private const float LogP6 = (float)2.0000714765E-1;
    private const float LogP7 = (float)-2.4999993993E-1;
    private const float LogP8 = (float)3.3333331174E-1;
    private const float LogQ1 = (float)-2.12194440e-4;
    private const float LogQ2 = (float)0.693359375;
    private const float FourOverPi = (float)1.27323954473516;
    private const float MinusDp1 = (float)-0.78515625;
    private const float MinusDp2 = (float)-2.4187564849853515625e-4;
    private const float MinusDp3 = (float)-3.77489497744594108e-8;
    private const float SinP0 = (float)-1.9515295891E-4;
    private const float SinP1 = (float)8.3321608736E-3;
    private const float SinP2 = (float)-1.6666654611E-1;
    private const float CosP0 = (float)2.443315711809948E-5;
    private const float CosP1 = (float)-1.388731625493765E-3;
    private const float CosP2 = (float)4.166664568298827E-2;

    /// <summary>Whether <see cref="TransformBlocksVector"/> can run on this machine.</summary>
    public static bool IsVectorSupported => Vector256.IsHardwareAccelerated && Fma.IsSupported;

    /// <summary>
    /// Transforms every block of <paramref name="data"/> in place, using 256-bit vectors when the CPU has them.
    /// </summary>
    /// <param name="data">Uniforms in [0, 1); the length must be a multiple of <see cref="BlockSize"/>.</param>
    public static void TransformBlocks(Span<float> data)
    {
        if (IsVectorSupported)
        {
            TransformBlocksVector(data);
        }
        else
        {
            TransformBlocksReference(data);
        }
    }

    /// <summary>The reference transform: one lane at a time, the definition the vector path must match.</summary>
    /// <param name="data">Uniforms in [0, 1); the length must be a multiple of <see cref="BlockSize"/>.</param>
    public static void TransformBlocksReference(Span<float> data)
    {
        Debug.Assert(data.Length % BlockSize == 0, "Whole blocks only.");
        for (var offset = 0; offset < data.Length; offset += BlockSize)
        {
            var block = data.Slice(offset, BlockSize);
            for (var j = 0; j < HalfBlock; j++)
            {
                var u1 = 1f - block[j];
                var u2 = block[j + HalfBlock];
                var radius = MathF.Sqrt(-2f * Log(u1));
                SinCos(TwoPi * u2, out var sine, out var cosine);

                // The kernel finishes with fma(n, std, mean) for std = 1 and mean = 0: exact, except that it
                // turns a -0 into +0, which adding +0 reproduces.
                block[j] = (radius * cosine) + 0f;
                block[j + HalfBlock] = (radius * sine) + 0f;
            }
        }
    }

    /// <summary>The same transform as <see cref="TransformBlocksReference"/>, eight lanes at a time.</summary>
    /// <param name="data">Uniforms in [0, 1); the length must be a multiple of <see cref="BlockSize"/>.</param>
    public static void TransformBlocksVector(Span<float> data)
    {
        Debug.Assert(data.Length % BlockSize == 0, "Whole blocks only.");
        if (!IsVectorSupported)
        {
            throw new PlatformNotSupportedException("The vectorized normal transform needs 256-bit vectors and FMA.");
        }

        ref var start = ref MemoryMarshal.GetReference(data);
        var one = Vector256.Create(1f);
        var minusTwo = Vector256.Create(-2f);
        var twoPi = Vector256.Create(TwoPi);
        for (nuint offset = 0; offset < (nuint)data.Length; offset += BlockSize)
        {
            ref var block = ref Unsafe.Add(ref start, offset);
            var u1 = one - Vector256.LoadUnsafe(ref block);
            var u2 = Vector256.LoadUnsafe(ref block, HalfBlock);
            var radius = Vector256.Sqrt(minusTwo * Log(u1));
            var (sine, cosine) = SinCos(twoPi * u2);
            (radius * cosine + Vector256<float>.Zero).StoreUnsafe(ref block);
            (radius * sine + Vector256<float>.Zero).StoreUnsafe(ref block, HalfBlock);
        }
    }

    /// <summary>Natural logarithm as <c>log256_ps</c> computes it, for one lane; valid for positive finite input.</summary>
    internal static float Log(float x)
    {
        x = MathF.Max(x, MinNormalPositive);
        var bits = BitConverter.SingleToInt32Bits(x);
        var exponent = (float)((int)((uint)bits >> 23) - 0x7f) + 1f;
        var mantissa = BitConverter.Int32BitsToSingle((bits & ~0x7f800000) | 0x3f000000); // in [0.5, 1)

        // Below sqrt(1/2) the mantissa is doubled (and the exponent lowered) to keep it near 1.
        var belowSqrtHalf = mantissa < SqrtHalf;
        var doubling = belowSqrtHalf ? mantissa : 0f;
        mantissa -= 1f;
        exponent -= belowSqrtHalf ? 1f : 0f;
        mantissa += doubling;

        var z = mantissa * mantissa;
        var y = MathF.FusedMultiplyAdd(LogP0, mantissa, LogP1);
        y = MathF.FusedMultiplyAdd(y, mantissa, LogP2);
        y = MathF.FusedMultiplyAdd(y, mantissa, LogP3);
        y = MathF.FusedMultiplyAdd(y, mantissa, LogP4);
        y = MathF.FusedMultiplyAdd(y, mantissa, LogP5);
        y = MathF.FusedMultiplyAdd(y, mantissa, LogP6);
        y = MathF.FusedMultiplyAdd(y, mantissa, LogP7);
        y = MathF.FusedMultiplyAdd(y, mantissa, LogP8);
        y *= mantissa;
        y = MathF.FusedMultiplyAdd(y, z, exponent * LogQ1);
        y = MathF.FusedMultiplyAdd(-z, 0.5f, y);
        return MathF.FusedMultiplyAdd(exponent, LogQ2, mantissa + y);
    }

    /// <summary>Sine and cosine as <c>sincos256_ps</c> computes them, for one non-negative lane.</summary>
    internal static void SinCos(float x, out float sine, out float cosine)
    {
        // Octant index j, rounded up to even; x is reduced by j * pi/4 in three extended-precision steps.
        var octant = (int)(x * FourOverPi);
        octant = (octant + 1) & ~1;
        var octantAsFloat = (float)octant;
        x = MathF.FusedMultiplyAdd(octantAsFloat, MinusDp1, x);
        x = MathF.FusedMultiplyAdd(octantAsFloat, MinusDp2, x);
        x = MathF.FusedMultiplyAdd(octantAsFloat, MinusDp3, x);
        var z = x * x;

        var cosPolynomial = MathF.FusedMultiplyAdd(CosP0, z, CosP1);
        cosPolynomial = MathF.FusedMultiplyAdd(cosPolynomial, z, CosP2);
        cosPolynomial *= z;
        cosPolynomial = MathF.FusedMultiplyAdd(cosPolynomial, z, -(z * 0.5f));
        cosPolynomial += 1f;

        var sinPolynomial = MathF.FusedMultiplyAdd(SinP0, z, SinP1);
        sinPolynomial = MathF.FusedMultiplyAdd(sinPolynomial, z, SinP2);
        sinPolynomial *= z;
        sinPolynomial = MathF.FusedMultiplyAdd(sinPolynomial, x, x);

        var swap = (octant & 2) != 0;
        sine = swap ? cosPolynomial : sinPolynomial;
        cosine = swap ? sinPolynomial : cosPolynomial;
        if ((octant & 4) != 0)
        {
            sine = -sine;
        }

        if (((octant - 2) & 4) == 0)
        {
            cosine = -cosine;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Log(Vector256<float> x)
    {
        var one = Vector256.Create(1f);
        x = Vector256.Max(x, Vector256.Create(MinNormalPositive));
        var bits = x.AsInt32();
        var exponent = Vector256.ConvertToSingle(Vector256.ShiftRightLogical(bits, 23) - Vector256.Create(0x7f)) + one;
        var mantissa = ((bits & Vector256.Create(~0x7f800000)) | Vector256.Create(0x3f000000)).AsSingle();

        var belowSqrtHalf = Vector256.LessThan(mantissa, Vector256.Create(SqrtHalf));
        var doubling = mantissa & belowSqrtHalf;
        mantissa -= one;
        exponent -= one & belowSqrtHalf;
        mantissa += doubling;

        var z = mantissa * mantissa;
        var y = Vector256.FusedMultiplyAdd(Vector256.Create(LogP0), mantissa, Vector256.Create(LogP1));
        y = Vector256.FusedMultiplyAdd(y, mantissa, Vector256.Create(LogP2));
        y = Vector256.FusedMultiplyAdd(y, mantissa, Vector256.Create(LogP3));
        y = Vector256.FusedMultiplyAdd(y, mantissa, Vector256.Create(LogP4));
        y = Vector256.FusedMultiplyAdd(y, mantissa, Vector256.Create(LogP5));
        y = Vector256.FusedMultiplyAdd(y, mantissa, Vector256.Create(LogP6));
        y = Vector256.FusedMultiplyAdd(y, mantissa, Vector256.Create(LogP7));
        y = Vector256.FusedMultiplyAdd(y, mantissa, Vector256.Create(LogP8));
        y *= mantissa;
        y = Vector256.FusedMultiplyAdd(y, z, exponent * Vector256.Create(LogQ1));
        y = Vector256.FusedMultiplyAdd(-z, Vector256.Create(0.5f), y);
        return Vector256.FusedMultiplyAdd(exponent, Vector256.Create(LogQ2), mantissa + y);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<float> Sine, Vector256<float> Cosine) SinCos(Vector256<float> x)
    {
        var octant = Vector256.ConvertToInt32(x * Vector256.Create(FourOverPi)); // truncates
        octant = (octant + Vector256.Create(1)) & Vector256.Create(~1);
        var octantAsFloat = Vector256.ConvertToSingle(octant);
        x = Vector256.FusedMultiplyAdd(octantAsFloat, Vector256.Create(MinusDp1), x);
        x = Vector256.FusedMultiplyAdd(octantAsFloat, Vector256.Create(MinusDp2), x);
        x = Vector256.FusedMultiplyAdd(octantAsFloat, Vector256.Create(MinusDp3), x);
        var z = x * x;

        var cosPolynomial = Vector256.FusedMultiplyAdd(Vector256.Create(CosP0), z, Vector256.Create(CosP1));
        cosPolynomial = Vector256.FusedMultiplyAdd(cosPolynomial, z, Vector256.Create(CosP2));
        cosPolynomial *= z;
        cosPolynomial = Vector256.FusedMultiplyAdd(cosPolynomial, z, -(z * Vector256.Create(0.5f)));
        cosPolynomial += Vector256.Create(1f);

        var sinPolynomial = Vector256.FusedMultiplyAdd(Vector256.Create(SinP0), z, Vector256.Create(SinP1));
        sinPolynomial = Vector256.FusedMultiplyAdd(sinPolynomial, z, Vector256.Create(SinP2));
        sinPolynomial *= z;
        sinPolynomial = Vector256.FusedMultiplyAdd(sinPolynomial, x, x);

        var four = Vector256.Create(4);
        var keepOrder = Vector256.Equals(octant & Vector256.Create(2), Vector256<int>.Zero).AsSingle();
        var sineSign = Vector256.ShiftLeft(octant & four, 29).AsSingle();
        var cosineSign = Vector256.ShiftLeft(Vector256.AndNot(four, octant - Vector256.Create(2)), 29).AsSingle();
        var sine = Vector256.ConditionalSelect(keepOrder, sinPolynomial, cosPolynomial) ^ sineSign;
        var cosine = Vector256.ConditionalSelect(keepOrder, cosPolynomial, sinPolynomial) ^ cosineSign;
        return (sine, cosine);
    }
}
