using System.Runtime.InteropServices;

namespace Sdxl.Net.Runtime;

/// <summary>
/// The two CUDA runtime calls the device-resident I/O binding needs (ONNX Runtime's C# API has no host ⇄ device
/// copy): <c>cudaMemcpy</c> with <c>cudaMemcpyDefault</c> (unified addressing infers the direction) and
/// <c>cudaDeviceSynchronize</c>. Resolved lazily from the CUDA runtime library that the CUDA provider already loads.
/// </summary>
/// <remarks>Used only with CUDA graphs; not exercised by the CPU test suite.</remarks>
internal static unsafe class CudaRuntime
{
    private const int CudaMemcpyDefault = 4;

    private static readonly string[] LibraryNames =
        ["libcudart.so.13", "libcudart.so.12", "libcudart.so", "cudart64_13", "cudart64_130", "cudart64_12"];

    private static readonly Lazy<Functions> Loaded = new(Load);

    /// <summary>Copies <paramref name="bytes"/> bytes between host and device memory and waits for the device.</summary>
    public static void Copy(void* destination, void* source, long bytes, int deviceId)
    {
        var f = Loaded.Value;
        Check(f.SetDevice(deviceId), "cudaSetDevice");
        Check(f.Memcpy(destination, source, (nuint)bytes, CudaMemcpyDefault), "cudaMemcpy");
        Check(f.DeviceSynchronize(), "cudaDeviceSynchronize");
    }

    private static void Check(int status, string call)
    {
        if (status != 0)
        {
            throw new SdxlModelException($"{call} failed with CUDA error {status}.");
        }
    }

    private static Functions Load()
    {
        foreach (var name in LibraryNames)
        {
            if (NativeLibrary.TryLoad(name, out var handle))
            {
                return new Functions(
                    (delegate* unmanaged<void*, void*, nuint, int, int>)NativeLibrary.GetExport(handle, "cudaMemcpy"),
                    (delegate* unmanaged<int, int>)NativeLibrary.GetExport(handle, "cudaSetDevice"),
                    (delegate* unmanaged<int>)NativeLibrary.GetExport(handle, "cudaDeviceSynchronize"));
            }
        }

        throw new SdxlModelException(
            $"CUDA graphs need the CUDA runtime library ({string.Join(", ", LibraryNames)}) on the library path to copy inputs to the device.");
    }

    private sealed class Functions(
        delegate* unmanaged<void*, void*, nuint, int, int> memcpy,
        delegate* unmanaged<int, int> setDevice,
        delegate* unmanaged<int> deviceSynchronize)
    {
        public int Memcpy(void* dst, void* src, nuint count, int kind) => memcpy(dst, src, count, kind);

        public int SetDevice(int device) => setDevice(device);

        public int DeviceSynchronize() => deviceSynchronize();
    }
}
