using DataType = Onnx.TensorProto.Types.DataType;

namespace Sdxl.Net.Synthetic.Export;

/// <summary>
/// transformers' <c>CLIPTextModel</c> / <c>CLIPTextModelWithProjection</c>: token and position embeddings, pre-norm
/// encoder layers with causal multi-head self-attention and an MLP, the final layer norm, pooling at argmax(input_ids)
/// (the SDXL configs' legacy eos_token_id 2), and the projection. Outputs every hidden state, as optimum exports them.
/// </summary>
internal static class ClipTextExport
{
    /// <summary>CLIP's context length.</summary>
    public const int MaxPositions = 77;

    /// <summary>CLIP's vocabulary size.</summary>
    public const int VocabSize = 49408;

    /// <summary>Writes the graph into <paramref name="g"/>.</summary>
    public static void Build(ExportGraph g, ClipTextArchitecture c)
    {
        int d = c.Hidden, headDim = c.Hidden / c.Heads;
        var ids = g.Input("input_ids", DataType.Int64, "batch_size", "sequence_length");
        var hidden = new string[c.Layers + 1];
        string h, mask;
        using (g.Enter("text_model"))
        {
            var sequence = g.Op("Slice", [g.Op("Shape", [ids]), g.Int64Constant(1), g.Int64Constant(2)]);
            using (g.Enter("embeddings"))
            {
                string tokens, positions;
                using (g.Enter("token_embedding"))
                {
                    tokens = g.Op("Gather", [g.Parameter("weight", 0.02f, 0f, VocabSize, d), ids]);
                }

                using (g.Enter("position_embedding"))
                {
                    var table = g.Parameter("weight", 0.01f, 0f, MaxPositions, d);
                    positions = g.Op("Slice", [table, g.Int64Constant(0), sequence, g.Int64Constant(0)]);
                }

                h = hidden[0] = g.Op("Add", [tokens, positions]);
            }

            // The causal mask: −inf above the diagonal, sliced to the sequence length.
            var causal = new float[MaxPositions * MaxPositions];
            for (int i = 0; i < MaxPositions; i++)
            {
                for (int j = i + 1; j < MaxPositions; j++)
                {
                    causal[(i * MaxPositions) + j] = float.NegativeInfinity;
                }
            }

            mask = g.Op("Slice", [g.FloatConstant(causal, MaxPositions, MaxPositions), g.Int64Constant(0, 0), g.Op("Concat", [sequence, sequence], Attr.Int("axis", 0)), g.Int64Constant(0, 1)]);

            using (g.Enter("encoder"))
            {
                for (int layer = 0; layer < c.Layers; layer++)
                {
                    using var scope = g.Enter($"layers.{layer}");
                    string attended;
                    using (g.Enter("self_attn"))
                    {
                        var x = g.LayerNorm("layer_norm1", h, d, 1e-5f);
                        var q = g.Linear("q_proj", x, d, d);
                        var k = g.Linear("k_proj", x, d, d);
                        var v = g.Linear("v_proj", x, d, d);
                        attended = g.Linear("out_proj", g.MultiHead(q, k, v, c.Heads, headDim, mask), d, d);
                    }

                    h = g.Op("Add", [h, attended]);
                    string mlp;
                    using (g.Enter("mlp"))
                    {
                        var x = g.Linear("fc1", g.LayerNorm("layer_norm2", h, d, 1e-5f), d, c.Intermediate);
                        x = c.QuickGelu ? g.QuickGelu(x) : g.Gelu(x);
                        mlp = g.Linear("fc2", x, c.Intermediate, d);
                    }

                    h = hidden[layer + 1] = g.Op("Add", [h, mlp]);
                }
            }

            h = g.LayerNorm("final_layer_norm", h, d, 1e-5f);
        }

        var eos = g.Op("ArgMax", [g.Op("Cast", [ids], Attr.Int("to", (long)DataType.Int32))], Attr.Int("axis", 1), Attr.Int("keepdims", 1));
        var pooled = g.Op("GatherND", [h, eos], Attr.Int("batch_dims", 1));
        if (c.Projection is { } projection)
        {
            g.FloatOutput("text_embeds", g.Linear("text_projection", pooled, d, projection, bias: false), "batch_size", projection);
            g.FloatOutput("last_hidden_state", h, "batch_size", "sequence_length", d);
        }
        else
        {
            g.FloatOutput("last_hidden_state", h, "batch_size", "sequence_length", d);
            g.FloatOutput("pooler_output", pooled, "batch_size", d);
        }

        for (int i = 0; i <= c.Layers; i++)
        {
            g.FloatOutput($"hidden_states.{i}", hidden[i], "batch_size", "sequence_length", d);
        }
    }
}
