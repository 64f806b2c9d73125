using DataType = Onnx.TensorProto.Types.DataType;

namespace Sdxl.Net.Synthetic;

/// <summary>The network pieces the synthetic models are made of, written as ONNX nodes.</summary>
internal static class Layers
{
    /// <summary><c>x · W + b</c> over the last axis.</summary>
    /// <remarks>
    /// With module node names, <paramref name="twoDimensional"/> inputs become a torch-style <c>Gemm</c> (transB = 1,
    /// weight [out, in] named <c>{name}.weight</c>) and others a <c>MatMul</c> on a renamed <c>onnx::MatMul_N</c> [in, out]
    /// weight; the values and the product are the same either way.
    /// </remarks>
    public static string Linear(this OnnxGraphBuilder g, string name, string x, int inFeatures, int outFeatures, bool bias = true, float gain = 1f, bool twoDimensional = false)
    {
        float std = gain / MathF.Sqrt(inFeatures);
        if (!g.ModuleNodeNames)
        {
            var weight = g.Weight(name + ".weight", std, inFeatures, outFeatures);
            var y = g.Node("MatMul", [x, weight]);
            return bias ? g.Node("Add", [y, g.Weight(name + ".bias", 0.05f, outFeatures)]) : y;
        }

        var path = ModuleNodePath(name);
        if (twoDimensional)
        {
            var transposed = g.WeightTransposed(name + ".weight", std, inFeatures, outFeatures);
            string[] inputs = bias ? [x, transposed, g.Weight(name + ".bias", 0.05f, outFeatures)] : [x, transposed];
            return g.NamedNode(path + "/Gemm", "Gemm", inputs, Attr.Int("transB", 1));
        }

        var renamed = g.Weight(g.ExportedMatMulWeightName(), std, inFeatures, outFeatures);
        var product = g.NamedNode(path + "/MatMul", "MatMul", [x, renamed]);
        return bias ? g.NamedNode(path + "/Add", "Add", [product, g.Weight(name + ".bias", 0.05f, outFeatures)]) : product;
    }

    /// <summary>A module path as torch writes it into node names: <c>a.b.1.c</c> → <c>/a/b.1/c</c>.</summary>
    public static string ModuleNodePath(string module)
    {
        var parts = module.Split('.');
        var segments = new List<string>();
        foreach (var part in parts)
        {
            // Numeric indices stay attached to their container: down_blocks.1 is one segment.
            if (segments.Count > 0 && part.Length > 0 && char.IsAsciiDigit(part[0]))
            {
                segments[^1] += "." + part;
            }
            else
            {
                segments.Add(part);
            }
        }

        return "/" + string.Join('/', segments);
    }

    /// <summary>A 2-D convolution with "same" padding (and the usual stride-2 shape with <paramref name="stride"/> 2).</summary>
    public static string Conv(this OnnxGraphBuilder g, string name, string x, int inChannels, int outChannels, int kernel = 3, int stride = 1, float gain = 1f)
    {
        var weight = g.Weight(name + ".weight", gain / MathF.Sqrt(inChannels * kernel * kernel), outChannels, inChannels, kernel, kernel);
        var bias = g.Weight(name + ".bias", 0.05f, outChannels);
        var pad = kernel / 2;
        if (g.ModuleNodeNames)
        {
            return g.NamedNode(ModuleNodePath(name) + "/Conv", "Conv", [x, weight, bias],
                Attr.Ints("kernel_shape", kernel, kernel),
                Attr.Ints("pads", pad, pad, pad, pad),
                Attr.Ints("strides", stride, stride));
        }

        return g.Node("Conv", [x, weight, bias],
            Attr.Ints("kernel_shape", kernel, kernel),
            Attr.Ints("pads", pad, pad, pad, pad),
            Attr.Ints("strides", stride, stride));
    }

    /// <summary><c>x · sigmoid(x)</c>.</summary>
    public static string SiLU(this OnnxGraphBuilder g, string x) => g.Node("Mul", [x, g.Node("Sigmoid", [x])]);

    /// <summary>
    /// Group normalization of an NCHW tensor, written the way torch exports it before opset 18: reshape to
    /// [N, groups, −1], InstanceNormalization, reshape back, per-channel affine.
    /// </summary>
    public static string GroupNorm(this OnnxGraphBuilder g, string name, string x, int channels, int groups)
    {
        var grouped = g.Node("Reshape", [x, g.Int64Constant(0, groups, -1)]);
        var normalized = g.Node("InstanceNormalization",
            [grouped, g.FloatConstant(Enumerable.Repeat(1f, groups).ToArray(), groups), g.FloatConstant(new float[groups], groups)],
            Attr.Float("epsilon", 1e-5f));
        var restored = g.Node("Reshape", [normalized, g.Node("Shape", [x])]);
        var scaled = g.Node("Mul", [restored, g.NormScale(name + ".weight", channels, 1, 1)]);
        return g.Node("Add", [scaled, g.Weight(name + ".bias", 0.05f, channels, 1, 1)]);
    }

    /// <summary>Layer normalization over the last axis.</summary>
    public static string LayerNorm(this OnnxGraphBuilder g, string name, string x, int features) =>
        g.Node("LayerNormalization", [x, g.NormScale(name + ".weight", features), g.Weight(name + ".bias", 0.05f, features)],
            Attr.Int("axis", -1), Attr.Float("epsilon", 1e-5f));

    /// <summary>
    /// The sinusoidal embedding of every element of <paramref name="x"/> (a new last axis of <paramref name="dim"/>):
    /// cos then sin (diffusers' flip_sin_to_cos), frequencies exp(−ln(10000)·i / (dim/2)).
    /// </summary>
    public static string Sinusoidal(this OnnxGraphBuilder g, string x, int dim)
    {
        var half = dim / 2;
        var frequencies = new float[half];
        for (var i = 0; i < half; i++)
        {
            frequencies[i] = MathF.Exp(-MathF.Log(10000f) * i / half);
        }

        var column = g.Node("Unsqueeze", [x, g.Int64Constant(-1)]);
        var arguments = g.Node("Mul", [column, g.FloatConstant(frequencies, half)]);
        return g.Node("Concat", [g.Node("Cos", [arguments]), g.Node("Sin", [arguments])], Attr.Int("axis", -1));
    }

    /// <summary>The rows [0, length) of a [rows, …] table, where <paramref name="length"/> is a 1-element int64 tensor.</summary>
    public static string TakeRows(this OnnxGraphBuilder g, string table, string length) =>
        g.Node("Slice", [table, g.Int64Constant(0), length, g.Int64Constant(0)]);

    /// <summary>Dimension <paramref name="axis"/> of <paramref name="x"/> as a 1-element int64 tensor.</summary>
    public static string Dimension(this OnnxGraphBuilder g, string x, int axis) =>
        g.Node("Slice", [g.Node("Shape", [x]), g.Int64Constant(axis), g.Int64Constant(axis + 1)]);

    /// <summary>Casts to float32 unless already float32.</summary>
    public static string ToFloat(this OnnxGraphBuilder g, string x, DataType type) =>
        type == DataType.Float ? x : g.Cast(x, DataType.Float);
}
