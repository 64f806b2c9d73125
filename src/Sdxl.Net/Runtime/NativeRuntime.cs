using Microsoft.ML.OnnxRuntime;

namespace Sdxl.Net.Runtime;

/// <summary>
/// Loads ONNX Runtime's native library before the first session, so an application that references Sdxl.Net
/// without a runtime package gets a message that names the package to add instead of a
/// <see cref="TypeInitializationException"/> from deep inside ONNX Runtime's managed API.
/// </summary>
internal static class NativeRuntime
{
    /// <summary>The message for an application whose ONNX Runtime native library cannot be loaded.</summary>
    internal const string MissingMessage =
        "ONNX Runtime's native library (onnxruntime) could not be loaded. Sdxl.Net carries only ONNX Runtime's managed "
        + "API: add Sdxl.Net.Runtime.Cpu (CPU on Windows, Linux and macOS) or Sdxl.Net.Runtime.Cuda (NVIDIA CUDA/TensorRT "
        + "on Linux x64 and Windows x64) to the application (`dotnet add package Sdxl.Net.Runtime.Cpu`), or another "
        + "Microsoft.ML.OnnxRuntime native package of the same version, for this platform";

    /// <summary>Throws <see cref="SdxlModelException"/> naming the runtime packages when the native library is missing.</summary>
    public static void EnsureLoaded()
    {
        try
        {
            // The first touch of the managed API runs its static initialiser, which loads the native library.
            _ = OrtEnv.Instance();
        }
        catch (Exception e) when (IsMissingNativeLibrary(e))
        {
            throw Missing(e);
        }
    }

    /// <summary>Whether <paramref name="e"/> is the managed API's report of a native library it could not load.</summary>
    internal static bool IsMissingNativeLibrary(Exception e) => e switch
    {
        DllNotFoundException or EntryPointNotFoundException or BadImageFormatException => true,
        TypeInitializationException { InnerException: { } inner } => IsMissingNativeLibrary(inner),
        _ => false,
    };

    /// <summary>The exception for a missing native library, with the loader's own words as the cause.</summary>
    internal static SdxlModelException Missing(Exception cause)
    {
        var root = cause;
        while (root is TypeInitializationException { InnerException: { } inner })
        {
            root = inner;
        }

        return new SdxlModelException($"{MissingMessage} ({System.Runtime.InteropServices.RuntimeInformation.RuntimeIdentifier}). The loader said: {SessionFactory.FirstLine(root.Message)}", cause);
    }
}
