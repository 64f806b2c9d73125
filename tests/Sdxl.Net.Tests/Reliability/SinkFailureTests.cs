using Sdxl.Net.Imaging;

namespace Sdxl.Net.Tests.Reliability;

/// <summary>A failing write throws and leaves neither a partial output nor a temporary file; an existing file survives.</summary>
public sealed class SinkFailureTests(SyntheticPipelineFixture fixture) : IClassFixture<SyntheticPipelineFixture>
{
    private static SdxlPipeline WithSink(IImageSink sink) =>
        SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).AddSink(sink).Build();

    [Fact]
    public async Task Output_whose_parent_is_a_file_fails_before_writing()
    {
        // Tests run as root, where a read-only mode does not stop writes; a parent that is a file always does.
        using var folder = new TempFolder();
        File.WriteAllText(folder["blocker"], "not a directory");
        using var pipeline = WithSink(new PngFileSink(Path.Combine(folder["blocker"], "out.png")));
        var e = await Assert.ThrowsAsync<DirectoryNotFoundException>(() => pipeline.GenerateAsync(Faults.Tiny()));
        Assert.Contains("blocker", e.Message);
        Assert.Equal(["blocker"], folder.Files());
    }

    [Fact]
    public async Task Output_path_that_is_a_directory_fails_and_removes_the_temporary_file()
    {
        using var folder = new TempFolder();
        Directory.CreateDirectory(folder["out.png"]);
        using var pipeline = WithSink(new PngFileSink(folder["out.png"]));
        await Assert.ThrowsAnyAsync<IOException>(() => pipeline.GenerateAsync(Faults.Tiny()));
        Assert.Empty(folder.Files());
    }

    [Fact]
    public async Task Batch_is_all_or_nothing_when_a_later_file_fails()
    {
        using var folder = new TempFolder();
        Directory.CreateDirectory(folder["out_2.png"]); // the third image cannot be placed
        using var pipeline = WithSink(new PngFileSink(folder["out.png"]));
        await Assert.ThrowsAnyAsync<IOException>(() => pipeline.GenerateAsync(Faults.Tiny() with { BatchSize = 3 }));
        Assert.Empty(folder.Files());
    }

    [Fact]
    public async Task Full_disk_mid_write_leaves_no_temporary_file_and_keeps_the_old_output()
    {
        using var folder = new TempFolder();
        File.WriteAllText(folder["out.npy"], "previous result");
        var e = await Assert.ThrowsAsync<IOException>(() => AtomicFile.WriteAsync(folder["out.npy"], async (stream, ct) =>
        {
            var full = new FullDiskStream(stream, capacity: 1000);
            await full.WriteAsync(new byte[600], ct);
            await full.WriteAsync(new byte[600], ct);
        }, CancellationToken.None));
        Assert.Contains("No space left", e.Message);
        Assert.Equal(["out.npy"], folder.Files());
        Assert.Equal("previous result", File.ReadAllText(folder["out.npy"]));
    }

    [Fact]
    public async Task Writer_that_throws_mid_write_removes_the_files_of_the_batch()
    {
        using var folder = new TempFolder();
        var files = new List<(string, Func<Stream, CancellationToken, Task>)>
        {
            (folder["a.bin"], (s, ct) => s.WriteAsync(new byte[100], ct).AsTask()),
            (folder["b.bin"], async (s, ct) =>
            {
                await s.WriteAsync(new byte[100], ct);
                throw new IOException("device error");
            }),
        };
        await Assert.ThrowsAsync<IOException>(() => AtomicFile.WriteAllAsync(files, CancellationToken.None));
        Assert.Empty(folder.Files());
    }

    [Fact]
    public async Task Sink_exception_reaches_the_caller_and_the_pipeline_stays_usable()
    {
        int calls = 0;
        using var pipeline = WithSink(new CallbackImageSink((_, _) =>
            ++calls == 1 ? throw new IOException("network share went away") : ValueTask.CompletedTask));
        var e = await Assert.ThrowsAsync<IOException>(() => pipeline.GenerateAsync(Faults.Tiny()));
        Assert.Equal("network share went away", e.Message);
        var result = await pipeline.GenerateAsync(Faults.Tiny());
        Assert.Equal(2, calls);
        Assert.Equal((await fixture.Pipeline.GenerateAsync(Faults.Tiny())).Images[0].Pixels.ToArray(), result.Images[0].Pixels.ToArray());
    }

    [Fact]
    public async Task Npy_sink_into_a_missing_directory_fails_with_the_directory_named()
    {
        using var folder = new TempFolder();
        using var pipeline = WithSink(new NpyFileSink(Path.Combine(folder["missing"], "out.npy")));
        var e = await Assert.ThrowsAsync<DirectoryNotFoundException>(() => pipeline.GenerateAsync(Faults.Tiny()));
        Assert.Contains("missing", e.Message);
        Assert.Empty(folder.Files());
    }
}
