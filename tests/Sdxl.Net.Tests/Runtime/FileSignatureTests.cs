using Microsoft.ML.OnnxRuntime;
using Sdxl.Net.Runtime;
using Sdxl.Net.Synthetic;
using Sdxl.Net.Synthetic.Export;
using Sdxl.Net.Tests.Reliability;

namespace Sdxl.Net.Tests.Runtime;

/// <summary>
/// With <see cref="MemoryMode.LoadPerPhase"/> a model's signature is read from the ONNX file (no session at Build).
/// The independent reference is ONNX Runtime's own session metadata of the same file.
/// </summary>
public sealed class FileSignatureTests
{
    public static TheoryData<string> ReferenceModels()
    {
        var data = new TheoryData<string>();
        if (TestPaths.TinySdxl is { } root)
        {
            foreach (var file in Directory.GetFiles(root, "model.onnx", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            {
                data.Add(Path.GetRelativePath(root, file));
            }
        }
        else
        {
            data.Add("(none)");
        }

        return data;
    }

    [TinySdxlTheory]
    [MemberData(nameof(ReferenceModels))]
    public void The_signature_read_from_the_file_equals_onnx_runtimes(string relative)
    {
        var path = Path.Combine(TestPaths.TinySdxl!, relative);
        AssertSameSignature(path);
    }

    [Fact]
    public void The_signature_read_from_the_file_equals_onnx_runtimes_for_synthetic_fp32_and_fp16_exports()
    {
        using var fp32 = new TempFolder();
        using var fp16 = new TempFolder();
        ExportedSdxlModel.Write(fp32.Path, new ExportedModelOptions { Architecture = SdxlArchitecture.Miniature });
        ExportedSdxlModel.Write(fp16.Path, new ExportedModelOptions { Architecture = SdxlArchitecture.Miniature, Float16 = true });
        var files = Directory.GetFiles(fp32.Path, "model.onnx", SearchOption.AllDirectories)
            .Concat(Directory.GetFiles(fp16.Path, "model.onnx", SearchOption.AllDirectories))
            .Concat(Directory.GetFiles(SyntheticModels.Get(), "model.onnx", SearchOption.AllDirectories))
            .ToList();
        Assert.True(files.Count >= 12, $"expected at least 12 model files, found {files.Count}");
        foreach (var file in files)
        {
            AssertSameSignature(file);
        }
    }

    [Fact]
    public void Per_phase_build_refuses_truncated_external_weights_naming_the_file()
    {
        using var dir = new TempFolder();
        ExportedSdxlModel.Write(dir.Path, new ExportedModelOptions { Architecture = SdxlArchitecture.Miniature });
        var data = Path.Combine(dir.Path, "unet", "model.onnx_data");
        Assert.True(File.Exists(data), "the miniature export writes the UNet's weights as external data");
        using (var stream = new FileStream(data, FileMode.Open, FileAccess.Write))
        {
            stream.SetLength(stream.Length / 2);
        }

        var e = Assert.Throws<SdxlModelException>(() =>
            SdxlPipeline.CreateBuilder().WithModel(dir.Path).WithMemoryMode(MemoryMode.LoadPerPhase).Build());
        Assert.StartsWith("unet:", e.Message, StringComparison.Ordinal);
        Assert.Contains("model.onnx_data", e.Message, StringComparison.Ordinal);
        Assert.Contains("beyond the end", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Per_phase_loading_reads_external_weights_through_links_as_in_a_hugging_face_cache()
    {
        // huggingface_hub's snapshots hold a symbolic link per file, to a blob elsewhere; a link's own length is the
        // length of its target's path, so the external-data check must measure the blob. Reference: the same files
        // opened directly.
        using var blobs = new TempFolder();
        using var snapshot = new TempFolder();
        ExportedSdxlModel.Write(blobs.Path, new ExportedModelOptions { Architecture = SdxlArchitecture.Miniature });
        foreach (var file in Directory.GetFiles(blobs.Path, "*", SearchOption.AllDirectories))
        {
            var link = Path.Combine(snapshot.Path, Path.GetRelativePath(blobs.Path, file));
            Directory.CreateDirectory(Path.GetDirectoryName(link)!);
            File.CreateSymbolicLink(link, file);
        }

        Assert.NotNull(new FileInfo(Path.Combine(snapshot.Path, "unet", "model.onnx_data")).LinkTarget);
        var request = Faults.Tiny(seed: 11);
        using var direct = SdxlPipeline.CreateBuilder().WithModel(blobs.Path).WithMemoryMode(MemoryMode.LoadPerPhase).Build();
        using var linked = SdxlPipeline.CreateBuilder().WithModel(snapshot.Path).WithMemoryMode(MemoryMode.LoadPerPhase).Build();
        var expected = (await direct.GenerateAsync(request)).Images[0].Pixels.ToArray();
        var actual = (await linked.GenerateAsync(request)).Images[0].Pixels.ToArray();
        Assert.Equal(expected, actual);
    }

    [Theory]
    [InlineData("missing", "does not exist beside the model")]
    [InlineData("directory", "is a directory beside the model")]
    public void Per_phase_build_names_external_weights_it_cannot_read(string fault, string reason)
    {
        using var dir = new TempFolder();
        ExportedSdxlModel.Write(dir.Path, new ExportedModelOptions { Architecture = SdxlArchitecture.Miniature });
        var data = Path.Combine(dir.Path, "unet", "model.onnx_data");
        File.Delete(data);
        if (fault == "directory")
        {
            Directory.CreateDirectory(data);
        }

        var e = Assert.Throws<SdxlModelException>(() =>
            SdxlPipeline.CreateBuilder().WithModel(dir.Path).WithMemoryMode(MemoryMode.LoadPerPhase).Build());
        Assert.StartsWith("unet:", e.Message, StringComparison.Ordinal);
        Assert.Contains("'model.onnx_data'", e.Message, StringComparison.Ordinal);
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
    }

    private static void AssertSameSignature(string path)
    {
        var graph = OnnxGraphReader.Read(path);
        using var session = new InferenceSession(path);
        var fileInputs = graph.InputValues.Where(v => v.ElementType != 0 && !graph.Initializers.ContainsKey(v.Name)).ToList();
        Assert.Equal(session.InputMetadata.Keys.Order(StringComparer.Ordinal), fileInputs.Select(v => v.Name).Order(StringComparer.Ordinal));
        foreach (var value in fileInputs)
        {
            AssertSame(path, value, session.InputMetadata[value.Name], inferred: false);
        }

        Assert.Equal(session.OutputMetadata.Keys.Order(StringComparer.Ordinal), graph.OutputValues.Select(v => v.Name).Order(StringComparer.Ordinal));
        foreach (var value in graph.OutputValues)
        {
            // ONNX Runtime reports outputs with the shapes its inference found, so it may know an axis the file leaves
            // symbolic (text_embeds [batch, 48] for a declared [batch, width]); every axis the file states must agree.
            AssertSame(path, value, session.OutputMetadata[value.Name], inferred: true);
        }
    }

    private static void AssertSame(string path, OnnxValueInfo value, NodeMetadata expected, bool inferred)
    {
        Assert.True(expected.ElementDataType == (Microsoft.ML.OnnxRuntime.Tensors.TensorElementType)value.ElementType,
            $"{path} {value.Name}: ONNX Runtime says {expected.ElementDataType}, the file reader {value.ElementType}");
        bool same = inferred
            ? expected.Dimensions.Length == value.Dimensions.Length && value.Dimensions.Select((d, i) => d < 0 || d == expected.Dimensions[i]).All(b => b)
            : expected.Dimensions.Select(d => (long)d).SequenceEqual(value.Dimensions);
        Assert.True(same,
            $"{path} {value.Name}: ONNX Runtime says [{string.Join(",", expected.Dimensions)}], the file reader [{string.Join(",", value.Dimensions)}]");
    }
}
