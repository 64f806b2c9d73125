using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Sdxl.Net.Synthetic;

namespace Sdxl.Net.Tests.Synthetic;

/// <summary>One graph input or output: its exact declared signature and the concrete shape a test run uses.</summary>
internal sealed record TensorSignature(string Name, TensorElementType Type, int[] DeclaredDims, long[] RunShape);

/// <summary>The expected signature of one ONNX model of a synthetic folder, and how to feed it.</summary>
internal sealed record ModelSignature(string Component, IReadOnlyList<TensorSignature> Inputs, IReadOnlyList<TensorSignature> Outputs)
{
    // Odd on purpose: batch 2, non-square latents, to exercise every dynamic axis.
    public const int Batch = 2;
    public const int Sequence = 77;
    public const int LatentHeight = 8;
    public const int LatentWidth = 12;

    /// <summary>The models a folder written with <paramref name="options"/> must contain, with their exact signatures.</summary>
    public static IReadOnlyList<ModelSignature> For(SyntheticModelOptions options)
    {
        var f = options.Float16 ? TensorElementType.Float16 : TensorElementType.Float;
        var models = new List<ModelSignature>();
        if (!options.Refiner)
        {
            var ids = options.TextEncoderInt32Ids ? TensorElementType.Int32 : TensorElementType.Int64;
            var outputs = new List<TensorSignature>
            {
                Hidden("last_hidden_state", f, options.TextHidden1),
                new("pooler_output", f, [-1, options.TextHidden1], [Batch, options.TextHidden1]),
            };
            outputs.AddRange(HiddenStates(f, options.TextHidden1, options.TextLayers));
            models.Add(new("text_encoder", [new("input_ids", ids, [-1, -1], [Batch, Sequence])], outputs));
        }

        var outputs2 = new List<TensorSignature>
        {
            new("text_embeds", f, [-1, options.ProjectionDim], [Batch, options.ProjectionDim]),
            Hidden("last_hidden_state", f, options.TextHidden2),
        };
        outputs2.AddRange(HiddenStates(f, options.TextHidden2, options.TextLayers));
        models.Add(new("text_encoder_2", [new("input_ids", TensorElementType.Int64, [-1, -1], [Batch, Sequence])], outputs2));

        var timestep = options.Timestep switch
        {
            TimestepInput.FloatScalar => new TensorSignature("timestep", f, [], []),
            TimestepInput.FloatVector1 => new TensorSignature("timestep", f, [1], [1]),
            _ => new TensorSignature("timestep", TensorElementType.Int64, [-1], [1]),
        };
        var crossDim = options.Refiner ? options.TextHidden2 : options.TextHidden1 + options.TextHidden2;
        var timeIds = options.Refiner ? 5 : 6;
        models.Add(new("unet",
            [
                new("sample", f, [-1, options.UnetInChannels, -1, -1], [Batch, options.UnetInChannels, LatentHeight, LatentWidth]),
                timestep,
                new("encoder_hidden_states", f, [-1, -1, crossDim], [Batch, Sequence, crossDim]),
                new("text_embeds", f, [-1, options.ProjectionDim], [Batch, options.ProjectionDim]),
                new("time_ids", f, [-1, timeIds], [Batch, timeIds]),
            ],
            [new("out_sample", f, [-1, 4, -1, -1], [Batch, 4, LatentHeight, LatentWidth])]));

        models.Add(new("vae_decoder",
            [new("latent_sample", f, [-1, 4, -1, -1], [Batch, 4, LatentHeight, LatentWidth])],
            [new("sample", f, [-1, 3, -1, -1], [Batch, 3, 8 * LatentHeight, 8 * LatentWidth])]));

        if (options.IncludeVaeEncoder)
        {
            var latent = options.VaeEncoder == VaeEncoderOutput.LatentParameters
                ? new TensorSignature("latent_parameters", f, [-1, 8, -1, -1], [Batch, 8, LatentHeight, LatentWidth])
                : new TensorSignature("latent_sample", f, [-1, 4, -1, -1], [Batch, 4, LatentHeight, LatentWidth]);
            models.Add(new("vae_encoder",
                [new("sample", f, [-1, 3, -1, -1], [Batch, 3, 8 * LatentHeight, 8 * LatentWidth])],
                [latent]));
        }

        return models;
    }

    private static TensorSignature Hidden(string name, TensorElementType type, int width) =>
        new(name, type, [-1, -1, width], [Batch, Sequence, width]);

    private static IEnumerable<TensorSignature> HiddenStates(TensorElementType type, int width, int layers)
    {
        for (var i = 0; i <= layers; i++)
        {
            yield return Hidden($"hidden_states.{i}", type, width);
        }
    }
}
