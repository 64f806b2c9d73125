using Microsoft.ML.OnnxRuntime;
using Sdxl.Net.Synthetic;
using Xunit;

namespace Sdxl.Net.Tests.Synthetic;

/// <summary>
/// The synthetic folders against the tiny reference folders exported with torch.onnx.export in the current optimum
/// format: same widths by default, so every model must declare exactly the same inputs and outputs.
/// </summary>
public sealed class SyntheticModelReferenceTests
{
    public static TheoryData<string, bool, bool> ReferenceFolders => new()
    {
        { "tiny-sdxl-base", false, false },
        { "tiny-sdxl-base-fp16", false, true },
        { "tiny-sdxl-refiner", true, false },
    };

    [Theory]
    [MemberData(nameof(ReferenceFolders))]
    public void Default_widths_give_the_same_signatures_as_the_reference_export(string reference, bool refiner, bool float16)
    {
        if (TestPaths.TinySdxl is not { } tiny)
        {
            return; // the reference folders are not beside this checkout
        }

        var referenceFolder = Path.Combine(tiny, reference);
        using var folder = new TempDirectory();
        SyntheticSdxlModel.Write(folder.Path, new SyntheticModelOptions { Refiner = refiner, Float16 = float16 });

        var components = Directory.GetDirectories(referenceFolder)
            .Where(d => File.Exists(Path.Combine(d, "model.onnx")))
            .Select(Path.GetFileName).Order().ToArray();
        var written = Directory.GetDirectories(folder.Path)
            .Where(d => File.Exists(Path.Combine(d, "model.onnx")))
            .Select(Path.GetFileName).Order().ToArray();
        Assert.Equal(components, written);
        var files = Directory.GetFiles(referenceFolder, "*", SearchOption.AllDirectories)
            .Where(f => !f.EndsWith(".onnx", StringComparison.Ordinal))
            .Select(f => Path.GetRelativePath(referenceFolder, f)).Order().ToArray();
        Assert.All(files, file => Assert.True(File.Exists(Path.Combine(folder.Path, file)), file));

        foreach (var component in components)
        {
            using var expected = new InferenceSession(Path.Combine(referenceFolder, component!, "model.onnx"));
            using var actual = new InferenceSession(Path.Combine(folder.Path, component!, "model.onnx"));
            AssertSameSignature(component!, expected.InputNames, expected.InputMetadata, actual.InputNames, actual.InputMetadata);
            AssertSameSignature(component!, expected.OutputNames, expected.OutputMetadata, actual.OutputNames, actual.OutputMetadata);
        }
    }

    private static void AssertSameSignature(
        string component,
        IReadOnlyList<string> expectedNames, IReadOnlyDictionary<string, NodeMetadata> expected,
        IReadOnlyList<string> actualNames, IReadOnlyDictionary<string, NodeMetadata> actual)
    {
        Assert.Equal(expectedNames, actualNames);
        foreach (var name in expectedNames)
        {
            Assert.True(expected[name].ElementDataType == actual[name].ElementDataType, $"{component}.{name}: {actual[name].ElementDataType}");
            Assert.True(expected[name].Dimensions.SequenceEqual(actual[name].Dimensions),
                $"{component}.{name}: [{string.Join(", ", actual[name].Dimensions)}], reference [{string.Join(", ", expected[name].Dimensions)}]");
        }
    }
}

/// <summary>The synthetic ControlNet folders against the tiny reference ControlNet folders: OnnxStack's names, element types, ranks and dynamic axes.</summary>
public sealed class SyntheticControlNetReferenceTests
{
    [Fact]
    public void The_synthetic_controlnet_and_controlnet_unet_have_the_reference_signatures()
    {
        if (TestPaths.TinySdxl is not { } tiny)
        {
            return; // the reference folders are not beside this checkout
        }

        using var folder = new TempDirectory();
        SyntheticSdxlModel.Write(folder.Path, new SyntheticModelOptions { ControlNetUNet = ControlNetUNetLayout.OnnxStackFolder });
        SyntheticSdxlModel.WriteControlNet(Path.Combine(folder.Path, "net"));
        Compare(Path.Combine(tiny, "variants", "controlnet", "controlnet", "model.onnx"), Path.Combine(folder.Path, "controlnet", "model.onnx"));
        Compare(Path.Combine(tiny, "variants", "tiny-controlnet-a", "model.onnx"), Path.Combine(folder.Path, "net", "model.onnx"));
        Assert.True(File.Exists(Path.Combine(folder.Path, "net", "config.json")));
    }

    private static void Compare(string referencePath, string actualPath)
    {
        using var expected = new InferenceSession(referencePath);
        using var actual = new InferenceSession(actualPath);
        Assert.Equal(expected.InputNames, actual.InputNames);
        Assert.Equal(expected.OutputNames, actual.OutputNames);
        foreach (var (name, meta) in expected.InputMetadata.Concat(expected.OutputMetadata))
        {
            var other = actual.InputMetadata.TryGetValue(name, out var i) ? i : actual.OutputMetadata[name];
            Assert.True(meta.ElementDataType == other.ElementDataType, $"{name}: {other.ElementDataType}, reference {meta.ElementDataType}");

            // The same dynamic axes; fixed sizes may differ where the networks' widths do (the reference UNet has 32/48
            // channels, the synthetic one doubles 32 to 64).
            Assert.True(meta.Dimensions.Select(d => d < 0).SequenceEqual(other.Dimensions.Select(d => d < 0)),
                $"{name}: [{string.Join(", ", other.Dimensions)}], reference [{string.Join(", ", meta.Dimensions)}]");
        }
    }
}
