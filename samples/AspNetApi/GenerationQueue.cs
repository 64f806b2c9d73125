namespace AspNetApi;

/// <summary>Queue settings (configuration section <c>GenerationQueue</c>).</summary>
public sealed class GenerationQueueOptions
{
    /// <summary>Generations that run at once (1 suits one GPU: SDXL saturates it).</summary>
    public int MaxConcurrency { get; set; } = 1;

    /// <summary>Requests admitted at once, running or waiting; beyond it requests get 503.</summary>
    public int Capacity { get; set; } = 4;
}

/// <summary>
/// Admits at most <see cref="GenerationQueueOptions.Capacity"/> requests and runs at most
/// <see cref="GenerationQueueOptions.MaxConcurrency"/> of them; the rest wait in arrival order.
/// </summary>
public sealed class GenerationQueue
{
    private readonly SemaphoreSlim _running;
    private readonly int _capacity;
    private int _admitted;

    /// <summary>Creates the queue.</summary>
    public GenerationQueue(GenerationQueueOptions options)
    {
        if (options.MaxConcurrency < 1 || options.Capacity < options.MaxConcurrency)
        {
            throw new ArgumentException($"GenerationQueue needs MaxConcurrency >= 1 and Capacity >= MaxConcurrency; got {options.MaxConcurrency} and {options.Capacity}.");
        }

        _running = new SemaphoreSlim(options.MaxConcurrency, options.MaxConcurrency);
        _capacity = options.Capacity;
    }

    /// <summary>
    /// Runs <paramref name="work"/> when a slot frees up; returns <see langword="false"/> without running it when the
    /// queue is full. Cancelling <paramref name="cancellationToken"/> leaves the queue, or cancels the running work.
    /// </summary>
    public async Task<(bool Admitted, T? Result)> TryRunAsync<T>(Func<CancellationToken, Task<T>> work, CancellationToken cancellationToken)
    {
        if (Interlocked.Increment(ref _admitted) > _capacity)
        {
            Interlocked.Decrement(ref _admitted);
            return (false, default);
        }

        try
        {
            await _running.WaitAsync(cancellationToken);
            try
            {
                return (true, await work(cancellationToken));
            }
            finally
            {
                _running.Release();
            }
        }
        finally
        {
            Interlocked.Decrement(ref _admitted);
        }
    }
}
