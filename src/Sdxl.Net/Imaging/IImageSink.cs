namespace Sdxl.Net.Imaging;

/// <summary>
/// Receives finished generations: files, streams, memory, callbacks. A sink never leaves a half-written output:
/// on failure it throws and whatever it wrote is removed.
/// </summary>
public interface IImageSink
{
    /// <summary>Writes the images of <paramref name="result"/>.</summary>
    ValueTask WriteAsync(GenerationResult result, CancellationToken cancellationToken = default);
}

/// <summary>Keeps every result in memory (tests, previews, in-process consumers).</summary>
public sealed class InMemoryImageSink : IImageSink
{
    private readonly List<GenerationResult> _results = [];

    /// <summary>The results written so far.</summary>
    public IReadOnlyList<GenerationResult> Results
    {
        get
        {
            lock (_results)
            {
                return _results.ToArray();
            }
        }
    }

    /// <inheritdoc />
    public ValueTask WriteAsync(GenerationResult result, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(result);
        lock (_results)
        {
            _results.Add(result);
        }

        return ValueTask.CompletedTask;
    }
}

/// <summary>Calls a delegate with each result.</summary>
/// <param name="callback">The delegate.</param>
public sealed class CallbackImageSink(Func<GenerationResult, CancellationToken, ValueTask> callback) : IImageSink
{
    /// <inheritdoc />
    public ValueTask WriteAsync(GenerationResult result, CancellationToken cancellationToken = default) => callback(result, cancellationToken);
}
