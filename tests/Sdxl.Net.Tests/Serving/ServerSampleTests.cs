using System.ClientModel;
using System.Net;
using System.Net.Http.Json;
using System.Net.ServerSentEvents;
using System.Text.Json;
using OpenAI;
using OpenAI.Images;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Sdxl.Net.Tests.Serving;

/// <summary>samples/Sdxl.Server over loopback: the OpenAI SDK as a real client, the job API, SSE, cancellation, 400s.</summary>
public sealed class ServerSampleTests(BatchingServerFixture server) : IClassFixture<BatchingServerFixture>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task The_OpenAI_sdk_generates_a_png_of_the_requested_size()
    {
        var client = new OpenAIClient(new ApiKeyCredential("not-checked"), new OpenAIClientOptions { Endpoint = new Uri(server.BaseAddress, "/v1") });
        var images = client.GetImageClient("sdxl");
        OpenAI.Images.GeneratedImage image = await images.GenerateImageAsync("a lighthouse at night", new ImageGenerationOptions
        {
            Size = new GeneratedImageSize(64, 96),
            ResponseFormat = GeneratedImageFormat.Bytes,
        });

        using var png = Image.Load<Rgb24>(image.ImageBytes.ToArray());
        Assert.Equal((64, 96), (png.Width, png.Height));
    }

    [Fact]
    public async Task Sixteen_concurrent_seeded_requests_equal_the_library_run_alone()
    {
        // The OpenAI SDK's protocol method sends the body as given (OpenAI's fields plus seed, steps, ...).
        var client = new OpenAIClient(new ApiKeyCredential("not-checked"), new OpenAIClientOptions { Endpoint = new Uri(server.BaseAddress, "/v1") });
        var images = client.GetImageClient("sdxl");
        var bodies = Enumerable.Range(0, 16).Select(i => new
        {
            model = "sdxl",
            prompt = $"a lighthouse number {i}",
            negative_prompt = i % 3 == 0 ? "fog" : null,
            n = i % 5 == 0 ? 2 : 1,
            size = "64x64",
            response_format = "b64_json",
            steps = 3,
            guidance_scale = 4 + (i % 4),
            seed = 1000 + i,
        }).ToList();
        var responses = await Task.WhenAll(bodies.Select(async body =>
        {
            var result = await images.GenerateImagesAsync(BinaryContent.Create(BinaryData.FromObjectAsJson(body)));
            return JsonDocument.Parse(result.GetRawResponse().Content.ToString());
        })).WaitAsync(Timeout);

        // The independent path: the library alone, with the request the CLI builds from the same values.
        using var pipeline = SdxlPipeline.CreateBuilder().WithModel(server.Model).Build();
        for (int i = 0; i < bodies.Count; i++)
        {
            var b = bodies[i];
            var alone = await pipeline.GenerateAsync(new GenerationRequest
            {
                Prompt = b.prompt,
                NegativePrompt = b.negative_prompt,
                BatchSize = b.n,
                Width = 64,
                Height = 64,
                Steps = b.steps,
                GuidanceScale = b.guidance_scale,
                Seed = b.seed,
            });
            var data = responses[i].RootElement.GetProperty("data");
            Assert.Equal(b.n, data.GetArrayLength());
            for (int k = 0; k < b.n; k++)
            {
                using var served = Image.Load<Rgb24>(Convert.FromBase64String(data[k].GetProperty("b64_json").GetString()!));
                using var expected = alone.Images[k].ToImage();
                Assert.True(SamePixels(expected, served), $"request {i} image {k} differs from the library's");
            }
        }
    }

    [Fact]
    public async Task Job_events_arrive_in_order_and_the_status_holds_the_image()
    {
        var id = await SubmitJobAsync(new { prompt = "a red fox", size = "64x64", steps = 4, seed = 5 });
        var events = await ReadEventsAsync(id);

        var kinds = events.Select(e => e.EventType).ToList();
        Assert.Equal("done", kinds[^1]);
        int started = kinds.IndexOf("started");
        Assert.True(started >= 0 && kinds.Take(started).All(k => k == "queued"), string.Join(",", kinds));
        var steps = events.Where(e => e.EventType == "step").Select(e => JsonDocument.Parse(e.Data).RootElement.GetProperty("step").GetInt32());
        Assert.Equal([1, 2, 3, 4], steps);
        Assert.Equal(Enumerable.Range(0, events.Count).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), events.Select(e => e.EventId));

        var status = await server.Http.GetFromJsonAsync<JsonElement>($"/v1/jobs/{id}");
        Assert.Equal("done", status.GetProperty("status").GetString());
        using var png = Image.Load<Rgb24>(Convert.FromBase64String(status.GetProperty("data")[0].GetProperty("b64_json").GetString()!));
        Assert.Equal((64, 64), (png.Width, png.Height));
    }

    [Fact]
    public async Task Delete_cancels_a_running_job_and_its_events_end_cancelled()
    {
        var id = await SubmitJobAsync(new { prompt = "endless", size = "512x512", steps = 1000, seed = 1 });
        var events = ReadEventsAsync(id);
        await WaitForStatusAsync(id, "running");

        using var deleted = await server.Http.DeleteAsync($"/v1/jobs/{id}");
        Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        Assert.Equal("cancelled", (await deleted.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("status").GetString());
        Assert.Equal("cancelled", (await events.WaitAsync(Timeout))[^1].EventType);
        using var unknown = await server.Http.DeleteAsync("/v1/jobs/no-such-job");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
    }

    [Fact]
    public async Task A_client_that_disconnects_cancels_its_generation()
    {
        using var disconnect = new CancellationTokenSource();
        var endless = server.Http.PostAsJsonAsync("/v1/images/generations", new { prompt = "disconnect me", size = "512x512", steps = 1000, seed = 2 }, disconnect.Token);
        await Task.Delay(1000);
        await disconnect.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => endless);
        Assert.True(await server.WaitForOutputAsync("the client disconnected; the job was cancelled", Timeout), server.Output);
    }

    [Theory]
    [InlineData("{\"prompt\": \"x\", \"size\": \"64x65\"}", "65")]
    [InlineData("{\"prompt\": \"\"}", "prompt")]
    [InlineData("{\"prompt\": \"x\", \"response_format\": \"url\"}", "b64_json")]
    [InlineData("{\"prompt\": \"x\", \"size\": \"big\"}", "size")]
    [InlineData("{\"prompt\": \"x\", \"scheduler\": \"nope\"}", "nope")]
    [InlineData("{\"prompt\": ", "JSON")]
    public async Task Bad_input_gets_400_with_a_problem_body_naming_the_field(string body, string mentioned)
    {
        foreach (var path in new[] { "/v1/images/generations", "/v1/jobs" })
        {
            using var response = await server.Http.PostAsync(path, new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
            Assert.Contains(mentioned, problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }
    }

    internal static bool SamePixels(Image<Rgb24> a, Image<Rgb24> b)
    {
        if (a.Width != b.Width || a.Height != b.Height)
        {
            return false;
        }

        for (int y = 0; y < a.Height; y++)
        {
            for (int x = 0; x < a.Width; x++)
            {
                if (!a[x, y].Equals(b[x, y]))
                {
                    return false;
                }
            }
        }

        return true;
    }

    private async Task<string> SubmitJobAsync(object body)
    {
        using var response = await server.Http.PostAsJsonAsync("/v1/jobs", body);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;
    }

    private async Task<List<SseItem<string>>> ReadEventsAsync(string id)
    {
        using var timeout = new CancellationTokenSource(Timeout);
        await using var stream = await server.Http.GetStreamAsync($"/v1/jobs/{id}/events", timeout.Token);
        var items = new List<SseItem<string>>();
        await foreach (var item in SseParser.Create(stream).EnumerateAsync(timeout.Token))
        {
            items.Add(item);
        }

        return items;
    }

    private async Task WaitForStatusAsync(string id, string status)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while ((await server.Http.GetFromJsonAsync<JsonElement>($"/v1/jobs/{id}")).GetProperty("status").GetString() != status)
        {
            Assert.True(watch.Elapsed < Timeout, $"job {id} never became {status}");
            await Task.Delay(50);
        }
    }
}

/// <summary>Admission control through ASP.NET Core's rate limiting: 429 with Retry-After when the queue is full.</summary>
public sealed class ServerQueueFullTests(TinyQueueServerFixture server) : IClassFixture<TinyQueueServerFixture>
{
    [Fact]
    public async Task A_full_queue_answers_429_with_retry_after_and_a_problem_body()
    {
        var running = await Submit(new { prompt = "endless", size = "512x512", steps = 1000, seed = 1 });
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while ((await server.Http.GetFromJsonAsync<JsonElement>($"/v1/jobs/{running}")).GetProperty("status").GetString() != "running")
        {
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(60), "the first job never started");
            await Task.Delay(50);
        }

        var queued = await Submit(new { prompt = "waits", size = "64x64", steps = 2, seed = 2 });
        foreach (var path in new[] { "/v1/images/generations", "/v1/jobs" })
        {
            using var refused = await server.Http.PostAsJsonAsync(path, new { prompt = "refused", size = "64x64", steps = 2 });
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
            Assert.True(refused.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1), $"Retry-After: {refused.Headers.RetryAfter}");
            Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        }

        (await server.Http.DeleteAsync($"/v1/jobs/{running}")).Dispose();
        var done = System.Diagnostics.Stopwatch.StartNew();
        while ((await server.Http.GetFromJsonAsync<JsonElement>($"/v1/jobs/{queued}")).GetProperty("status").GetString() != "done")
        {
            Assert.True(done.Elapsed < TimeSpan.FromSeconds(60), "the queued job did not run after the first was cancelled");
            await Task.Delay(50);
        }
    }

    private async Task<string> Submit(object body)
    {
        using var response = await server.Http.PostAsJsonAsync("/v1/jobs", body);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;
    }
}
