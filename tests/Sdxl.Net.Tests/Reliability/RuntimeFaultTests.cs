using System.Diagnostics;
using Sdxl.Net.Imaging;
using Sdxl.Net.Schedulers;
using Sdxl.Net.Synthetic;

namespace Sdxl.Net.Tests.Reliability;

/// <summary>Cancellation at every phase, numeric faults and native memory over repeated cancellation.</summary>
/// <remarks>
/// Runs alone: the memory test reads the process's resident size, which tests creating sessions in parallel (LoRA
/// adapter sets, model loading) would grow by tens of MiB.
/// </remarks>
[Collection(ProcessMemoryCollection.Name)]
public sealed class CancellationTests(SyntheticPipelineFixture fixture) : IClassFixture<SyntheticPipelineFixture>
{
    [Fact]
    public async Task Cancelled_before_start_throws_and_runs_nothing()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        int reports = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            fixture.Pipeline.GenerateAsync(Faults.Tiny(), new PhaseAction(_ => reports++), cts.Token));
        Assert.Equal(0, reports);
    }

    [Theory]
    [InlineData(GenerationPhase.EncodingPrompts, 0)]
    [InlineData(GenerationPhase.Denoising, 1)]
    [InlineData(GenerationPhase.Denoising, 3)]
    [InlineData(GenerationPhase.Decoding, 0)]
    public async Task Cancelled_during_a_phase_throws_and_the_pipeline_stays_usable(GenerationPhase phase, int step)
    {
        var request = Faults.Tiny(seed: 11) with { Steps = 4, BatchSize = 2 };
        var expected = await fixture.Pipeline.GenerateAsync(request);

        using var cts = new CancellationTokenSource();
        GenerationPhase? last = null;
        var progress = new PhaseAction(p =>
        {
            last = p.Phase;
            if (p.Phase == phase && p.Step == step)
            {
                cts.Cancel();
            }
        });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => fixture.Pipeline.GenerateAsync(request, progress, cts.Token));
        Assert.Equal(phase, last); // it stopped in the phase it was cancelled in, not later

        var again = await fixture.Pipeline.GenerateAsync(request);
        for (int i = 0; i < 2; i++)
        {
            Assert.Equal(expected.Images[i].Pixels.ToArray(), again.Images[i].Pixels.ToArray());
        }
    }

    [Fact]
    public async Task Cancelled_while_writing_leaves_no_file()
    {
        using var folder = new TempFolder();
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).AddSink(new PngFileSink(folder["out.png"])).Build();
        using var cts = new CancellationTokenSource();
        var progress = new PhaseAction(p =>
        {
            if (p.Phase == GenerationPhase.Writing)
            {
                cts.Cancel();
            }
        });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pipeline.GenerateAsync(Faults.Tiny() with { BatchSize = 2 }, progress, cts.Token));
        Assert.Empty(folder.Files());
        await pipeline.GenerateAsync(Faults.Tiny());
        Assert.Equal(["out.png"], folder.Files());
    }

    [Fact]
    public async Task Fifty_cancellations_do_not_grow_native_memory()
    {
        // Coarse by design (RSS is noisy): a leak of the per-run tensors or RunOptions of a 256×256 run would add
        // megabytes per cycle; the bound allows for allocator and JIT noise.
        var request = Faults.Tiny() with { Width = 256, Height = 256, Steps = 3, BatchSize = 2 };
        async Task CancelCycle()
        {
            using var cts = new CancellationTokenSource();
            var progress = new PhaseAction(p =>
            {
                if (p.Phase == GenerationPhase.Denoising && p.Step == 1)
                {
                    cts.Cancel();
                }
            });
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => fixture.Pipeline.GenerateAsync(request, progress, cts.Token));
        }

        for (int i = 0; i < 5; i++)
        {
            await CancelCycle();
        }

        long before = Settled();
        for (int i = 0; i < 50; i++)
        {
            await CancelCycle();
        }

        long growth = Settled() - before;
        Assert.True(growth < 48L << 20, $"resident memory grew by {growth >> 20} MiB over 50 cancelled generations");
        Assert.Single((await fixture.Pipeline.GenerateAsync(Faults.Tiny())).Images);

        static long Settled()
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            using var process = Process.GetCurrentProcess();
            return process.WorkingSet64;
        }
    }
}

/// <summary>NaN and infinity become an SdxlNumericException that names the likely cause and the fix.</summary>
public sealed class NumericFaultTests
{
    [Fact]
    public async Task Nan_latents_after_denoising_name_the_cause()
    {
        var scheduler = new TamperingScheduler(new EulerDiscreteScheduler(SchedulerConfig.SdxlBase), (_, sample) => sample[5] = float.NaN);
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).WithScheduler(scheduler).Build();
        var e = await Assert.ThrowsAsync<SdxlNumericException>(() => pipeline.GenerateAsync(Faults.Tiny()));
        Assert.Contains("NaN or infinite latents", e.Message);
        Assert.Contains("lower GuidanceScale", e.Message);
    }

    [Fact]
    public async Task Fp16_model_names_float32_export_as_the_fix()
    {
        var scheduler = new TamperingScheduler(new EulerDiscreteScheduler(SchedulerConfig.SdxlBase), (_, sample) => sample[0] = float.PositiveInfinity);
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get(new SyntheticModelOptions { Float16 = true })).WithScheduler(scheduler).Build();
        var e = await Assert.ThrowsAsync<SdxlNumericException>(() => pipeline.GenerateAsync(Faults.Tiny()));
        Assert.Contains("float16", e.Message);
        Assert.Contains("float32 export", e.Message);
    }

    [Fact]
    public async Task Fp16_vae_overflow_is_reported_with_the_fp16_fix()
    {
        // Latents of 1e6 are finite in float32 but overflow the float16 VAE input (max 65504), as a real fp16 SDXL VAE
        // overflows inside: the decoded image is NaN.
        var scheduler = new TamperingScheduler(new EulerDiscreteScheduler(SchedulerConfig.SdxlBase), (step, sample) =>
        {
            if (step == 2)
            {
                sample.Fill(1e6f);
            }
        });
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get(new SyntheticModelOptions { Float16 = true })).WithScheduler(scheduler).Build();
        var e = await Assert.ThrowsAsync<SdxlNumericException>(() => pipeline.GenerateAsync(Faults.Tiny()));
        Assert.Contains("VAE decoder produced NaN or infinite values", e.Message);
        Assert.Contains("fp16", e.Message);
        Assert.Contains("sdxl-vae-fp16-fix", e.Message);
    }

    [Fact]
    public async Task Nan_diagnosis_names_the_causes_that_remain_after_validation()
    {
        // A custom scheduler producing NaN at high guidance: both are named, the validated configuration is ruled out.
        var scheduler = new TamperingScheduler(new EulerDiscreteScheduler(SchedulerConfig.SdxlBase), (_, sample) => sample[1] = float.NaN);
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).WithScheduler(scheduler).Build();
        var e = await Assert.ThrowsAsync<SdxlNumericException>(() => pipeline.GenerateAsync(Faults.Tiny() with { GuidanceScale = 30 }));
        Assert.Contains("custom IScheduler", e.Message);
        Assert.Contains("GuidanceScale 30 is far above", e.Message);
        Assert.Contains("validated and are not the cause", e.Message);

        // A float32 VAE fed extreme latents: the message does not blame an fp16 VAE it does not have.
        var extreme = new TamperingScheduler(new EulerDiscreteScheduler(SchedulerConfig.SdxlBase), (step, sample) =>
        {
            if (step == 2)
            {
                sample.Fill(3e37f);
            }
        });
        using var fp32 = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).WithScheduler(extreme).Build();
        var vae = await Assert.ThrowsAsync<SdxlNumericException>(() => fp32.GenerateAsync(Faults.Tiny()));
        Assert.Contains("runs in float32", vae.Message);
        Assert.DoesNotContain("fp16 SDXL VAE", vae.Message);
    }

    [Fact]
    public async Task Untampered_fp16_model_generates_finite_images()
    {
        var scheduler = new TamperingScheduler(new EulerDiscreteScheduler(SchedulerConfig.SdxlBase), (_, _) => { });
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get(new SyntheticModelOptions { Float16 = true })).WithScheduler(scheduler).Build();
        var result = await pipeline.GenerateAsync(Faults.Tiny());
        Assert.All(result.Images[0].Pixels.ToArray(), v => Assert.True(float.IsFinite(v)));
    }
}

/// <summary>Tests that measure the process's memory, run after and apart from every parallel test.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessMemoryCollection
{
    public const string Name = "Process memory";
}
