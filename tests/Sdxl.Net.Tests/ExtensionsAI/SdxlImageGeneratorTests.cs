// MEAI001: Microsoft.Extensions.AI marks the image generation abstractions experimental; these tests exercise them.
#pragma warning disable MEAI001

using System.Text.Json;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Sdxl.Net.Extensions.AI;
using Sdxl.Net.Imaging;
using Sdxl.Net.Tests.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using ImageSharpImage = SixLabors.ImageSharp.Image;
using Keys = Sdxl.Net.Extensions.AI.SdxlImageGenerator.PropertyNames;

namespace Sdxl.Net.Tests.ExtensionsAI;

public sealed class SdxlImageGeneratorTests(SyntheticPipelineFixture model) : IClassFixture<SyntheticPipelineFixture>
{
    [Fact]
    public void Prompt_size_count_and_sdxl_properties_map_onto_the_request()
    {
        var generator = new SdxlImageGenerator(model.Pipeline, new SdxlImageGeneratorOptions
        {
            Defaults = new GenerationRequest { Prompt = string.Empty, Steps = 12, GuidanceScale = 3, NegativePrompt = "default negative" },
        });
        var options = new ImageGenerationOptions
        {
            ImageSize = new System.Drawing.Size(96, 64),
            Count = 3,
            AdditionalProperties = new AdditionalPropertiesDictionary
            {
                [Keys.NegativePrompt] = "blurry",
                [Keys.Prompt2] = "second prompt",
                [Keys.Steps] = 20,
                [Keys.GuidanceScale] = 7.5,
                [Keys.GuidanceRescale] = 0.7f,
                [Keys.Seed] = 1234567890123L,
                [Keys.Scheduler] = "euler-a",
                [Keys.UseRefiner] = false,
            },
        };

        var r = generator.CreateRequest(new ImageGenerationRequest("a lighthouse"), options, input: null);

        Assert.Equal("a lighthouse", r.Prompt);
        Assert.Equal("second prompt", r.Prompt2);
        Assert.Equal("blurry", r.NegativePrompt);
        Assert.Equal((96, 64), (r.Width, r.Height));
        Assert.Equal(3, r.BatchSize);
        Assert.Equal(20, r.Steps);
        Assert.Equal(7.5f, r.GuidanceScale);
        Assert.Equal(0.7f, r.GuidanceRescale);
        Assert.Equal(1234567890123L, r.Seed);
        Assert.Equal("euler-a", r.Scheduler);
        Assert.False(r.UseRefiner);
        Assert.Null(r.Strength);
    }

    [Fact]
    public void Without_options_the_configured_defaults_apply()
    {
        var generator = new SdxlImageGenerator(model.Pipeline, new SdxlImageGeneratorOptions
        {
            Defaults = new GenerationRequest { Prompt = string.Empty, Steps = 12, NegativePrompt = "default negative" },
        });

        var r = generator.CreateRequest(new ImageGenerationRequest("a fox"), options: null, input: null);

        Assert.Equal(("a fox", 12, "default negative", 1), (r.Prompt, r.Steps, r.NegativePrompt, r.BatchSize));
        Assert.Null(r.Width);
    }

    [Fact]
    public void Json_values_from_deserialized_options_are_read()
    {
        var generator = new SdxlImageGenerator(model.Pipeline);
        var json = JsonDocument.Parse("""{"steps": 9, "seed": -5, "guidance_scale": 2.5, "strength": 0.25, "scheduler": "ddim", "use_refiner": true}""").RootElement;
        var properties = new AdditionalPropertiesDictionary();
        foreach (var p in json.EnumerateObject())
        {
            properties[p.Name] = p.Value.Clone();
        }

        var r = generator.CreateRequest(new ImageGenerationRequest("x"), new ImageGenerationOptions { AdditionalProperties = properties }, input: null);

        Assert.Equal((9, -5L, 2.5f, 0.25, "ddim", true), (r.Steps, r.Seed!.Value, r.GuidanceScale, r.Strength!.Value, r.Scheduler, r.UseRefiner));
    }

    [Theory]
    [InlineData(Keys.Steps, "20", "'steps' must be an integer; got String '20'")]
    [InlineData(Keys.Steps, 2.5, "'steps' must be an integer; got Double '2.5'")]
    [InlineData(Keys.Steps, 0, "'steps' must be between 1 and")]
    [InlineData(Keys.Seed, "42", "'seed' must be an integer")]
    [InlineData(Keys.GuidanceScale, "high", "'guidance_scale' must be a number; got String 'high'")]
    [InlineData(Keys.GuidanceScale, double.NaN, "'guidance_scale' must be a finite number")]
    [InlineData(Keys.NegativePrompt, 3, "'negative_prompt' must be a string; got Int32 '3'")]
    [InlineData(Keys.Scheduler, null, "'scheduler' must be a string; got null")]
    [InlineData(Keys.UseRefiner, "yes", "'use_refiner' must be a boolean")]
    [InlineData("step", 20, "Unknown additional property 'step'. Known: negative_prompt")]
    public void Wrongly_typed_or_unknown_properties_are_rejected_by_name(string key, object? value, string message)
    {
        var generator = new SdxlImageGenerator(model.Pipeline);
        var options = new ImageGenerationOptions { AdditionalProperties = new AdditionalPropertiesDictionary { [key] = value } };

        var e = Assert.ThrowsAny<ArgumentException>(() => generator.CreateRequest(new ImageGenerationRequest("x"), options, input: null));

        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void Unknown_properties_can_be_ignored()
    {
        var generator = new SdxlImageGenerator(model.Pipeline, new SdxlImageGeneratorOptions { IgnoreUnknownProperties = true });
        var options = new ImageGenerationOptions { AdditionalProperties = new AdditionalPropertiesDictionary { ["quality"] = "hd", [Keys.Steps] = 3 } };

        Assert.Equal(3, generator.CreateRequest(new ImageGenerationRequest("x"), options, input: null).Steps);
    }

    [Fact]
    public async Task Requests_the_generator_cannot_serve_fail_before_generating()
    {
        var generator = new SdxlImageGenerator(model.Pipeline);
        var png = new DataContent(new byte[] { 1, 2, 3 }, "image/png");

        await Assert.ThrowsAsync<ArgumentException>(() => generator.GenerateAsync(new ImageGenerationRequest(" ")));
        await Assert.ThrowsAsync<NotSupportedException>(() => generator.GenerateAsync(new ImageGenerationRequest("x"), new ImageGenerationOptions { ResponseFormat = ImageGenerationResponseFormat.Uri }));
        await Assert.ThrowsAsync<NotSupportedException>(() => generator.GenerateAsync(new ImageGenerationRequest("x"), new ImageGenerationOptions { MediaType = "image/jpeg" }));
        await Assert.ThrowsAsync<ArgumentException>(() => generator.GenerateAsync(new ImageGenerationRequest("x"), new ImageGenerationOptions { Count = 0 }));
        var two = await Assert.ThrowsAsync<NotSupportedException>(() => generator.GenerateAsync(new ImageGenerationRequest("x", [png, png])));
        Assert.Contains("exactly one", two.Message);
        var remote = await Assert.ThrowsAsync<NotSupportedException>(() => generator.GenerateAsync(new ImageGenerationRequest("x", [new UriContent("https://example.com/a.png", "image/png")])));
        Assert.Contains("UriContent", remote.Message);
        var text = await Assert.ThrowsAsync<ArgumentException>(() => generator.GenerateAsync(new ImageGenerationRequest("x", [new DataContent(new byte[] { 1 }, "text/plain")])));
        Assert.Contains("text/plain", text.Message);
        var corrupt = await Assert.ThrowsAsync<InvalidDataException>(() => generator.GenerateAsync(new ImageGenerationRequest("x", [png])));
        Assert.Contains("OriginalImages[0]", corrupt.Message);
    }

    [Fact]
    public async Task Text_to_image_returns_one_png_per_image_equal_to_the_pipelines_output()
    {
        var generator = new SdxlImageGenerator(model.Pipeline);
        var options = new ImageGenerationOptions
        {
            ImageSize = new System.Drawing.Size(32, 48),
            Count = 2,
            AdditionalProperties = new AdditionalPropertiesDictionary { [Keys.Steps] = 3, [Keys.Seed] = 11L, [Keys.NegativePrompt] = "dull" },
        };

        var response = await generator.GenerateAsync(new ImageGenerationRequest("a red fox"), options);

        var direct = await model.Pipeline.GenerateAsync(new GenerationRequest
        {
            Prompt = "a red fox", NegativePrompt = "dull", Width = 32, Height = 48, BatchSize = 2, Steps = 3, Seed = 11,
        });
        Assert.Equal(2, response.Contents.Count);
        Assert.IsType<GenerationResult>(response.RawRepresentation);
        for (int i = 0; i < 2; i++)
        {
            var content = Assert.IsType<DataContent>(response.Contents[i]);
            Assert.Equal("image/png", content.MediaType);
            using var decoded = ImageSharpImage.Load<Rgb24>(content.Data.ToArray());
            using var expected = direct.Images[i].ToImage();
            ImageFileSinkTests.AssertSamePixels(expected, decoded);
            Assert.Contains(decoded.Metadata.GetPngMetadata().TextData, t => t.Keyword == ImageRecipe.RequestKeyword && t.Value.Contains("\"a red fox\"", StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task An_original_image_runs_image_to_image_with_the_given_strength()
    {
        var generator = new SdxlImageGenerator(model.Pipeline);
        var source = ImageSinkTestData.Result("source", width: 32, height: 32);
        using var sourcePng = new MemoryStream();
        await new StreamImageSink((_, _, _) => ValueTask.FromResult<Stream>(sourcePng), leaveOpen: true).WriteAsync(source);
        var properties = new AdditionalPropertiesDictionary { [Keys.Steps] = 4, [Keys.Seed] = 3L, [Keys.Strength] = 0.5 };

        var response = await generator.GenerateAsync(
            new ImageGenerationRequest("a watercolor", [new DataContent(sourcePng.ToArray(), "image/png")]),
            new ImageGenerationOptions { AdditionalProperties = properties });

        sourcePng.Position = 0;
        using var input = ImageInput.Load(sourcePng);
        var expected = await model.Pipeline.GenerateAsync(new GenerationRequest { Prompt = "a watercolor", Image = input, Steps = 4, Seed = 3, Strength = 0.5 });
        var textToImage = await model.Pipeline.GenerateAsync(new GenerationRequest { Prompt = "a watercolor", Width = 32, Height = 32, Steps = 4, Seed = 3 });
        var result = Assert.IsType<GenerationResult>(response.RawRepresentation);
        Assert.Equal(0.5, result.Request.Strength);
        Assert.Equal(expected.Images[0].Pixels.ToArray(), result.Images[0].Pixels.ToArray());
        Assert.NotEqual(textToImage.Images[0].Pixels.ToArray(), result.Images[0].Pixels.ToArray());
    }

    [Fact]
    public async Task Cancellation_reaches_the_pipeline()
    {
        var generator = new SdxlImageGenerator(model.Pipeline);
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => generator.GenerateAsync(new ImageGenerationRequest("x"), cancellationToken: cts.Token));
    }

    [Fact]
    public void GetService_exposes_the_pipeline_the_metadata_and_itself()
    {
        using var generator = new SdxlImageGenerator(model.Pipeline, new SdxlImageGeneratorOptions { ModelId = "tiny-sdxl" });

        Assert.Same(model.Pipeline, generator.GetService<SdxlPipeline>());
        Assert.Same(generator, generator.GetService<SdxlImageGenerator>());
        Assert.Same(generator, generator.GetService<IImageGenerator>());
        var metadata = generator.GetService<ImageGeneratorMetadata>()!;
        Assert.Equal((SdxlImageGenerator.ProviderName, "tiny-sdxl"), (metadata.ProviderName, metadata.DefaultModelId));
        Assert.Null(generator.GetService<SdxlPipeline>("some key"));
        Assert.Null(generator.GetService(typeof(string)));
    }

    [Fact]
    public async Task Composes_with_microsoft_extensions_ai_middleware()
    {
        using var logs = new ListLoggerFactory();
        using IImageGenerator generator = new ImageGeneratorBuilder(new SdxlImageGenerator(model.Pipeline))
            .UseLogging(logs)
            .Build();

        var response = await generator.GenerateImagesAsync("a tiny robot", new ImageGenerationOptions
        {
            ImageSize = new System.Drawing.Size(32, 32),
            AdditionalProperties = new AdditionalPropertiesDictionary { [Keys.Steps] = 2, [Keys.Seed] = 1L },
        });

        Assert.Single(response.Contents);
        Assert.Same(model.Pipeline, generator.GetService<SdxlPipeline>());
        Assert.Contains(logs.Messages, m => m.Contains("GenerateAsync", StringComparison.Ordinal) && m.Contains("completed", StringComparison.OrdinalIgnoreCase));
        Assert.Contains(logs.Messages, m => m.Contains("a tiny robot", StringComparison.Ordinal)); // sensitive data is logged at Trace
    }

    [Fact]
    public async Task Registers_through_dependency_injection_over_the_pipeline_registration()
    {
        var services = new ServiceCollection()
            .AddSdxl(o => o.ModelPath = model.ModelDirectory)
            .AddSdxlImageGenerator(o => o.Defaults = new GenerationRequest { Prompt = string.Empty, Steps = 2 });
        await using var provider = services.BuildServiceProvider();

        var generator = provider.GetRequiredService<IImageGenerator>();
        var response = await generator.GenerateImagesAsync("x", new ImageGenerationOptions { ImageSize = new System.Drawing.Size(32, 32) });

        Assert.Same(provider.GetRequiredService<SdxlPipeline>(), generator.GetService<SdxlPipeline>());
        Assert.Equal(2, Assert.IsType<GenerationResult>(response.RawRepresentation).Request.Steps);
    }

    private sealed class ListLoggerFactory : ILoggerFactory, ILogger
    {
        private readonly List<string> _messages = [];

        public IReadOnlyList<string> Messages
        {
            get
            {
                lock (_messages)
                {
                    return _messages.ToArray();
                }
            }
        }

        public ILogger CreateLogger(string categoryName) => this;

        public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException();

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (_messages)
            {
                _messages.Add(formatter(state, exception));
            }
        }

        public void Dispose()
        {
        }
    }
}
