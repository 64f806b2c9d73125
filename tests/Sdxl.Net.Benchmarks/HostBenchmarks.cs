using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Sdxl.Net.Denoising;
using Sdxl.Net.Randomness;
using Sdxl.Net.Runtime;
using Sdxl.Net.Schedulers;
using SixLabors.ImageSharp;

namespace Sdxl.Net.Benchmarks;

/// <summary>Latents of one 1024 × 1024 SDXL image: 4 × 128 × 128, and the CFG batch of two.</summary>
internal static class SdxlSizes
{
    public const int Latents = 4 * 128 * 128;

    public static float[] Random(int length, int seed)
    {
        var random = new Random(seed);
        var values = new float[length];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = (float)((random.NextDouble() * 2) - 1);
        }

        return values;
    }
}

/// <summary>Classifier-free guidance over the 2 × 4 × 128 × 128 UNet output, with and without guidance rescale.</summary>
[MemoryDiagnoser]
public class GuidanceBenchmarks
{
    private readonly float[] _prediction = SdxlSizes.Random(2 * SdxlSizes.Latents, 1);
    private readonly float[] _guided = new float[SdxlSizes.Latents];

    [Benchmark(Baseline = true)]
    public void Combine() =>
        Guidance.Combine(_prediction.AsSpan(0, SdxlSizes.Latents), _prediction.AsSpan(SdxlSizes.Latents), 5f, _guided);

    [Benchmark]
    public void CombineAndRescale()
    {
        var text = _prediction.AsSpan(SdxlSizes.Latents);
        Guidance.Combine(_prediction.AsSpan(0, SdxlSizes.Latents), text, 5f, _guided);
        Guidance.Rescale(_guided, text, 1, 0.7f);
    }
}

/// <summary>A full 20-step schedule of scheduler steps on 1 × 4 × 128 × 128 latents (divide by 20 for one step).</summary>
[MemoryDiagnoser]
public class SchedulerStepBenchmarks
{
    private readonly float[] _modelOutput = SdxlSizes.Random(SdxlSizes.Latents, 2);
    private readonly float[] _start = SdxlSizes.Random(SdxlSizes.Latents, 3);
    private readonly float[] _latents = new float[SdxlSizes.Latents];
    private readonly IRandomSource _random = new TorchCpuGenerator(1);

    [Params("euler", "dpmpp-2m")]
    public string Scheduler { get; set; } = "euler";

    [Benchmark]
    public void TwentySteps()
    {
        var run = SchedulerCatalog.Default.Create(Scheduler, SchedulerConfig.SdxlBase).CreateRun(20);
        run.SetBeginIndex(0);
        _start.CopyTo(_latents);
        foreach (var t in run.Timesteps)
        {
            run.ScaleModelInput(_latents, t, _latents);
            run.Step(_modelOutput, t, _latents, _random);
        }
    }
}

/// <summary>Decoder output [3, 1024, 1024] in [-1, 1] to an 8-bit image, and that image to PNG.</summary>
[MemoryDiagnoser]
public class ImageOutputBenchmarks
{
    private const int Side = 1024;
    private readonly float[] _decoded = SdxlSizes.Random(3 * Side * Side, 4);
    private readonly float[] _pixels = new float[3 * Side * Side];
    private GeneratedImage _image = null!;

    [GlobalSetup]
    public void Setup()
    {
        ToUnitRange();
        _image = new GeneratedImage(0, Side, Side, _pixels, 1);
    }

    /// <summary>(x · 0.5 + 0.5).clamp(0, 1), as the pipeline does after the VAE.</summary>
    [Benchmark]
    public void ToUnitRange()
    {
        TensorPrimitives.Multiply(_decoded, 0.5f, _pixels);
        TensorPrimitives.Add(_pixels, 0.5f, _pixels);
        TensorPrimitives.Clamp(_pixels, 0f, 1f, _pixels);
    }

    [Benchmark]
    public void ToRgb24()
    {
        using var image = _image.ToImage();
    }

    [Benchmark]
    public long EncodePng()
    {
        using var image = _image.ToImage();
        using var stream = new MemoryStream();
        image.SaveAsPng(stream);
        return stream.Length;
    }
}

/// <summary>float32 → float16 at the ONNX boundary: the UNet sample (2 × 4 × 128 × 128) and encoder_hidden_states (2 × 77 × 2048).</summary>
[MemoryDiagnoser]
public class Float16ConversionBenchmarks
{
    private float[] _source = [];
    private Half[] _destination = [];

    [Params(2 * SdxlSizes.Latents, 2 * 77 * 2048)]
    public int Length { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _source = SdxlSizes.Random(Length, 5);
        _destination = new Half[Length];
    }

    [Benchmark(Baseline = true)]
    public void ScalarLoop()
    {
        var s = _source;
        var d = _destination;
        for (int i = 0; i < s.Length; i++)
        {
            d[i] = (Half)s[i];
        }
    }

    [Benchmark]
    public void TensorPrimitivesConvertToHalf() => TensorPrimitives.ConvertToHalf(_source, _destination);

    /// <summary>What the per-call path did every step: allocate an OrtValue and convert into it.</summary>
    [Benchmark]
    public void NewOrtValueAndConvert()
    {
        using var value = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, TensorElementType.Float16, [Length]);
        TensorPrimitives.ConvertToHalf(_source, MemoryMarshal.Cast<Float16, Half>(value.GetTensorMutableDataAsSpan<Float16>()));
    }
}
