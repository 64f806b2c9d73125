using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Sdxl.Net.Runtime;

/// <summary>The declared element type and shape of one model input or output.</summary>
/// <param name="Name">The ONNX name.</param>
/// <param name="ElementType">The element type.</param>
/// <param name="Dimensions">The dimensions; -1 for dynamic axes.</param>
internal sealed record TensorSpec(string Name, TensorElementType ElementType, int[] Dimensions)
{
    public int Rank => Dimensions.Length;

    public bool IsFloatingPoint => ElementType is TensorElementType.Float or TensorElementType.Float16;

    public override string ToString() =>
        $"{Name}: {TypeName(ElementType)}[{string.Join(",", Dimensions.Select(d => d < 0 ? "?" : d.ToString(System.Globalization.CultureInfo.InvariantCulture)))}]";

    public static string TypeName(TensorElementType type) => type switch
    {
        TensorElementType.Float => "float32",
        TensorElementType.Float16 => "float16",
        TensorElementType.Double => "float64",
        TensorElementType.BFloat16 => "bfloat16",
        TensorElementType.Int64 => "int64",
        TensorElementType.Int32 => "int32",
        _ => type.ToString().ToLowerInvariant(),
    };
}

/// <summary>
/// One ONNX model file opened in an ONNX Runtime session, with its signature read from the session metadata and
/// the element-type adaptation (float32 ⇄ float16, int64/int32 ids, rank-0 or rank-1 timesteps) done in one place.
/// </summary>
/// <remarks>
/// Sessions are thread-safe for concurrent <c>Run</c> calls (ONNX Runtime's contract), so one instance serves every
/// generation of a pipeline.
/// </remarks>
internal sealed class OnnxModel : IDisposable
{
    private readonly ExecutionProviderOptions _options;
    private readonly SessionResidency? _residency;
    private readonly SessionCustomization? _customization;
    private readonly object _gate;
    private InferenceSession? _session;
    private ExecutionProviderKind _provider;
    private int _leases;
    private bool _disposed;

    /// <summary>Opens the model and reads its signature.</summary>
    /// <param name="component">The component's folder name.</param>
    /// <param name="path">The model file.</param>
    /// <param name="options">The execution provider.</param>
    /// <param name="residency">
    /// With <see cref="MemoryMode.LoadPerPhase"/>: the folder's residency. No session is created here: the signature is
    /// read from the file (graph inputs and outputs, without the weights) and the external data's extent is checked, so
    /// building costs no model load; the first run of the phase opens the session.
    /// </param>
    /// <param name="customization">The weights overlay (initializer overrides), applied to every session this model opens.</param>
    public OnnxModel(string component, string path, ExecutionProviderOptions options, SessionResidency? residency = null, SessionCustomization? customization = null)
    {
        Component = component;
        Path = path;
        _options = options;
        _customization = customization;
        _residency = residency;
        _gate = residency?.Gate ?? new object();
        if (residency is null)
        {
            _session = SessionFactory.Create(path, component, options, out var provider, customization);
            _provider = provider;
            Inputs = ReadSpecs(_session.InputMetadata);
            Outputs = ReadSpecs(_session.OutputMetadata);
        }
        else
        {
            // Until a session exists the requested provider stands for the one it will run on (a fallback shows after).
            // ONNX Runtime's native library is still required at Build, so a missing runtime package fails there.
            NativeRuntime.EnsureLoaded();
            _provider = options.Kind;
            (Inputs, Outputs) = ReadSpecs(component, path);
            residency.Register(this);
        }
    }

    /// <summary>The component's name as the folder names it (e.g. <c>unet</c>), used in error messages.</summary>
    public string Component { get; }

    public string Path { get; }

    /// <summary>
    /// The provider the session actually runs on (the requested one, or a configured fallback; with
    /// <see cref="MemoryMode.LoadPerPhase"/>, the requested one until the first session is opened).
    /// </summary>
    public ExecutionProviderKind Provider
    {
        get
        {
            lock (_gate)
            {
                return _provider;
            }
        }
    }

    /// <summary>The execution provider options the session was created with.</summary>
    public ExecutionProviderOptions Options => _options;

    /// <summary>Whether a session is currently open (always, except between phases with <see cref="MemoryMode.LoadPerPhase"/>).</summary>
    public bool IsLoaded
    {
        get
        {
            lock (_gate)
            {
                return _session is not null;
            }
        }
    }

    public IReadOnlyDictionary<string, TensorSpec> Inputs { get; }

    public IReadOnlyDictionary<string, TensorSpec> Outputs { get; }

    public string Signature =>
        $"inputs ({string.Join("; ", Inputs.Values)}) → outputs ({string.Join("; ", Outputs.Values)})";

    public TensorSpec RequireInput(string name, params TensorElementType[] allowed) => Require(Inputs, "input", name, allowed);

    public TensorSpec RequireOutput(string name, params TensorElementType[] allowed) => Require(Outputs, "output", name, allowed);

    /// <summary>
    /// Takes the session for a series of runs (opening it first when its phase is not resident); the session stays
    /// open until the lease is disposed.
    /// </summary>
    /// <remarks>
    /// Every mode counts leases, so <see cref="Dispose"/> never frees a session under a running call: it closes the
    /// session at once when no lease holds it, else when the last lease is returned.
    /// </remarks>
    public SessionLease Acquire()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_session is null)
            {
                _residency!.ReleaseOtherPhases(this);
                _session = SessionFactory.Create(Path, Component, _options, out _provider, _customization);
                CheckSignatureUnchanged(_session);
            }

            _leases++;
            return new SessionLease(this, _session);
        }
    }

    /// <summary>Runs the model; the caller disposes the returned values.</summary>
    public IDisposableReadOnlyCollection<OrtValue> Run(
        IReadOnlyCollection<string> inputNames,
        IReadOnlyCollection<OrtValue> inputs,
        IReadOnlyCollection<string> outputNames,
        RunOptions? runOptions)
    {
        using var lease = Acquire();
        long start = OnnxRunTimer.Start();
        try
        {
            if (runOptions is null)
            {
                using var ro = new RunOptions();
                return lease.Session.Run(ro, inputNames, inputs, outputNames);
            }

            return lease.Session.Run(runOptions, inputNames, inputs, outputNames);
        }
        catch (OnnxRuntimeException e) when (runOptions?.Terminate == true)
        {
            throw new OperationCanceledException($"{Component}: the run was cancelled.", e);
        }
        catch (OnnxRuntimeException e)
        {
            throw new SdxlModelException($"{Component}: ONNX Runtime failed to run the model: {SessionFactory.FirstLine(e.Message)}", e);
        }
        finally
        {
            OnnxRunTimer.Stop(Component, start);
        }
    }

    /// <summary>Runs the model on the values bound to <paramref name="binding"/> (outputs are written in place).</summary>
    public void RunWithBinding(InferenceSession session, OrtIoBinding binding, RunOptions runOptions)
    {
        long start = OnnxRunTimer.Start();
        try
        {
            session.RunWithBinding(runOptions, binding);
        }
        catch (OnnxRuntimeException e) when (runOptions.Terminate)
        {
            throw new OperationCanceledException($"{Component}: the run was cancelled.", e);
        }
        catch (OnnxRuntimeException e)
        {
            throw new SdxlModelException($"{Component}: ONNX Runtime failed to run the model: {SessionFactory.FirstLine(e.Message)}", e);
        }
        finally
        {
            OnnxRunTimer.Stop(Component, start);
        }
    }

    /// <summary>Closes the session now, or when the last lease is returned if a call still uses it.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            if (_leases == 0)
            {
                _session?.Dispose();
                _session = null;
            }
        }
    }

    /// <summary>Closes the session when no lease holds it (per-phase mode only). Called under the residency gate.</summary>
    internal void ReleaseIfIdle()
    {
        if (_residency is not null && _leases == 0 && _session is not null)
        {
            _session.Dispose();
            _session = null;
        }
    }

    private void ReturnLease()
    {
        lock (_gate)
        {
            _leases--;
            if (_disposed && _leases == 0)
            {
                // Disposed while a call held the session: the last call out closes it.
                _session?.Dispose();
                _session = null;
            }
        }
    }

    /// <summary>Creates a tensor of the declared floating-point type from float32 data.</summary>
    public static OrtValue CreateFloatTensor(TensorSpec spec, ReadOnlySpan<float> data, long[] shape)
    {
        switch (spec.ElementType)
        {
            case TensorElementType.Float:
            {
                var value = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, TensorElementType.Float, shape);
                data.CopyTo(value.GetTensorMutableDataAsSpan<float>());
                return value;
            }

            case TensorElementType.Float16:
            {
                var value = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, TensorElementType.Float16, shape);
                TensorPrimitives.ConvertToHalf(data, MemoryMarshal.Cast<Float16, Half>(value.GetTensorMutableDataAsSpan<Float16>()));
                return value;
            }

            case TensorElementType.Double:
            {
                var value = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, TensorElementType.Double, shape);
                var dest = value.GetTensorMutableDataAsSpan<double>();
                for (int i = 0; i < data.Length; i++)
                {
                    dest[i] = data[i];
                }

                return value;
            }

            default:
                throw new InvalidOperationException($"{spec.Name}: cannot feed float data to a {TensorSpec.TypeName(spec.ElementType)} input.");
        }
    }

    /// <summary>Creates a scalar-like tensor (e.g. the UNet timestep) of the declared type and rank.</summary>
    public static OrtValue CreateScalar(TensorSpec spec, double value, int length = 1)
    {
        long[] shape = spec.Rank == 0 ? [] : [length];
        switch (spec.ElementType)
        {
            case TensorElementType.Int64:
            {
                var v = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, TensorElementType.Int64, shape);
                v.GetTensorMutableDataAsSpan<long>().Fill((long)value);
                return v;
            }

            case TensorElementType.Int32:
            {
                var v = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, TensorElementType.Int32, shape);
                v.GetTensorMutableDataAsSpan<int>().Fill((int)value);
                return v;
            }

            default:
            {
                Span<float> data = stackalloc float[length];
                data.Fill((float)value);
                return CreateFloatTensor(spec, data, shape);
            }
        }
    }

    /// <summary>Creates an integer id tensor of the declared type (int64 or int32).</summary>
    public static OrtValue CreateIds(TensorSpec spec, ReadOnlySpan<int> ids, long[] shape)
    {
        if (spec.ElementType == TensorElementType.Int32)
        {
            var v = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, TensorElementType.Int32, shape);
            ids.CopyTo(v.GetTensorMutableDataAsSpan<int>());
            return v;
        }

        var value = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, TensorElementType.Int64, shape);
        var dest = value.GetTensorMutableDataAsSpan<long>();
        for (int i = 0; i < ids.Length; i++)
        {
            dest[i] = ids[i];
        }

        return value;
    }

    /// <summary>The shape of a tensor value.</summary>
    public static long[] ShapeOf(OrtValue value) => value.GetTensorTypeAndShape().Shape;

    /// <summary>Copies a floating-point output into float32 <paramref name="destination"/>, converting as needed.</summary>
    public static void ReadFloat(OrtValue value, Span<float> destination)
    {
        var info = value.GetTensorTypeAndShape();
        if (info.ElementCount != destination.Length)
        {
            throw new InvalidOperationException($"Output holds {info.ElementCount} values; {destination.Length} were expected.");
        }

        switch (info.ElementDataType)
        {
            case TensorElementType.Float:
                value.GetTensorDataAsSpan<float>().CopyTo(destination);
                break;
            case TensorElementType.Float16:
                TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<Float16, Half>(value.GetTensorDataAsSpan<Float16>()), destination);
                break;
            case TensorElementType.Double:
                var src = value.GetTensorDataAsSpan<double>();
                for (int i = 0; i < src.Length; i++)
                {
                    destination[i] = (float)src[i];
                }

                break;
            default:
                throw new InvalidOperationException($"Cannot read a {TensorSpec.TypeName(info.ElementDataType)} output as float.");
        }
    }

    /// <summary>Reads a floating-point output into a new float32 array.</summary>
    public static float[] ReadFloat(OrtValue value)
    {
        var result = new float[value.GetTensorTypeAndShape().ElementCount];
        ReadFloat(value, result);
        return result;
    }

    private TensorSpec Require(IReadOnlyDictionary<string, TensorSpec> specs, string kind, string name, TensorElementType[] allowed)
    {
        if (!specs.TryGetValue(name, out var spec))
        {
            throw new SdxlModelException(
                $"{Component}: the model has no {kind} '{name}'. Expected an SDXL {Component} exported by optimum or Olive; found {Signature}. File: '{Path}'.");
        }

        if (allowed.Length > 0 && Array.IndexOf(allowed, spec.ElementType) < 0)
        {
            throw new SdxlModelException(
                $"{Component}: {kind} '{name}' is {TensorSpec.TypeName(spec.ElementType)}; expected {string.Join(" or ", allowed.Select(TensorSpec.TypeName))}. Found {Signature}. File: '{Path}'.");
        }

        return spec;
    }

    // The signature from the file itself, as ONNX Runtime would report it: graph inputs that are initializers are not
    // inputs to feed, and only tensors are kept.
    private static (Dictionary<string, TensorSpec> Inputs, Dictionary<string, TensorSpec> Outputs) ReadSpecs(string component, string path)
    {
        FileAccessCheck.EnsureModelFile(path, component);
        OnnxGraph graph;
        try
        {
            graph = OnnxGraphReader.Read(path);
            graph.CheckExternalData();
        }
        catch (SdxlModelException e)
        {
            throw new SdxlModelException($"{component}: {e.Message}", e);
        }

        var inputs = new Dictionary<string, TensorSpec>(StringComparer.Ordinal);
        foreach (var value in graph.InputValues)
        {
            if (value.ElementType != 0 && !graph.Initializers.ContainsKey(value.Name))
            {
                inputs[value.Name] = Spec(value);
            }
        }

        var outputs = new Dictionary<string, TensorSpec>(StringComparer.Ordinal);
        foreach (var value in graph.OutputValues)
        {
            if (value.ElementType != 0)
            {
                outputs[value.Name] = Spec(value);
            }
        }

        return (inputs, outputs);

        static TensorSpec Spec(OnnxValueInfo value) => new(
            value.Name,
            (TensorElementType)value.ElementType,
            Array.ConvertAll(value.Dimensions, d => d is >= 0 and <= int.MaxValue ? (int)d : -1));
    }

    // A session opened later must have the signature that was read (and validated) when the pipeline was built.
    private void CheckSignatureUnchanged(InferenceSession session)
    {
        var inputs = ReadSpecs(session.InputMetadata);
        var outputs = ReadSpecs(session.OutputMetadata);
        if (!SameSpecs(Inputs, inputs, inferred: false) || !SameSpecs(Outputs, outputs, inferred: true))
        {
            session.Dispose();
            _session = null;
            throw new SdxlModelException(
                $"{Component}: '{Path}' changed after the pipeline was built: its signature was {Signature}, ONNX Runtime now reports inputs ({string.Join("; ", inputs.Values)}) → outputs ({string.Join("; ", outputs.Values)}). Build the pipeline again.");
        }

        // Outputs: ONNX Runtime reports the shapes its inference found, which may fix an axis the file leaves symbolic.
        static bool SameSpecs(IReadOnlyDictionary<string, TensorSpec> expected, Dictionary<string, TensorSpec> actual, bool inferred) =>
            expected.Count == actual.Count && expected.All(e => actual.TryGetValue(e.Key, out var a)
                && a.ElementType == e.Value.ElementType && a.Rank == e.Value.Rank
                && e.Value.Dimensions.Select((d, i) => d == a.Dimensions[i] || (inferred && d < 0)).All(same => same));
    }

    private static Dictionary<string, TensorSpec> ReadSpecs(IReadOnlyDictionary<string, NodeMetadata> metadata)
    {
        var specs = new Dictionary<string, TensorSpec>(StringComparer.Ordinal);
        foreach (var (name, meta) in metadata)
        {
            if (meta.IsTensor)
            {
                specs[name] = new TensorSpec(name, meta.ElementDataType, meta.Dimensions);
            }
        }

        return specs;
    }

    /// <summary>The right to use a model's session until disposed.</summary>
    internal readonly struct SessionLease : IDisposable
    {
        private readonly OnnxModel _owner;

        internal SessionLease(OnnxModel owner, InferenceSession session)
        {
            _owner = owner;
            Session = session;
        }

        public InferenceSession Session { get; }

        public void Dispose() => _owner?.ReturnLease();
    }
}
