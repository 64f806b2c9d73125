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
