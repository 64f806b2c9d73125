using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Sdxl.Net.Runtime;

/// <summary>
/// A CPU tensor over native memory this object owns, as <see cref="SessionOptions.AddInitializer"/> requires (ONNX
/// Runtime refuses initializers in its own allocator's memory and uses the buffer in place). Dispose it only after
/// every session created with it.
/// </summary>
internal sealed unsafe class UserOwnedTensor : IDisposable
{
    private void* _buffer;

    /// <summary>Allocates an uninitialised tensor of <paramref name="type"/> and <paramref name="shape"/>.</summary>
    public UserOwnedTensor(TensorElementType type, long[] shape)
    {
        long count = 1;
        foreach (var d in shape)
        {
            count = checked(count * d);
        }

        int size = type switch
        {
            TensorElementType.Float => 4,
            TensorElementType.Float16 or TensorElementType.BFloat16 => 2,
            _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Only float32, float16 and bfloat16 tensors are supported."),
        };
        ElementType = type;
        ByteLength = count * size;
        ElementCount = count;
        _buffer = NativeMemory.AlignedAlloc((nuint)Math.Max(ByteLength, 1), 64);
        try
        {
            Value = OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, type, shape, (IntPtr)_buffer, ByteLength);
        }
        catch
        {
            NativeMemory.AlignedFree(_buffer);
            _buffer = null;
            throw;
        }
    }

    /// <summary>The tensor.</summary>
    public OrtValue Value { get; }

    public TensorElementType ElementType { get; }

    public long ByteLength { get; }

    public long ElementCount { get; }

    /// <summary>The buffer as elements of <typeparamref name="T"/>.</summary>
    public Span<T> AsSpan<T>() where T : unmanaged
    {
        ObjectDisposedException.ThrowIf(_buffer is null, this);
        return new Span<T>(_buffer, checked((int)(ByteLength / sizeof(T))));
    }

    public void Dispose()
    {
        if (_buffer is not null)
        {
            Value.Dispose();
            NativeMemory.AlignedFree(_buffer);
            _buffer = null;
        }
    }
}
