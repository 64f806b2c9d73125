using Sdxl.Net.Randomness;
using Sdxl.Net.Schedulers;
using Sdxl.Net.Synthetic;

namespace Sdxl.Net.Tests.Reliability;

/// <summary>A temporary folder removed on dispose.</summary>
internal sealed class TempFolder : IDisposable
{
    public TempFolder()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "sdxl-rel-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string this[string name] => System.IO.Path.Combine(Path, name);

    /// <summary>Every file below the folder, relative, sorted (temporary files included: they must not survive a failure).</summary>
    public string[] Files() => Directory.GetFiles(Path, "*", SearchOption.AllDirectories)
        .Select(f => System.IO.Path.GetRelativePath(Path, f)).Order(StringComparer.Ordinal).ToArray();

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Fault injection for reliability tests.</summary>
internal static class Faults
{
    /// <summary>The tiny 64×64, 2-step request every fault test starts from.</summary>
    public static GenerationRequest Tiny(long seed = 1) => new()
    {
        Prompt = "a lighthouse at dawn",
        Width = 64,
        Height = 64,
        Steps = 2,
        GuidanceScale = 5,
        Seed = seed,
    };

    /// <summary>A writable copy of a synthetic model folder, to break on purpose.</summary>
    public static TempFolder CopyModel(SyntheticModelOptions? options = null)
    {
        var source = SyntheticModels.Get(options);
        var copy = new TempFolder();
        foreach (var file in Directory.GetFiles(source, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(copy.Path, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }

        return copy;
    }

    /// <summary>Builds a pipeline over <paramref name="model"/> with the defaults.</summary>
    public static SdxlPipeline Pipeline(string model) => SdxlPipeline.CreateBuilder().WithModel(model).Build();
}

/// <summary>
/// Wraps a scheduler and rewrites the latents after chosen steps: the seam through which tests produce the
/// non-finite or overflowing latents an fp16 model would, without a model that actually overflows.
/// </summary>
internal sealed class TamperingScheduler(IScheduler inner, Action<int, Span<float>> afterStep) : IScheduler
{
    public string Name => inner.Name;

    public int Order => inner.Order;

    public ISchedulerRun CreateRun(int inferenceSteps) => new Run(inner.CreateRun(inferenceSteps), afterStep);

    private sealed class Run(ISchedulerRun inner, Action<int, Span<float>> afterStep) : ISchedulerRun
    {
        private int _steps;

        public IReadOnlyList<float> Timesteps => inner.Timesteps;

        public IReadOnlyList<float>? Sigmas => inner.Sigmas;

        public float InitNoiseSigma => inner.InitNoiseSigma;

        public int Order => inner.Order;

        public void SetBeginIndex(int beginIndex) => inner.SetBeginIndex(beginIndex);

        public void ScaleModelInput(ReadOnlySpan<float> sample, float timestep, Span<float> destination) =>
            inner.ScaleModelInput(sample, timestep, destination);

        public void Step(ReadOnlySpan<float> modelOutput, float timestep, Span<float> sample, IRandomSource random)
        {
            inner.Step(modelOutput, timestep, sample, random);
            afterStep(++_steps, sample);
        }

        public void AddNoise(ReadOnlySpan<float> original, ReadOnlySpan<float> noise, float timestep, Span<float> destination) =>
            inner.AddNoise(original, noise, timestep, destination);
    }
}

/// <summary>A synchronous progress sink (Progress&lt;T&gt; posts to the thread pool, too late to cancel at a phase).</summary>
internal sealed class PhaseAction(Action<GenerationProgress> action) : IProgress<GenerationProgress>
{
    public void Report(GenerationProgress value) => action(value);
}

/// <summary>A stream that accepts <paramref name="capacity"/> bytes and then fails like a full disk.</summary>
internal sealed class FullDiskStream(Stream inner, long capacity) : Stream
{
    private long _written;

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => _written; set => throw new NotSupportedException(); }

    public override void Flush() => inner.Flush();

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count)
    {
        if (_written + count > capacity)
        {
            int fits = (int)(capacity - _written);
            inner.Write(buffer, offset, fits);
            _written += fits;
            throw new IOException("No space left on device", unchecked((int)0x8007_0070));
        }

        inner.Write(buffer, offset, count);
        _written += count;
    }
}
