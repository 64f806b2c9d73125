namespace Sdxl.Net.Randomness;

/// <summary>
/// One random source per image of a batch, like passing a list of generators to a diffusers pipeline: every
/// request is split into as many equal contiguous chunks as there are sources, and chunk i is drawn from
/// source i (what <c>randn_tensor</c> does with a generator list), so each image depends only on its own seed.
/// </summary>
public sealed class PerImageRandomSource : IRandomSource
{
    private readonly IRandomSource[] _sources;

    /// <summary>Creates a source that draws chunk i of every request from <paramref name="sources"/>[i].</summary>
    /// <param name="sources">One source per image, in batch order.</param>
    /// <exception cref="ArgumentNullException"><paramref name="sources"/> or one of its items is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="sources"/> is empty.</exception>
    public PerImageRandomSource(IReadOnlyList<IRandomSource> sources)
    {
        ArgumentNullException.ThrowIfNull(sources);
        if (sources.Count == 0)
        {
            throw new ArgumentException("At least one random source is required (one per image).", nameof(sources));
        }

        _sources = new IRandomSource[sources.Count];
        for (var i = 0; i < _sources.Length; i++)
        {
            _sources[i] = sources[i]
                ?? throw new ArgumentNullException(nameof(sources), $"The random source for image {i} is null.");
        }
    }

    /// <summary>Gets the number of sources, which is the batch size every request is split by.</summary>
    public int Count => _sources.Length;

    /// <summary>The source of image <paramref name="index"/>.</summary>
    public IRandomSource this[int index] => _sources[index];

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">The length is not a multiple of <see cref="Count"/>.</exception>
    public void NextNormal(Span<float> destination)
    {
        var chunkLength = ChunkLength(destination.Length);
        for (var i = 0; i < _sources.Length; i++)
        {
            _sources[i].NextNormal(destination.Slice(i * chunkLength, chunkLength));
        }
    }

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">The length is not a multiple of <see cref="Count"/>.</exception>
    public void NextUniform(Span<float> destination)
    {
        var chunkLength = ChunkLength(destination.Length);
        for (var i = 0; i < _sources.Length; i++)
        {
            _sources[i].NextUniform(destination.Slice(i * chunkLength, chunkLength));
        }
    }

    private int ChunkLength(int length)
    {
        if (length % _sources.Length != 0)
        {
            throw new ArgumentException(
                $"A request of {length} values cannot be split evenly across {_sources.Length} per-image random " +
                $"sources; its length must be a multiple of {_sources.Length} (the batch size).",
                "destination");
        }

        return length / _sources.Length;
    }
}
