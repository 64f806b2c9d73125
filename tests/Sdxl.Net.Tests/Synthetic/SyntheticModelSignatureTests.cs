using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Sdxl.Net.Synthetic;
using Xunit;

namespace Sdxl.Net.Tests.Synthetic;

public sealed class SyntheticModelSignatureTests
{
    private static readonly Dictionary<string, SyntheticModelOptions> Variants = new()
    {
        ["optimum-current"] = new(),
        ["refiner"] = new() { Refiner = true },
        ["float16"] = new() { Float16 = true },
        ["olive"] = new() { Timestep = TimestepInput.FloatVector1, TextEncoderInt32Ids = true, VaeEncoder = VaeEncoderOutput.LatentSample },
        ["optimum-2023"] = new() { Timestep = TimestepInput.Int64Vector1, VaeEncoder = VaeEncoderOutput.LatentSample },
        ["float16-refiner-int64-timestep"] = new() { Refiner = true, Float16 = true, Timestep = TimestepInput.Int64Vector1 },
        ["inpainting"] = new() { UnetInChannels = 9 },
        ["no-vae-encoder"] = new() { IncludeVaeEncoder = false },
        ["unet-external-data"] = new() { UnetExternalData = true },
        ["three-levels-wider-text"] = new() { UnetDownLevels = 3, TextHidden1 = 24, TextHidden2 = 40, ProjectionDim = 16, TextLayers = 2 },
    };

    public static TheoryData<string> VariantNames => new(Variants.Keys);

    [Theory]
    [MemberData(nameof(VariantNames))]
    public void Every_model_has_exactly_the_variant_signature(string variant)
    {
        var options = Variants[variant];
        using var folder = new TempDirectory();
        SyntheticSdxlModel.Write(folder.Path, options);

        var expected = ModelSignature.For(options);
        var written = Directory.GetFiles(folder.Path, "model.onnx", SearchOption.AllDirectories)
            .Select(path => Path.GetFileName(Path.GetDirectoryName(path)!)).Order().ToArray();
        Assert.Equal(expected.Select(m => m.Component).Order().ToArray(), written);

        foreach (var model in expected)
        {
            using var session = new InferenceSession(Path.Combine(folder.Path, model.Component, "model.onnx"));
            AssertSignature(model.Component, model.Inputs, session.InputNames, session.InputMetadata);
            AssertSignature(model.Component, model.Outputs, session.OutputNames, session.OutputMetadata);
        }
    }

    [Theory]
    [MemberData(nameof(VariantNames))]
    public void Every_output_has_the_right_shape_is_finite_and_depends_on_every_input(string variant)
    {
        var options = Variants[variant];
        using var folder = new TempDirectory();
        SyntheticSdxlModel.Write(folder.Path, options);

        foreach (var model in ModelSignature.For(options))
        {
            using var session = new InferenceSession(Path.Combine(folder.Path, model.Component, "model.onnx"));
            var inputs = model.Inputs.Select(input => InputValues(input, model.Component, options)).ToList();
            var baseline = OrtRunner.Run(session, model.Inputs, inputs);

            foreach (var output in model.Outputs)
            {
                var (shape, values) = baseline[output.Name];
                Assert.True(output.RunShape.SequenceEqual(shape), $"{model.Component}.{output.Name}: shape [{string.Join(", ", shape)}]");
                Assert.All(values, v => Assert.True(float.IsFinite(v), $"{model.Component}.{output.Name} has {v}"));
                Assert.True(values.Max() - values.Min() > 1e-3f, $"{model.Component}.{output.Name} is constant");
            }

            for (var changed = 0; changed < inputs.Count; changed++)
            {
                var perturbed = inputs.ToList();
                perturbed[changed] = Perturb(model.Inputs[changed], inputs[changed]);
                var result = OrtRunner.Run(session, model.Inputs, perturbed);
                foreach (var output in model.Outputs)
                {
                    Assert.False(baseline[output.Name].Values.SequenceEqual(result[output.Name].Values),
                        $"{model.Component}.{output.Name} does not depend on {model.Inputs[changed].Name}");
                }
            }
        }
    }

    [Fact]
    public void Unet_rejects_latents_that_are_not_a_multiple_of_its_downsampling()
    {
        var options = new SyntheticModelOptions { UnetDownLevels = 3 };
        using var folder = new TempDirectory();
        SyntheticSdxlModel.Write(folder.Path, options);
        var unet = ModelSignature.For(options).Single(m => m.Component == "unet");
        using var session = new InferenceSession(Path.Combine(folder.Path, "unet", "model.onnx"));

        // 10 is a multiple of 2 but not of 4 = 2^(levels - 1).
        var inputs = unet.Inputs.Select(i => i.Name == "sample" ? i with { RunShape = [2, 4, 10, 12] } : i).ToList();
        var values = inputs.Select(i => InputValues(i, "unet", options)).ToList();
        Assert.ThrowsAny<OnnxRuntimeException>(() => OrtRunner.Run(session, inputs, values));
    }

    [Fact]
    public void Text_encoders_accept_every_clip_id_below_the_vocab_size_and_reject_larger_ones()
    {
        using var folder = new TempDirectory();
        SyntheticSdxlModel.Write(folder.Path);
        var encoder = ModelSignature.For(new SyntheticModelOptions()).Single(m => m.Component == "text_encoder");
        using var session = new InferenceSession(Path.Combine(folder.Path, "text_encoder", "model.onnx"));
        var ids = encoder.Inputs[0] with { RunShape = [1, 4] };

        var clipIds = OrtRunner.Run(session, [ids], [[49406, 320, 1125, 49407]]);
        Assert.Equal([1L, 4, 32], clipIds["last_hidden_state"].Shape);
        Assert.ThrowsAny<OnnxRuntimeException>(() => OrtRunner.Run(session, [ids], [[49406, 320, 1125, 49408]]));
    }

    private static void AssertSignature(
        string component, IReadOnlyList<TensorSignature> expected, IReadOnlyList<string> names, IReadOnlyDictionary<string, NodeMetadata> metadata)
    {
        Assert.Equal(expected.Select(e => e.Name), names);
        foreach (var signature in expected)
        {
            var actual = metadata[signature.Name];
            Assert.True(actual.IsTensor, $"{component}.{signature.Name} is not a tensor");
            Assert.True(signature.Type == actual.ElementDataType, $"{component}.{signature.Name}: {actual.ElementDataType}, expected {signature.Type}");
            Assert.True(signature.DeclaredDims.SequenceEqual(actual.Dimensions),
                $"{component}.{signature.Name}: [{string.Join(", ", actual.Dimensions)}], expected [{string.Join(", ", signature.DeclaredDims)}]");
        }
    }

    private static double[] InputValues(TensorSignature input, string component, SyntheticModelOptions options)
    {
        var count = (int)input.RunShape.Aggregate(1L, (a, b) => a * b);
        var random = new Random(input.Name.Length * 7919 + count);
        switch (input.Name)
        {
            case "input_ids":
                {
                    // <|startoftext|>, a few tokens, <|endoftext|> at a different place per row, then padding.
                    var sequence = (int)input.RunShape[1];
                    var ids = new double[count];
                    var startOfText = SyntheticSdxlModel.MinimumVocabSize - 2;
                    var endOfText = SyntheticSdxlModel.MinimumVocabSize - 1;
                    var pad = component == "text_encoder" ? endOfText : 0;
                    for (var row = 0; row < input.RunShape[0]; row++)
                    {
                        var end = 5 + 2 * row;
                        for (var position = 0; position < sequence; position++)
                        {
                            ids[row * sequence + position] = position == 0 ? startOfText
                                : position < end ? random.Next(1, 512)
                                : position == end ? endOfText
                                : pad;
                        }
                    }

                    return ids;
                }

            case "timestep":
                return Enumerable.Repeat(499.0, count).ToArray();
            case "time_ids":
                {
                    double[] row = options.Refiner ? [64, 96, 0, 0, 6] : [64, 96, 0, 0, 64, 96];
                    return Enumerable.Range(0, count).Select(i => row[i % row.Length]).ToArray();
                }

            default:
                return Enumerable.Range(0, count).Select(_ => Math.Clamp(Normal(random), -3, 3)).ToArray();
        }
    }

    private static double[] Perturb(TensorSignature input, double[] values) => input.Name switch
    {
        // One ordinary token before the end of text, so every position after it and the pooled row are affected.
        "input_ids" => values.Select((v, i) => i == 2 ? (v == 300 ? 301 : 300) : v).ToArray(),
        "timestep" => values.Select(v => v - 20).ToArray(),
        "time_ids" => values.Select(v => v + 16).ToArray(),
        _ => values.Select(v => v + 0.25).ToArray(),
    };

    private static double Normal(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}
