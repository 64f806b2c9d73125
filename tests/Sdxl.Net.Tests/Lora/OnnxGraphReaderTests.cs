using Sdxl.Net.Lora;
using Sdxl.Net.Runtime;
using Sdxl.Net.Synthetic;
using Sdxl.Net.Tests.Synthetic;

namespace Sdxl.Net.Tests.Lora;

/// <summary>The wire-format graph reader against the protobuf classes of OnnxSharp (an independent parser).</summary>
public sealed class OnnxGraphReaderTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Reads_nodes_initializers_and_weights_like_protobuf(bool externalData)
    {
        using var dir = new TempDirectory();
        SyntheticSdxlModel.Write(dir.Path, LoraSyntheticModel.Options with { UnetExternalData = externalData });
        var path = Path.Combine(dir.Path, "unet", "model.onnx");
        var proto = OnnxWeights.Load(path);
        var graph = OnnxGraphReader.Read(path);

        Assert.Equal(proto.Graph.Node.Select(n => (n.Name, n.OpType, string.Join(",", n.Input), string.Join(",", n.Output))),
            graph.Nodes.Select(n => (n.Name, n.OpType, string.Join(",", n.Inputs), string.Join(",", n.Outputs))));
        Assert.Equal(proto.Graph.Initializer.Count, graph.Initializers.Count);
        Assert.Equal(proto.Graph.Input.Select(i => i.Name), graph.Inputs);
        Assert.Equal(1, graph.Nodes.Single(n => n.Name == "/mid_block/resnets.0/time_emb_proj/Gemm").IntAttribute("transB", 0));

        var dataFile = Path.Combine(dir.Path, "unet", "model.onnx_data");
        foreach (var tensor in proto.Graph.Initializer.Where(t => t.DataType == 1))
        {
            var info = graph.Initializers[tensor.Name];
            Assert.Equal(tensor.Dims, info.Dimensions);
            float[] expected;
            if (tensor.ExternalData.Count > 0)
            {
                Assert.Equal(OnnxDataStorage.External, info.Storage);
                long offset = long.Parse(tensor.ExternalData.Single(e => e.Key == "offset").Value, System.Globalization.CultureInfo.InvariantCulture);
                long length = long.Parse(tensor.ExternalData.Single(e => e.Key == "length").Value, System.Globalization.CultureInfo.InvariantCulture);
                var bytes = File.ReadAllBytes(dataFile).AsSpan((int)offset, (int)length).ToArray();
                expected = [.. System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes)];
            }
            else
            {
                expected = OnnxWeights.ReadFloats(tensor);
            }

            Assert.Equal(expected, graph.ReadAsSingle(info));
        }

        Assert.True(!externalData || graph.Initializers.Values.Any(i => i.Storage == OnnxDataStorage.External));
    }

    [Fact]
    public void Module_index_finds_weights_through_their_consuming_nodes()
    {
        var index = new OnnxModuleIndex(OnnxGraphReader.Read(Path.Combine(LoraSyntheticModel.Folder, "unet", "model.onnx")));
        var q = index.FindByPath("down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_q")!;
        Assert.StartsWith("onnx::MatMul_", q.Weight.Name, StringComparison.Ordinal);
        Assert.Equal(WeightLayout.InOut, q.Layout);
        Assert.Equal(WeightLayout.OutIn, index.FindByPath("mid_block.resnets.0.time_emb_proj")!.Layout);
        Assert.Equal(WeightLayout.Convolution, index.FindByUnderscoreName("down_blocks_0_resnets_0_conv1")!.Layout);
        Assert.Equal("a.b.1.c", OnnxModuleIndex.ModulePathOf("/a/b.1/c/MatMul_2"));
        Assert.Null(OnnxModuleIndex.ModulePathOf("MatMul_12"));
    }

    [Fact]
    public void Truncated_or_foreign_files_fail_clearly()
    {
        using var dir = new TempDirectory();
        var source = File.ReadAllBytes(Path.Combine(LoraSyntheticModel.Folder, "unet", "model.onnx"));
        var truncated = Path.Combine(dir.Path, "truncated.onnx");
        File.WriteAllBytes(truncated, source[..(source.Length / 2)]);
        var e = Assert.Throws<SdxlModelException>(() => OnnxGraphReader.Read(truncated));
        Assert.Contains("truncated.onnx", e.Message, StringComparison.Ordinal);
        Assert.Contains("not a well-formed ONNX model", e.Message, StringComparison.Ordinal);

        var text = Path.Combine(dir.Path, "text.onnx");
        File.WriteAllText(text, "this is not a model");
        Assert.Throws<SdxlModelException>(() => OnnxGraphReader.Read(text));
    }
}
