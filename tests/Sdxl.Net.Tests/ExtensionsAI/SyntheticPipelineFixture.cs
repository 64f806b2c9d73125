using Sdxl.Net.Synthetic;
using Sdxl.Net.Tests.Synthetic;

namespace Sdxl.Net.Tests.ExtensionsAI;

/// <summary>One tiny random-weight SDXL folder and a CPU pipeline over it, shared by a test class.</summary>
public sealed class SyntheticPipelineFixture : IDisposable
{
    private readonly TempDirectory _folder = new();

    public SyntheticPipelineFixture()
    {
        SyntheticSdxlModel.Write(ModelDirectory);
        Pipeline = SdxlPipeline.CreateBuilder().WithModel(ModelDirectory).UseCpu(intraOpThreads: 1).Build();
    }

    public string ModelDirectory => _folder.Path;

    public SdxlPipeline Pipeline { get; }

    public void Dispose()
    {
        Pipeline.Dispose();
        _folder.Dispose();
    }
}
