namespace Sdxl.Net;

/// <summary>
/// Counts a pipeline's running generations so that disposing it never frees a native session under a running call:
/// closing cancels every running generation (through a token linked into each) and the native resources are
/// released when the last one has left — at once when none runs.
/// </summary>
internal sealed class PipelineLifetime
{
    // The lifetimes whose generation the current async flow is inside: a Dispose called from a progress callback or
    // a sink of its own generation must not wait for that generation (it would wait for itself).
    private static readonly AsyncLocal<Frame?> Inside = new();

    private readonly object _gate = new();
    private readonly CancellationTokenSource _closing = new();
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Action _release;
    private int _running;
    private bool _closed;

    /// <param name="release">Frees the native resources; called exactly once, with no generation running.</param>
    public PipelineLifetime(Action release) => _release = release;

    /// <summary>Whether <see cref="Close"/> was called.</summary>
    public bool IsClosed
    {
        get
        {
            lock (_gate)
            {
                return _closed;
            }
        }
    }

    /// <summary>Cancelled when the pipeline is closed.</summary>
    public CancellationToken Closing => _closing.Token;

    /// <summary>Registers a running generation; dispose the returned scope when it ends.</summary>
    /// <exception cref="ObjectDisposedException">The pipeline is closed.</exception>
    public Scope Enter(object owner)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_closed, owner);
            _running++;
        }

        Inside.Value = new Frame(this, Inside.Value);
        return new Scope(this);
    }

    /// <summary>
    /// Closes the pipeline: no new generation starts, running ones are cancelled, and the returned task completes
    /// once they have left and the resources are released.
    /// </summary>
    public Task Close()
    {
        bool releaseNow;
        lock (_gate)
        {
            if (_closed)
            {
                return _released.Task;
            }

            _closed = true;
            releaseNow = _running == 0;
        }

        _closing.Cancel();
        if (releaseNow)
        {
            Release();
        }

        return _released.Task;
    }

    /// <summary>Whether the calling flow is inside a generation of this pipeline (so waiting for it would deadlock).</summary>
    public bool IsCurrentFlowInside()
    {
        for (var frame = Inside.Value; frame is not null; frame = frame.Next)
        {
            if (ReferenceEquals(frame.Lifetime, this))
            {
                return true;
            }
        }

        return false;
    }

    private void Exit()
    {
        bool releaseNow;
        lock (_gate)
        {
            _running--;
            releaseNow = _closed && _running == 0;
        }

        if (releaseNow)
        {
            Release();
        }
    }

    private void Release()
    {
        try
        {
            _release();
            _released.TrySetResult();
        }
        catch (Exception e)
        {
            _released.TrySetException(e);
        }
        finally
        {
            _closing.Dispose();
        }
    }

    private sealed record Frame(PipelineLifetime Lifetime, Frame? Next);

    /// <summary>One running generation.</summary>
    internal readonly struct Scope : IDisposable
    {
        private readonly PipelineLifetime _owner;

        internal Scope(PipelineLifetime owner) => _owner = owner;

        public void Dispose() => _owner?.Exit();
    }
}
