using DataType = Onnx.TensorProto.Types.DataType;

namespace Sdxl.Net.Synthetic;

/// <summary>
/// A CLIP-text-shaped encoder: token and position embeddings, residual layers that mix each token with the running
/// mean of the tokens before it (causal, like CLIP's masked attention), a final layer norm, and the pooled row at the
/// highest token id (CLIP's legacy argmax pooling, which finds the end-of-text token).
/// </summary>
internal static class TextEncoderGraph
{
    /// <summary>CLIP's context length: the number of position embeddings.</summary>
    public const int MaxPositions = 77;

    /// <summary>
    /// Token embeddings are the sum of a row chosen by <c>id mod 256</c> and a row chosen by <c>id / 256</c>: every id
    /// below the vocabulary size gets its own vector, for (256 + vocab/256) rows instead of vocab rows.
    /// </summary>
    private const int EmbeddingFactor = 256;

    /// <summary>
    /// Builds <c>text_encoder</c> (no <paramref name="projectionDim"/>: outputs last_hidden_state, pooler_output,
    /// hidden_states.*) or <c>text_encoder_2</c> (outputs text_embeds, last_hidden_state, hidden_states.*).
    /// </summary>
    public static OnnxGraphBuilder Build(
        string name, WeightRandom random, bool float16Io, DataType idsType, int vocabSize, int hidden, int layers, int? projectionDim,
        bool moduleNodeNames = false)
    {
        var g = new OnnxGraphBuilder(name, random, float16Io, moduleNodeNames: moduleNodeNames);
        var ids = g.Input("input_ids", idsType, "batch_size", "sequence_length");
        var ids64 = idsType == DataType.Int64 ? ids : g.Cast(ids, DataType.Int64);

        var low = g.Node("Mod", [ids64, g.Int64Constant(EmbeddingFactor)]);
        var high = g.Node("Div", [ids64, g.Int64Constant(EmbeddingFactor)]);
        var highRows = (vocabSize + EmbeddingFactor - 1) / EmbeddingFactor;
        var tokens = g.Node("Add", [
            g.Node("Gather", [g.Weight("embeddings.token_low", 0.7f, EmbeddingFactor, hidden), low]),
            g.Node("Gather", [g.Weight("embeddings.token_high", 0.7f, highRows, hidden), high])]);

        var sequenceLength = g.Dimension(ids, 1);
        var positions = g.TakeRows(g.Weight("embeddings.position", 0.3f, MaxPositions, hidden), sequenceLength);
        var inverseCounts = new float[MaxPositions];
        for (var i = 0; i < MaxPositions; i++)
        {
            inverseCounts[i] = 1f / (i + 1);
        }

        var meanDivisors = g.TakeRows(g.FloatConstant(inverseCounts, MaxPositions, 1), sequenceLength);

        var hiddenStates = new string[layers + 1];
        var h = hiddenStates[0] = g.Node("Add", [tokens, positions]);
        for (var layer = 0; layer < layers; layer++)
        {
            // With module names, the two square linears take CLIP's self-attention projection names.
            var prefix = moduleNodeNames ? $"text_model.encoder.layers.{layer}" : $"layers.{layer}";
            var causalMean = g.Node("Mul", [g.Node("CumSum", [h, g.Int64Constant(1)]), meanDivisors]);
            var mixed = g.Node("Add", [
                g.Linear(prefix + (moduleNodeNames ? ".self_attn.out_proj" : ".self"), h, hidden, hidden),
                g.Linear(prefix + (moduleNodeNames ? ".self_attn.v_proj" : ".context"), causalMean, hidden, hidden, bias: false)]);
            h = hiddenStates[layer + 1] = g.Node("Add", [h, g.Node("Tanh", [mixed])]);
        }

        var lastHiddenState = g.LayerNorm("final_layer_norm", h, hidden);
        var eosPosition = g.Node("ArgMax", [g.Cast(ids64, DataType.Int32)], Attr.Int("axis", 1), Attr.Int("keepdims", 1));
        var pooled = g.Node("GatherND", [lastHiddenState, eosPosition], Attr.Int("batch_dims", 1));

        if (projectionDim is { } projection)
        {
            g.FloatOutput("text_embeds", g.Linear("text_projection", pooled, hidden, projection, bias: false), "batch_size", projection);
            g.FloatOutput("last_hidden_state", lastHiddenState, "batch_size", "sequence_length", hidden);
        }
        else
        {
            g.FloatOutput("last_hidden_state", lastHiddenState, "batch_size", "sequence_length", hidden);
            g.FloatOutput("pooler_output", pooled, "batch_size", hidden);
        }

        for (var i = 0; i <= layers; i++)
        {
            g.FloatOutput($"hidden_states.{i}", hiddenStates[i], "batch_size", "sequence_length", hidden);
        }

        return g;
    }
}
