using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Sdxl.Net.Runtime;

/// <summary>Where the OrtValues of an I/O binding live.</summary>
internal enum BindingPlacement
{
    /// <summary>Host memory from ONNX Runtime's default CPU allocator (CPU provider; GPU providers copy per run).</summary>
    Host,

    /// <summary>Device memory from the session's CUDA allocator, at addresses that never change (CUDA graphs).</summary>
    Device,
}

/// <summary>
/// One tensor of an I/O binding, allocated once and written or read in place: a float32 view for the host side,
/// converted to or from the tensor's element type (float32, float16, float64; ints for timesteps) only where they differ.
/// </summary>
internal sealed unsafe class BoundTensor : IDisposable
{
    private readonly float[]? _floatStaging;
    private readonly byte[]? _deviceStaging;
    private readonly int _deviceId;

    private BoundTensor(OrtValue value, TensorElementType type, long[] shape, int elementCount, BindingPlacement placement, int deviceId)
    {
        Value = value;
        ElementType = type;
        Shape = shape;
        ElementCount = elementCount;
        Placement = placement;
        _deviceId = deviceId;
        if (placement == BindingPlacement.Device)
        {
            _deviceStaging = new byte[checked(elementCount * ElementSize(type))];
        }

        if (type != TensorElementType.Float || placement == BindingPlacement.Device)
        {
            _floatStaging = new float[elementCount];
        }
    }

    public OrtValue Value { get; }

    public TensorElementType ElementType { get; }

    public long[] Shape { get; }

    public int ElementCount { get; }

    public BindingPlacement Placement { get; }

    /// <summary>Allocates a tensor of <paramref name="type"/> and <paramref name="shape"/> with <paramref name="allocator"/>.</summary>
    public static BoundTensor Create(OrtAllocator allocator, TensorElementType type, long[] shape, BindingPlacement placement, int deviceId)
    {
        long count = 1;
        foreach (var d in shape)
        {
            count *= d;
        }

        var value = OrtValue.CreateAllocatedTensorValue(allocator, type, shape);
        return new BoundTensor(value, type, shape, checked((int)count), placement, deviceId);
    }

    /// <summary>
    /// The float32 values to fill before <see cref="Upload"/>: the tensor's own memory when it is float32 on the host,
    /// else a staging buffer.
    /// </summary>
    public Span<float> Writable => _floatStaging ?? Value.GetTensorMutableDataAsSpan<float>();

    /// <summary>The float32 values after <see cref="Download"/> (same memory as <see cref="Writable"/>).</summary>
    public ReadOnlySpan<float> Readable => Writable;

    /// <summary>Converts the staged float32 values to the tensor's type and, on the device, copies them over.</summary>
    public void Upload()
    {
        if (_floatStaging is null)
        {
            return;
        }

        var host = HostBytes();
        switch (ElementType)
        {
            case TensorElementType.Float:
                MemoryMarshal.AsBytes(_floatStaging.AsSpan()).CopyTo(host);
                break;
            case TensorElementType.Float16:
                TensorPrimitives.ConvertToHalf(_floatStaging, MemoryMarshal.Cast<byte, Half>(host));
                break;
            case TensorElementType.Double:
                var d = MemoryMarshal.Cast<byte, double>(host);
                for (int i = 0; i < d.Length; i++)
                {
                    d[i] = _floatStaging[i];
                }

                break;
            case TensorElementType.Int64:
                var l = MemoryMarshal.Cast<byte, long>(host);
                for (int i = 0; i < l.Length; i++)
                {
                    l[i] = (long)_floatStaging[i];
                }

                break;
            case TensorElementType.Int32:
                var n = MemoryMarshal.Cast<byte, int>(host);
                for (int i = 0; i < n.Length; i++)
                {
                    n[i] = (int)_floatStaging[i];
                }

                break;
            default:
                throw new InvalidOperationException($"Cannot bind a {TensorSpec.TypeName(ElementType)} tensor.");
        }

        if (Placement == BindingPlacement.Device)
        {
            fixed (byte* src = _deviceStaging)
            {
                CudaRuntime.Copy(DevicePointer(), src, _deviceStaging!.Length, _deviceId);
            }
        }
    }

    /// <summary>Copies a run's output back from the device and converts it to float32 (no-op for host float32).</summary>
    public void Download()
    {
        if (_floatStaging is null)
        {
            return;
        }

        if (Placement == BindingPlacement.Device)
        {
            fixed (byte* dst = _deviceStaging)
            {
                CudaRuntime.Copy(dst, DevicePointer(), _deviceStaging!.Length, _deviceId);
            }
        }

        var host = HostBytes();
        switch (ElementType)
        {
            case TensorElementType.Float:
                MemoryMarshal.Cast<byte, float>(host).CopyTo(_floatStaging);
                break;
            case TensorElementType.Float16:
                TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(host), _floatStaging);
                break;
            default:
                throw new InvalidOperationException($"Cannot read a {TensorSpec.TypeName(ElementType)} output as float.");
        }
    }

    public void Dispose() => Value.Dispose();

    private static int ElementSize(TensorElementType type) => type switch
    {
        TensorElementType.Float or TensorElementType.Int32 => 4,
        TensorElementType.Float16 => 2,
        TensorElementType.Double or TensorElementType.Int64 => 8,
        _ => throw new InvalidOperationException($"Cannot bind a {TensorSpec.TypeName(type)} tensor."),
    };

    /// <summary>The bytes the host writes: the tensor itself on the host, the copy staged for the device otherwise.</summary>
    private Span<byte> HostBytes() => _deviceStaging ?? Value.GetTensorMutableRawData();

    /// <summary>The device address of the tensor (the span is never dereferenced on the host).</summary>
    private void* DevicePointer() => Unsafe.AsPointer(ref MemoryMarshal.GetReference(Value.GetTensorMutableRawData()));
}
