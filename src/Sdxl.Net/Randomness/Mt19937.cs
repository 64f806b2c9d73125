using System.Runtime.Intrinsics;

namespace Sdxl.Net.Randomness;

/// <summary>
/// The 32-bit Mersenne Twister exactly as PyTorch's CPU generator runs it (<c>at::mt19937</c>):
/// seeded from the low 32 bits of the seed with the reference <c>init_genrand</c>, tempered output.
/// </summary>
internal sealed class Mt19937
{
    private const int StateSize = 624;
    private const int ShiftSize = 397;
    private const uint MatrixA = 0x9908B0DFu;
    private const uint UpperMask = 0x80000000u;
    private const uint LowerMask = 0x7FFFFFFFu;

    private readonly uint[] _state = new uint[StateSize];
    private int _next;

    /// <summary>Seeds the engine; only the low 32 bits of <paramref name="seed"/> are used, as in PyTorch.</summary>
    public Mt19937(ulong seed)
    {
        var state = _state;
        state[0] = (uint)seed;
        for (var j = 1; j < StateSize; j++)
        {
            state[j] = unchecked((1812433253u * (state[j - 1] ^ (state[j - 1] >> 30))) + (uint)j);
        }

        // The first draw regenerates the whole state before reading word 0.
        _next = StateSize;
    }

    /// <summary>Returns the next tempered 32-bit output.</summary>
    public uint NextUInt32()
    {
        if (_next == StateSize)
        {
            Twist();
        }

        return Temper(_state[_next++]);
    }

    /// <summary>Fills <paramref name="destination"/> with the next outputs, the same as calling <see cref="NextUInt32"/> for each.</summary>
    public void Fill(Span<uint> destination)
    {
        while (!destination.IsEmpty)
        {
            if (_next == StateSize)
            {
                Twist();
            }

            var count = Math.Min(destination.Length, StateSize - _next);
            Temper(_state.AsSpan(_next, count), destination[..count]);
            _next += count;
            destination = destination[count..];
        }
    }

    /// <summary>Two outputs combined as PyTorch's <c>random64()</c> does: the first one is the high word.</summary>
    public ulong NextUInt64()
    {
        ulong high = NextUInt32();
        return (high << 32) | NextUInt32();
    }

    private void Twist()
    {
        var state = _state;
        int k;
        for (k = 0; k < StateSize - ShiftSize; k++)
        {
            state[k] = state[k + ShiftSize] ^ Mix(state[k], state[k + 1]);
        }

        for (; k < StateSize - 1; k++)
        {
            state[k] = state[k + ShiftSize - StateSize] ^ Mix(state[k], state[k + 1]);
        }

        state[StateSize - 1] = state[ShiftSize - 1] ^ Mix(state[StateSize - 1], state[0]);
        _next = 0;
    }

    private static uint Temper(uint y)
    {
        y ^= y >> 11;
        y ^= (y << 7) & 0x9D2C5680u;
        y ^= (y << 15) & 0xEFC60000u;
        y ^= y >> 18;
        return y;
    }

    private static void Temper(ReadOnlySpan<uint> words, Span<uint> destination)
    {
        var i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var mask7 = Vector256.Create(0x9D2C5680u);
            var mask15 = Vector256.Create(0xEFC60000u);
            for (; i <= words.Length - Vector256<uint>.Count; i += Vector256<uint>.Count)
            {
                var y = Vector256.Create(words.Slice(i, Vector256<uint>.Count));
                y ^= Vector256.ShiftRightLogical(y, 11);
                y ^= Vector256.ShiftLeft(y, 7) & mask7;
                y ^= Vector256.ShiftLeft(y, 15) & mask15;
                y ^= Vector256.ShiftRightLogical(y, 18);
                y.CopyTo(destination.Slice(i, Vector256<uint>.Count));
            }
        }

        for (; i < words.Length; i++)
        {
            destination[i] = Temper(words[i]);
        }
    }

    private static uint Mix(uint current, uint following)
    {
        var y = (current & UpperMask) | (following & LowerMask);
        return (y >> 1) ^ ((y & 1u) != 0 ? MatrixA : 0u);
    }
}
