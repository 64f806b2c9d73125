using System.Diagnostics;
using System.Globalization;
using Sdxl.Net.Serving;

namespace Sdxl.Net.Benchmarks;

/// <summary>
/// <c>serve [--size tiny|small] [--steps N] [--requests N] [--clients 1,4,16] [--max-batch N] [--threads N]</c>:
/// closed-loop clients submit seeded text-to-image jobs to an in-process <see cref="GenerationServer"/> on the CPU;
/// prints images/s and p50/p99 latency (submission to result) for each client count, with batching off and on, and
/// with one and two workers.
/// </summary>
internal static class ServeCommand
{
    public static async Task<int> RunAsync(CommandOptions args)
    {
        var size = args.Get("size", "tiny");
        int steps = args.GetInt32("steps", 10);
        int requests = args.GetInt32("requests", 48);
        int maxBatch = args.GetInt32("max-batch", 8);
        int threads = args.GetInt32("threads", 0);
        var clients = args.Get("clients", "1,4,16").Split(',').Select(c => int.Parse(c, CultureInfo.InvariantCulture)).ToList();
        var (dir, side) = SyntheticModels.Write(size);
        try
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"model: synthetic {size}, {side}x{side}, {steps} steps, CFG 5, CPU, {Environment.ProcessorCount} logical cores; {requests} requests per row"));
            Console.WriteLine("workers  batching        clients  images/s  p50 ms   p99 ms   mean batch");
            foreach (int workers in new[] { 1, 2 })
            {
                foreach (bool batching in new[] { false, true })
                {
                    var pipelines = Enumerable.Range(0, workers).Select(_ => SdxlPipeline.CreateBuilder().WithModel(dir).UseCpu(threads).Build()).ToList();
                    var options = new ServingOptions
                    {
                        MaxBatchSize = batching ? maxBatch : 1,
                        MaxBatchDelay = batching ? TimeSpan.FromMilliseconds(20) : TimeSpan.Zero,
                        MaxQueueLength = 1024,
                    };
                    using (var server = new GenerationServer(pipelines, options))
                    {
                        // Warm-up: JIT and ONNX Runtime's first runs.
                        await Task.WhenAll(Enumerable.Range(0, 4).Select(i => server.Submit(Request(i, side, steps)).Completion));
                        foreach (int c in clients)
                        {
                            var row = await MeasureAsync(server, c, requests, side, steps);
                            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                                $"{workers,-8} {(batching ? $"on (max {maxBatch})" : "off"),-15} {c,-8} {row.ImagesPerSecond,-9:F2} {row.P50,-8:F1} {row.P99,-8:F1} {row.MeanBatch:F2}"));
                        }
                    }

                    foreach (var p in pipelines)
                    {
                        p.Dispose();
                    }
                }
            }

            return 0;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static GenerationRequest Request(int i, int side, int steps) =>
        new() { Prompt = $"a lighthouse at dawn, oil painting, variant {i}", Seed = i, Steps = steps, Width = side, Height = side };

    private static async Task<(double ImagesPerSecond, double P50, double P99, double MeanBatch)> MeasureAsync(GenerationServer server, int clients, int requests, int side, int steps)
    {
        var latencies = new List<double>();
        var batches = new List<int>();
        int next = 0;
        var wall = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, clients).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) <= requests)
            {
                long start = Stopwatch.GetTimestamp();
                var job = server.Submit(Request(1000 + i, side, steps));
                await job.Completion;
                double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                lock (latencies)
                {
                    latencies.Add(ms);
                    batches.Add(job.Events.First(e => e.Kind == JobEventKind.Started).BatchImages);
                }
            }
        }));
        wall.Stop();
        latencies.Sort();
        double Percentile(double p) => latencies[Math.Min(latencies.Count - 1, (int)Math.Ceiling(p * latencies.Count) - 1)];
        return (requests / wall.Elapsed.TotalSeconds, Percentile(0.5), Percentile(0.99), batches.Average());
    }
}
