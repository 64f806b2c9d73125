using Microsoft.Extensions.DependencyInjection;
using Orleans.Configuration;
using Orleans.Hosting;
using Orleans.Runtime.MembershipService.SiloMetadata;
using Orleans.TestingHost;
using Sdxl.Net.Orleans;
using Sdxl.Net.Serving;

namespace Sdxl.Net.Tests.Serving;

/// <summary>
/// The grains on an in-process test cluster of three silos: the primary declares no GPU (it hosts the job and queue
/// grains), the two secondaries each have one "cpu" device on the synthetic model.
/// </summary>
public sealed class OrleansClusterTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(240);

    internal static async Task<InProcessTestCluster> StartClusterAsync(int maxQueue = 64, short silos = 3)
    {
        var model = SyntheticModels.Get();
        var builder = new InProcessTestClusterBuilder(silos);
        builder.ConfigureSilo((silo, siloBuilder) =>
        {
            bool gpu = !IsControlSilo(silo.SiloName);
            siloBuilder.AddSdxlCluster(o =>
            {
                o.MaxQueueLength = maxQueue;
                o.ModelDirectory = model;
                o.Devices = gpu ? ["cpu"] : [];
                o.Serving = new ServingOptions { MaxBatchSize = 4, MaxBatchDelay = TimeSpan.FromMilliseconds(30) };
            });

            // A killed silo is declared dead within a few seconds.
            siloBuilder.Configure<ClusterMembershipOptions>(m =>
            {
                m.ProbeTimeout = TimeSpan.FromSeconds(1);
                m.NumMissedProbesLimit = 2;
                m.NumVotesForDeathDeclaration = 1;
                m.TableRefreshTimeout = TimeSpan.FromSeconds(1);
            });
        });
        var cluster = builder.Build();
        await cluster.DeployAsync();
        await cluster.WaitForLivenessToStabilizeAsync();
        return cluster;
    }

    // The first silo (named Silo_0 by the test cluster) is the control silo.
    internal static bool IsControlSilo(string name) => name is "Silo_0" or "Primary";

    private static GenerationRequest Expected(ImageJobRequest r) => r.ToGenerationRequest();

    [Fact]
    public async Task Jobs_run_on_gpu_silos_only_and_equal_the_library_run_alone()
    {
        await using var cluster = await StartClusterAsync();
        var gpuSilos = cluster.Silos.Where(s => !IsControlSilo(s.Name)).Select(s => s.SiloAddress.ToParsableString()).ToHashSet();

        // Worker grains land only on silos whose metadata declares a GPU, whoever activates them.
        for (int i = 0; i < 6; i++)
        {
            var placed = await cluster.Client.GetGrain<IGpuWorkerGrain>($"probe-{i}/cpu").GetSilo();
            Assert.Contains(placed, gpuSilos);
        }

        var requests = Enumerable.Range(0, 6).Select(i => new ImageJobRequest
        {
            Prompt = $"a lighthouse {i}",
            Width = 64,
            Height = 64,
            Steps = 3,
            GuidanceScale = 3 + i,
            Seed = 50 + i,
        }).ToList();
        var ids = requests.Select(_ => Guid.NewGuid().ToString("N")).ToList();
        for (int i = 0; i < requests.Count; i++)
        {
            Assert.True((await cluster.Client.GetGrain<IImageJobGrain>(ids[i]).Submit(requests[i])).Accepted);
        }

        var statuses = await Task.WhenAll(ids.Select(id => cluster.Client.GetGrain<IImageJobGrain>(id).RunToEnd(CancellationToken.None))).WaitAsync(Timeout);
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(SyntheticModels.Get()).Build();
        for (int i = 0; i < requests.Count; i++)
        {
            Assert.Equal(ImageJobState.Done, statuses[i].State);
            var events = new List<ImageJobEvent>();
            await foreach (var e in cluster.Client.GetGrain<IImageJobGrain>(ids[i]).Watch(0))
            {
                events.Add(e);
            }

            Assert.Equal(Enumerable.Range(0, events.Count), events.Select(e => e.Sequence));
            Assert.Equal(ImageJobEventKind.Queued, events[0].Kind);
            Assert.Equal(ImageJobEventKind.Done, events[^1].Kind);
            Assert.Equal([1, 2, 3], events.Where(e => e.Kind == ImageJobEventKind.Step).Select(e => e.Step));
            var worker = events.Single(e => e.Kind == ImageJobEventKind.Started).Worker!;
            Assert.Contains(worker[..worker.LastIndexOf('/')], gpuSilos);

            var alone = await pipeline.GenerateAsync(Expected(requests[i]));
            using var served = SixLabors.ImageSharp.Image.Load<SixLabors.ImageSharp.PixelFormats.Rgb24>(statuses[i].Images![0].Png);
            using var expected = alone.Images[0].ToImage();
            Assert.True(ServerSampleTests.SamePixels(expected, served), $"job {i} differs from the library's image");
        }
    }

    [Fact]
    public async Task A_cancellation_token_crosses_the_wire_and_cancels_a_running_job_and_a_full_queue_refuses()
    {
        await using var cluster = await StartClusterAsync(maxQueue: 1);

        // Each of the two workers holds one running job and pulls one more into its own queue (different step counts:
        // no batching); only then do jobs stay in the cluster queue.
        var longJobs = Enumerable.Range(0, 4).Select(i => cluster.Client.GetGrain<IImageJobGrain>($"long-{i}")).ToList();
        for (int i = 0; i < longJobs.Count; i++)
        {
            Assert.True((await longJobs[i].Submit(new ImageJobRequest { Prompt = "long", Width = 512, Height = 512, Steps = 1000 - i, Seed = i })).Accepted);
            await WaitForStateAsync(longJobs[i], ImageJobState.Running);
        }

        var running = longJobs[0];
        await WaitForAsync(running, ImageJobEventKind.Step);

        // The queue of one fills with a job; the next is refused with a retry estimate.
        var queued = cluster.Client.GetGrain<IImageJobGrain>("queued");
        var other = cluster.Client.GetGrain<IImageJobGrain>("other");
        Assert.True((await queued.Submit(new ImageJobRequest { Prompt = "waits", Width = 64, Height = 64, Steps = 2, Seed = 2 })).Accepted);
        var refused = await other.Submit(new ImageJobRequest { Prompt = "refused", Width = 64, Height = 64, Steps = 2 });
        Assert.False(refused.Accepted);
        Assert.True(refused.RetryAfter >= TimeSpan.FromSeconds(1));
        Assert.Equal(ImageJobState.Unknown, (await other.GetStatus()).State);

        // The caller's token cancels the job it waits for, also when it is cancelled before the grain started the
        // call (Orleans drops such a call: RunToEndAsync then cancels the job itself).
        using var cancel = new CancellationTokenSource();
        var wait = running.RunToEndAsync(cancel.Token);
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait.WaitAsync(Timeout));
        var status = await WaitForStateAsync(running, ImageJobState.Cancelled);
        Assert.True(status.Step < 1000);

        // A token cancelled before the call: Orleans never sends it; the job is cancelled all the same.
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => longJobs[1].RunToEndAsync(new CancellationToken(canceled: true)));
        Assert.Equal(ImageJobState.Cancelled, (await WaitForStateAsync(longJobs[1], ImageJobState.Cancelled)).State);
        foreach (var job in longJobs.Skip(1))
        {
            Assert.Equal(ImageJobState.Cancelled, (await job.Cancel()).State);
        }

        Assert.Equal(ImageJobState.Done, (await queued.RunToEnd(CancellationToken.None).WaitAsync(Timeout)).State);
    }

    [Fact]
    public async Task Killing_a_gpu_silo_mid_run_loses_no_job()
    {
        await using var cluster = await StartClusterAsync();
        var ids = Enumerable.Range(0, 6).Select(i => $"job-{i}").ToList();
        foreach (var (id, i) in ids.Select((id, i) => (id, i)))
        {
            // Different step counts: no batching, so both workers get work.
            var request = new ImageJobRequest { Prompt = $"p{i}", Width = 128, Height = 128, Steps = 24 + i, Seed = i };
            Assert.True((await cluster.Client.GetGrain<IImageJobGrain>(id).Submit(request)).Accepted);
        }

        // Kill the silo of the first job that reports a step.
        string? victim = null;
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (victim is null)
        {
            Assert.True(watch.Elapsed < Timeout, "no job started");
            foreach (var id in ids)
            {
                var s = await cluster.Client.GetGrain<IImageJobGrain>(id).GetStatus();
                if (s is { State: ImageJobState.Running, Step: > 0, Worker: { } w })
                {
                    victim = w[..w.LastIndexOf('/')];
                    break;
                }
            }

            await Task.Delay(20);
        }

        var silo = cluster.Silos.Single(s => s.SiloAddress.ToParsableString() == victim);
        await cluster.KillSiloAsync(silo);

        // Jobs the killed silo had already finished keep its name; every job not done when it died must end elsewhere.
        var doneBeforeKill = new HashSet<string>(StringComparer.Ordinal);
        foreach (var id in ids)
        {
            if ((await cluster.Client.GetGrain<IImageJobGrain>(id).GetStatus()).State == ImageJobState.Done)
            {
                doneBeforeKill.Add(id);
            }
        }

        var statuses = await Task.WhenAll(ids.Select(id => cluster.Client.GetGrain<IImageJobGrain>(id).RunToEnd(CancellationToken.None))).WaitAsync(Timeout);
        Assert.All(statuses, s => Assert.Equal(ImageJobState.Done, s.State));
        Assert.True(statuses.Sum(s => s.Requeues) >= 1, "the killed silo's job was queued again");
        Assert.All(statuses.Where(s => !doneBeforeKill.Contains(s.Id)),
            s => Assert.False(s.Worker!.StartsWith(victim + "/", StringComparison.Ordinal), $"{s.Id} ended on the killed silo"));
    }

    [Fact]
    public async Task A_queued_job_the_queue_lost_is_queued_again()
    {
        // The control silo alone: nothing takes the job, so it stays queued. Removing it from the queue behind the job
        // grain's back is what a dead queue silo does to the queue's in-memory state.
        await using var cluster = await StartClusterAsync(silos: 1);
        var job = cluster.Client.GetGrain<IImageJobGrain>("lost");
        Assert.True((await job.Submit(new ImageJobRequest { Prompt = "waits", Width = 64, Height = 64, Steps = 2, Seed = 1 })).Accepted);
        Assert.Equal(0, (await job.GetStatus()).Position);

        var queue = cluster.Client.GetGrain<IImageQueueGrain>("default");
        Assert.True(await queue.Remove("lost"));
        Assert.Null((await job.GetStatus()).Position);

        // Two watchdog checks (1 s apart) must miss it before it is queued again.
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (await queue.PositionOf("lost") is null)
        {
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(30), "the lost job was not queued again");
            await Task.Delay(100);
        }

        var status = await job.GetStatus();
        Assert.Equal(ImageJobState.Queued, status.State);
        Assert.Equal(0, status.Position);
        var events = new List<ImageJobEvent>();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            await foreach (var e in job.Watch(0, stop.Token))
            {
                events.Add(e);
            }
        }
        catch (OperationCanceledException)
        {
        }

        Assert.Equal([ImageJobEventKind.Queued, ImageJobEventKind.Queued], events.Select(e => e.Kind));
        Assert.Contains("queue had lost", events[1].Error, StringComparison.Ordinal);
        Assert.Equal(ImageJobState.Cancelled, (await job.Cancel()).State);
        Assert.Null(await queue.PositionOf("lost"));
    }

    private static async Task WaitForAsync(IImageJobGrain job, ImageJobEventKind kind)
    {
        using var timeout = new CancellationTokenSource(Timeout);
        await foreach (var e in job.Watch(0, timeout.Token))
        {
            if (e.Kind == kind)
            {
                return;
            }
        }

        throw new Xunit.Sdk.XunitException($"the job ended without {kind}");
    }

    private static async Task<ImageJobStatus> WaitForStateAsync(IImageJobGrain job, ImageJobState state)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            var status = await job.GetStatus();
            if (status.State == state)
            {
                return status;
            }

            Assert.True(watch.Elapsed < Timeout, $"the job stayed {status.State}");
            await Task.Delay(50);
        }
    }
}
