using Sdxl.Net.Runtime;

namespace Sdxl.Net.Lora;

/// <summary>How a module's weight is laid out in its ONNX initializer.</summary>
internal enum WeightLayout
{
    /// <summary><c>MatMul(x, W)</c> (and <c>Gemm</c> without transB): [in, out], the transpose of torch's Linear weight.</summary>
    InOut,

    /// <summary><c>Gemm</c> with transB = 1: [out, in], torch's layout.</summary>
    OutIn,

    /// <summary><c>Conv</c>: [out, in, kh, kw].</summary>
    Convolution,
}

/// <summary>The initializer that holds one module's weight, found through the node that consumes it.</summary>
/// <param name="ModulePath">The dotted module path (<c>down_blocks.1.attentions.0.proj_in</c>).</param>
/// <param name="Node">The consuming node's name.</param>
/// <param name="Weight">The weight initializer.</param>
/// <param name="Layout">How the weight is laid out.</param>
internal sealed record LoraTarget(string ModulePath, string Node, OnnxInitializer Weight, WeightLayout Layout)
{
    /// <summary>The module's (out, in) sizes, with <c>in</c> counting kernel cells for convolutions.</summary>
    public (long Out, long In) MatrixShape => Layout switch
    {
        WeightLayout.InOut => (Weight.Dimensions[1], Weight.Dimensions[0]),
        WeightLayout.OutIn => (Weight.Dimensions[0], Weight.Dimensions[1]),
        _ => (Weight.Dimensions[0], Weight.Dimensions[1] * Weight.Dimensions[2] * Weight.Dimensions[3]),
    };
}

/// <summary>
/// The adaptable modules of one ONNX model. Real exports (optimum, Olive) keep module paths in node names
/// (<c>/down_blocks.1/attentions.0/transformer_blocks.0/attn1/to_q/MatMul</c>) while linear weights are often renamed,
/// transposed initializers (<c>onnx::MatMul_1519</c>), so a module is found by the MatMul, Gemm or Conv node whose
/// weight input is an initializer (directly or through a Cast); initializers named <c>{module}.weight</c> are used too.
/// </summary>
internal sealed class OnnxModuleIndex
{
    private readonly Dictionary<string, LoraTarget> _byPath = new(StringComparer.Ordinal);
    private readonly Dictionary<string, LoraTarget> _byUnderscoreName = new(StringComparer.Ordinal);

    public OnnxModuleIndex(OnnxGraph graph)
    {
        Graph = graph;
        var producers = new Dictionary<string, OnnxNode>(StringComparer.Ordinal);
        foreach (var node in graph.Nodes)
        {
            foreach (var output in node.Outputs)
            {
                producers[output] = node;
            }
        }

        foreach (var node in graph.Nodes)
        {
            if (node.Inputs.Count < 2 || node.Domain.Length > 0 && node.Domain != "ai.onnx")
            {
                continue;
            }

            WeightLayout? layout = node.OpType switch
            {
                "MatMul" => WeightLayout.InOut,
                "Gemm" => node.IntAttribute("transB", 0) == 1 ? WeightLayout.OutIn : WeightLayout.InOut,
                "Conv" => WeightLayout.Convolution,
                _ => null,
            };
            if (layout is null || WeightInitializer(graph, producers, node.Inputs[1]) is not { } weight)
            {
                continue;
            }

            int rank = layout == WeightLayout.Convolution ? 4 : 2;
            if (weight.Dimensions.Length != rank || node.OpType == "Gemm" && node.IntAttribute("transA", 0) != 0)
            {
                continue;
            }

            var path = ModulePathOf(node.Name);
            if (path is null && weight.Name.EndsWith(".weight", StringComparison.Ordinal))
            {
                path = weight.Name[..^".weight".Length];
            }

            if (path is not null && !_byPath.ContainsKey(path))
            {
                Add(new LoraTarget(path, node.Name, weight, layout.Value));
            }
        }
    }

    public OnnxGraph Graph { get; }

    /// <summary>Every adaptable module by dotted path.</summary>
    public IReadOnlyDictionary<string, LoraTarget> Modules => _byPath;

    /// <summary>The module with dotted path <paramref name="path"/>.</summary>
    public LoraTarget? FindByPath(string path) => _byPath.GetValueOrDefault(path);

    /// <summary>The module whose path, with dots written as underscores, is <paramref name="name"/> (kohya's key form).</summary>
    public LoraTarget? FindByUnderscoreName(string name) => _byUnderscoreName.GetValueOrDefault(name);

    /// <summary>
    /// The module path in an exported node name: <c>/a/b.1/c/MatMul</c> → <c>a.b.1.c</c> (the last part names the
    /// operator); <see langword="null"/> when the name carries no path.
    /// </summary>
    internal static string? ModulePathOf(string nodeName)
    {
        if (!nodeName.StartsWith('/'))
        {
            return null;
        }

        int last = nodeName.LastIndexOf('/');
        if (last <= 1)
        {
            return null;
        }

        return nodeName[1..last].Replace('/', '.');
    }

    private void Add(LoraTarget target)
    {
        _byPath[target.ModulePath] = target;
        _byUnderscoreName.TryAdd(target.ModulePath.Replace('.', '_'), target);
    }

    private static OnnxInitializer? WeightInitializer(OnnxGraph graph, Dictionary<string, OnnxNode> producers, string input)
    {
        if (graph.Initializers.TryGetValue(input, out var direct))
        {
            return direct;
        }

        // fp16 exports sometimes keep the weight in one precision and Cast it before use.
        return producers.TryGetValue(input, out var producer) && producer.OpType == "Cast" && producer.Inputs.Count == 1
            && graph.Initializers.TryGetValue(producer.Inputs[0], out var cast)
            ? cast
            : null;
    }
}
