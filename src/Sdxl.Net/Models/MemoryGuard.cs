using Sdxl.Net.Runtime;

namespace Sdxl.Net.Models;

/// <summary>
/// Refuses, before any work, what cannot fit in the machine's memory on the CPU provider: loading a folder whose
/// sessions need more than is available (ONNX Runtime copies the weights, external data included, into its own
/// buffers: about 1.03 × the files, measured on the full-size folder), and a generation whose activations do not fit
/// beside them. The operating system's answer to an overcommitted process is to kill it; a clear exception that names
/// the numbers and what would fit is the better failure.
/// </summary>
internal static class MemoryGuard
{
    /// <summary>Session memory per byte of weights (measured: 10.63 GB peak for a 10.27 GB UNet).</summary>
    internal const double SessionOverhead = 1.05;

    /// <summary>What the process itself, the tokenizers and the runtime take besides sessions.</summary>
    internal const long BaseBytes = 512L << 20;

    /// <summary>The bytes of a component's files (model.onnx and its external data).</summary>
    public static long ComponentBytes(string componentDirectory)
    {
        if (!Directory.Exists(componentDirectory))
        {
            return 0;
        }

        long total = 0;
        foreach (var file in Directory.EnumerateFiles(componentDirectory))
        {
            if (!file.EndsWith(".json", StringComparison.OrdinalIgnoreCase) && !file.EndsWith(".txt", StringComparison.OrdinalIgnoreCase))
            {
                // Hugging Face cache snapshots hold symbolic links to the blobs: count the blob, not the link.
                FileInfo info;
                try
                {
                    info = FileAccessCheck.Resolve(file);
                }
                catch (IOException)
                {
                    // A link loop or an unreadable link: counted as nothing here; loading the file names the fault.
                    continue;
                }

                total += info.Exists ? info.Length : 0;
            }
        }

        return total;
    }

    /// <summary>Checks that the folder's sessions fit before they are created.</summary>
    /// <exception cref="SdxlModelException">They do not; the message gives what each memory mode needs and what is available.</exception>
    public static void CheckLoad(string directory, IReadOnlyList<string> components, ExecutionProviderOptions options)
    {
        if (options.Kind != ExecutionProviderKind.Cpu || HostMemory.AvailableBytes() is not { } available)
        {
            return; // GPU providers hold the weights in device memory; their host copy is transient.
        }

        long sum = 0, largest = 0;
        string largestName = string.Empty;
        foreach (var component in components)
        {
            long bytes = ComponentBytes(Path.Combine(directory, component));
            sum += bytes;
            if (bytes > largest)
            {
                largest = bytes;
                largestName = component;
            }
        }

        long keep = Need(sum), perPhase = Need(largest);
        long needed = options.MemoryMode == MemoryMode.KeepLoaded ? keep : perPhase;
        if (needed <= available)
        {
            return;
        }

        var advice = options.MemoryMode == MemoryMode.KeepLoaded && perPhase <= available
            ? $" MemoryMode.LoadPerPhase (--memory-mode per-phase) needs about {HostMemory.Gigabytes(perPhase)} (the {largestName} alone) and would fit."
            : " A float16 export halves the weights; a GPU provider keeps them in device memory.";
        throw new SdxlModelException(
            $"Loading '{directory}' in {options.MemoryMode} mode needs about {HostMemory.Gigabytes(needed)} of memory "
            + $"({HostMemory.Gigabytes(sum)} of weights in all, the largest the {largestName}'s {HostMemory.Gigabytes(largest)}); "
            + $"{HostMemory.Gigabytes(available)} is available.{advice}");
    }

    /// <summary>
    /// Estimated activation bytes of a VAE decode: the feature maps at full resolution (the last up block's channels;
    /// about twelve of them by measurement — a 512² decode of the full-size SDXL VAE on the CPU provider raised the
    /// resident memory by 1.6 GB) and the middle block's single-head attention scores over all latent pixels; a tiled
    /// decode needs them for one tile.
    /// </summary>
    public static long EstimateDecodeBytes(int imageWidth, int imageHeight, int firstChannels, int vaeScale, int? tileSize)
    {
        long w = tileSize is { } t ? Math.Min(t, imageWidth) : imageWidth;
        long h = tileSize is { } s ? Math.Min(s, imageHeight) : imageHeight;
        long tokens = (w / vaeScale) * (h / vaeScale);
        return (12 * w * h * firstChannels * sizeof(float)) + (tokens * tokens * sizeof(float));
    }

    /// <summary>Checks that a generation's activations (and, loading per phase, the UNet) fit in what is available now.</summary>
    /// <exception cref="ArgumentOutOfRangeException">They do not; the message says what to lower.</exception>
    public static void CheckGeneration(long unetActivations, long decodeActivations, long unetWeightsToLoad, ExecutionProviderOptions options, int width, int height, int batch, bool tiled)
    {
        if (options.Kind != ExecutionProviderKind.Cpu || HostMemory.AvailableBytes() is not { } available)
        {
            return;
        }

        long denoise = unetActivations + (long)(unetWeightsToLoad * SessionOverhead);
        long needed = Math.Max(denoise, decodeActivations);
        if (needed <= available)
        {
            return;
        }

        var fix = decodeActivations > denoise && !tiled
            ? "Decoding is the largest part: enable tiled VAE decoding (WithTiledVae, --vae-tiling), or lower the size."
            : "Lower the size or the batch, or use a GPU provider.";
        throw new ArgumentOutOfRangeException(nameof(GenerationRequest.Width), width,
            $"A {width}x{height} generation with BatchSize {batch} needs about {HostMemory.Gigabytes(needed)} of memory beyond the loaded models "
            + $"(denoising {HostMemory.Gigabytes(denoise)}, VAE decode {HostMemory.Gigabytes(decodeActivations)}{(tiled ? ", tiled" : string.Empty)}); "
            + $"{HostMemory.Gigabytes(available)} is available. {fix}");
    }

    private static long Need(long weights) => (long)(weights * SessionOverhead) + BaseBytes;
}
