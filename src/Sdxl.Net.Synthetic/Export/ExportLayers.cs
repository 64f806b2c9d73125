namespace Sdxl.Net.Synthetic.Export;

/// <summary>The torch modules the SDXL networks are made of, written as an export writes them.</summary>
internal static class ExportLayers
{
    /// <summary><c>nn.Linear</c>: MatMul with the transposed weight, then Add of <c>{module}.bias</c>.</summary>
    public static string Linear(this ExportGraph g, string module, string x, long inFeatures, long outFeatures, bool bias = true)
    {
        using var scope = g.Enter(module);
        var y = g.Op("MatMul", [x, g.LinearWeight(1f / MathF.Sqrt(inFeatures), inFeatures, outFeatures)]);
        return bias ? g.Op("Add", [y, g.Parameter("bias", 0.02f, 0f, outFeatures)]) : y;
    }

    /// <summary><c>nn.Conv2d</c> with symmetric padding <paramref name="padding"/>.</summary>
    public static string Conv(this ExportGraph g, string module, string x, long inChannels, long outChannels, int kernel = 3, int stride = 1, int? padding = null)
    {
        using var scope = g.Enter(module);
        var weight = g.Parameter("weight", 1f / MathF.Sqrt(inChannels * kernel * kernel), 0f, outChannels, inChannels, kernel, kernel);
        var bias = g.Parameter("bias", 0.02f, 0f, outChannels);
        var pad = padding ?? kernel / 2;
        return g.Op("Conv", [x, weight, bias],
            Attr.Ints("dilations", 1, 1), Attr.Int("group", 1), Attr.Ints("kernel_shape", kernel, kernel),
            Attr.Ints("pads", pad, pad, pad, pad), Attr.Ints("strides", stride, stride));
    }

    /// <summary>
    /// <c>nn.GroupNorm</c> as torch exports it before opset 18: reshape to [N, groups, −1], InstanceNormalization,
    /// reshape back, per-channel affine.
    /// </summary>
    public static string GroupNorm(this ExportGraph g, string module, string x, long channels, int groups, float epsilon)
    {
        using var scope = g.Enter(module);
        var grouped = g.Op("Reshape", [x, g.Int64Constant(0, groups, -1)]);
        var ones = new float[groups];
        Array.Fill(ones, 1f);
        var normalized = g.Op("InstanceNormalization", [grouped, g.FloatConstant(ones, groups), g.FloatConstant(new float[groups], groups)], Attr.Float("epsilon", epsilon));
        var restored = g.Op("Reshape", [normalized, g.Op("Shape", [x])]);
        var scaled = g.Op("Mul", [restored, g.Parameter("weight", 0.1f, 1f, channels, 1, 1)]);
        return g.Op("Add", [scaled, g.Parameter("bias", 0.02f, 0f, channels, 1, 1)]);
    }

    /// <summary><c>nn.LayerNorm</c> over the last axis.</summary>
    public static string LayerNorm(this ExportGraph g, string module, string x, long features, float epsilon)
    {
        using var scope = g.Enter(module);
        return g.Op("LayerNormalization", [x, g.Parameter("weight", 0.1f, 1f, features), g.Parameter("bias", 0.02f, 0f, features)],
            Attr.Int("axis", -1), Attr.Float("epsilon", epsilon));
    }

    /// <summary><c>x · sigmoid(x)</c>.</summary>
    public static string SiLU(this ExportGraph g, string x) => g.Op("Mul", [x, g.Op("Sigmoid", [x])]);

    /// <summary>The exact (erf) GELU: <c>x · 0.5 · (1 + erf(x / √2))</c>.</summary>
    public static string Gelu(this ExportGraph g, string x)
    {
        var erf = g.Op("Erf", [g.Op("Div", [x, g.FloatConstant([MathF.Sqrt(2f)])])]);
        return g.Op("Mul", [g.Op("Mul", [x, g.Op("Add", [erf, g.FloatConstant([1f])])]), g.FloatConstant([0.5f])]);
    }

    /// <summary>CLIP's quick GELU: <c>x · sigmoid(1.702 x)</c>.</summary>
    public static string QuickGelu(this ExportGraph g, string x) => g.Op("Mul", [x, g.Op("Sigmoid", [g.Op("Mul", [x, g.FloatConstant([1.702f])])])]);

    /// <summary>
    /// Multi-head scaled dot-product attention on projected [B, L, heads·headDim] queries and [B, S, heads·headDim]
    /// keys and values, with an optional additive mask [L, S].
    /// </summary>
    public static string MultiHead(this ExportGraph g, string query, string key, string value, int heads, int headDim, string? mask = null)
    {
        var q = g.Op("Transpose", [g.Op("Reshape", [query, g.Int64Constant(0, -1, heads, headDim)])], Attr.Ints("perm", 0, 2, 1, 3));
        var k = g.Op("Transpose", [g.Op("Reshape", [key, g.Int64Constant(0, -1, heads, headDim)])], Attr.Ints("perm", 0, 2, 3, 1));
        var v = g.Op("Transpose", [g.Op("Reshape", [value, g.Int64Constant(0, -1, heads, headDim)])], Attr.Ints("perm", 0, 2, 1, 3));
        var scores = g.Op("Mul", [g.Op("MatMul", [q, k]), g.FloatConstant([1f / MathF.Sqrt(headDim)])]);
        if (mask is not null)
        {
            scores = g.Op("Add", [scores, mask]);
        }

        var attended = g.Op("MatMul", [g.Op("Softmax", [scores], Attr.Int("axis", -1)), v]);
        return g.Op("Reshape", [g.Op("Transpose", [attended], Attr.Ints("perm", 0, 2, 1, 3)), g.Int64Constant(0, -1, heads * headDim)]);
    }

    /// <summary>
    /// diffusers' <c>get_timestep_embedding</c> of every element of <paramref name="x"/> (a new last axis of
    /// <paramref name="dim"/>): frequencies exp(−ln(10000)·i / (dim/2)), flip_sin_to_cos (cos first), freq_shift 0.
    /// Computed in float32 and cast to the graph's type, as diffusers does (<c>timesteps.float()</c>, then <c>.to(dtype)</c>).
    /// </summary>
    public static string Sinusoidal(this ExportGraph g, string x, int dim)
    {
        var half = dim / 2;
        var frequencies = new float[half];
        for (var i = 0; i < half; i++)
        {
            frequencies[i] = MathF.Exp(-MathF.Log(10000f) * i / half);
        }

        var float32 = (long)Onnx.TensorProto.Types.DataType.Float;
        var column = g.Op("Cast", [g.Op("Unsqueeze", [x, g.Int64Constant(-1)])], Attr.Int("to", float32));
        var arguments = g.Op("Mul", [column, g.Float32Constant(frequencies, half)]);
        var embedding = g.Op("Concat", [g.Op("Cos", [arguments]), g.Op("Sin", [arguments])], Attr.Int("axis", -1));
        return g.Op("Cast", [embedding], Attr.Int("to", (long)g.FloatType));
    }
}
