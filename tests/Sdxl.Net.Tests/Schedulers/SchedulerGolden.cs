using System.Text.Json;
using System.Text.Json.Nodes;
using Sdxl.Net.Randomness;
using Sdxl.Net.Schedulers;
using Xunit;

namespace Sdxl.Net.Tests.Schedulers;

/// <summary>One recorded step of a diffusers scheduler run.</summary>
internal sealed record GoldenStep(int Index, float Timestep, float[] ScaledInput, float[] ModelOutput, float[] PrevSample, float[][] Noise);

/// <summary>One recorded diffusers run (set_timesteps(N) and the full loop).</summary>
internal sealed record GoldenRun(
    int InferenceSteps,
    float[] Timesteps,
    float[]? Sigmas,
    float InitNoiseSigma,
    int Order,
    float[] InitialSample,
    GoldenStep[] Steps,
    float[] FinalSample);

/// <summary>A golden file of TestData/golden/schedulers.</summary>
/// <param name="SchedulerClass">The diffusers class the file was recorded with.</param>
/// <param name="Config">The effective diffusers config, with <c>_class_name</c> set.</param>
/// <param name="BaseWithOverrides">The config as diffusers built it: <c>Cls.from_config(sdxl_base_config, **overrides)</c>.</param>
/// <param name="EffectiveConfigJson">The effective config as written (Python's json, with bare <c>-Infinity</c>).</param>
/// <param name="Runs">The recorded runs.</param>
internal sealed record GoldenSchedulerFile(
    string SchedulerClass, SchedulerConfig Config, SchedulerConfig BaseWithOverrides, string EffectiveConfigJson, GoldenRun[] Runs)
{
    public static string PathOf(string name) => Path.Combine(TestPaths.Golden, "schedulers", name + ".json");

    public static GoldenSchedulerFile Load(string name)
    {
        // Python's json writes lambda_min_clipped as -Infinity, which JsonDocument rejects.
        string text = File.ReadAllText(PathOf(name));
        using var doc = JsonDocument.Parse(text.Replace("-Infinity", "\"-Infinity\"", StringComparison.Ordinal));
        var root = doc.RootElement;
        string schedulerClass = root.GetProperty("scheduler_class").GetString()!;
        string effective = root.GetProperty("config").GetRawText().Replace("\"-Infinity\"", "-Infinity", StringComparison.Ordinal);
        var config = SchedulerConfig.Parse(effective).With("_class_name", schedulerClass);
        var baseWithOverrides = SchedulerConfig.SdxlBase;
        foreach (var option in root.GetProperty("overrides").EnumerateObject())
        {
            baseWithOverrides = baseWithOverrides.With(option.Name, JsonNode.Parse(option.Value.GetRawText()));
        }

        var runs = root.GetProperty("runs").EnumerateArray().Select(ParseRun).ToArray();
        return new GoldenSchedulerFile(schedulerClass, config, baseWithOverrides, effective, runs);
    }

    public static GoldenRun ParseRun(JsonElement run) => new(
        run.GetProperty("num_inference_steps").GetInt32(),
        Floats(run.GetProperty("timesteps")),
        run.TryGetProperty("sigmas", out var s) && s.ValueKind == JsonValueKind.Array ? Floats(s) : null,
        run.GetProperty("init_noise_sigma").GetSingle(),
        run.GetProperty("order").GetInt32(),
        Floats(run.GetProperty("initial_sample")),
        ParseSteps(run.GetProperty("steps")),
        Floats(run.GetProperty("final_sample")));

    public static GoldenStep[] ParseSteps(JsonElement steps) => steps.EnumerateArray().Select(step => new GoldenStep(
        step.GetProperty("i").GetInt32(),
        step.GetProperty("t").GetSingle(),
        Floats(step.GetProperty("scaled_input")),
        Floats(step.GetProperty("model_output")),
        Floats(step.GetProperty("prev_sample")),
        step.TryGetProperty("noise", out var n) && n.ValueKind == JsonValueKind.Array
            ? n.EnumerateArray().Select(Floats).ToArray()
            : [])).ToArray();

    public static float[] Floats(JsonElement array)
    {
        var result = new float[array.GetArrayLength()];
        int i = 0;
        foreach (var e in array.EnumerateArray())
        {
            result[i++] = e.GetSingle();
        }

        return result;
    }
}

/// <summary>Replays recorded torch.randn draws, one array per call, and fails on any draw beyond the recording.</summary>
internal sealed class ReplayRandomSource(IEnumerable<float[]> draws) : IRandomSource
{
    private readonly Queue<float[]> _draws = new(draws);

    public int Remaining => _draws.Count;

    public void NextNormal(Span<float> destination)
    {
        Assert.True(_draws.Count > 0, "The scheduler drew more noise than diffusers did.");
        var next = _draws.Dequeue();
        Assert.Equal(next.Length, destination.Length);
        next.CopyTo(destination);
    }

    public void NextUniform(Span<float> destination) => throw new InvalidOperationException("Schedulers draw normal noise only.");
}

/// <summary>Runs a scheduler against a golden run and compares with diffusers.</summary>
internal static class GoldenAssert
{
    public const float RelativeTolerance = 1e-5f;

    /// <summary>x_init[i] = (float)sin(0.37 i).</summary>
    public static float[] InitialNoise(int length = 256)
    {
        var x = new float[length];
        for (int i = 0; i < length; i++)
        {
            x[i] = (float)Math.Sin(0.37 * i);
        }

        return x;
    }

    /// <summary>The fake UNet of the goldens.</summary>
    public static void FakeEps(ReadOnlySpan<float> scaled, float t, Span<float> eps)
    {
        for (int i = 0; i < scaled.Length; i++)
        {
            eps[i] = (float)((0.5 * Math.Tanh(scaled[i])) + (0.01 * (double)t / 1000.0));
        }
    }

    public static void Close(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what, float relative = RelativeTolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        float scale = 0;
        foreach (var e in expected)
        {
            scale = MathF.Max(scale, MathF.Abs(e));
        }

        for (int i = 0; i < expected.Length; i++)
        {
            float tolerance = (relative * MathF.Abs(expected[i])) + (relative * 0.1f * scale) + 1e-7f;
            if (!(MathF.Abs(expected[i] - actual[i]) <= tolerance))
            {
                Assert.Fail($"{what}: element {i} is {actual[i]:R}, expected {expected[i]:R}.");
            }
        }
    }

    /// <summary>Timesteps, sigmas, init_noise_sigma and order must match exactly (float32).</summary>
    /// <param name="timestepUlps">Float32 ulps allowed on fractional timesteps derived from sigmas (Karras); 0 elsewhere.</param>
    public static ISchedulerRun Schedule(IScheduler scheduler, GoldenRun golden, int timestepUlps = 0)
    {
        var run = scheduler.CreateRun(golden.InferenceSteps);
        if (timestepUlps == 0)
        {
            Assert.Equal(golden.Timesteps, run.Timesteps.ToArray());
        }
        else
        {
            Assert.Equal(golden.Timesteps.Length, run.Timesteps.Count);
            for (int i = 0; i < golden.Timesteps.Length; i++)
            {
                float expected = golden.Timesteps[i];
                float allowed = timestepUlps * (MathF.BitIncrement(MathF.Abs(expected)) - MathF.Abs(expected));
                Assert.True(MathF.Abs(run.Timesteps[i] - expected) <= allowed, $"timestep {i}: {run.Timesteps[i]:R}, expected {expected:R}");
            }
        }

        if (golden.Sigmas is null)
        {
            Assert.Null(run.Sigmas);
        }
        else
        {
            Assert.Equal(golden.Sigmas, run.Sigmas!.ToArray());
        }

        Assert.Equal(golden.InitNoiseSigma, run.InitNoiseSigma);
        Assert.Equal(golden.Order, run.Order);
        Assert.Equal(golden.Order, scheduler.Order);
        return run;
    }

    /// <summary>Feeds the recorded model output and previous sample at every step; each prev_sample must match.</summary>
    public static void StepByStep(IScheduler scheduler, GoldenRun golden, float relative = RelativeTolerance)
    {
        var run = scheduler.CreateRun(golden.InferenceSteps);
        run.SetBeginIndex(0);
        var random = new ReplayRandomSource(golden.Steps.SelectMany(s => s.Noise));
        var sample = golden.InitialSample.ToArray();
        var scaled = new float[sample.Length];
        foreach (var step in golden.Steps)
        {
            run.ScaleModelInput(sample, step.Timestep, scaled);
            Close(step.ScaledInput, scaled, $"N={golden.InferenceSteps} step {step.Index} scaled input", relative);
            run.Step(step.ModelOutput, step.Timestep, sample, random);
            Close(step.PrevSample, sample, $"N={golden.InferenceSteps} step {step.Index} prev_sample", relative);
            step.PrevSample.CopyTo(sample, 0);
        }

        Assert.Equal(0, random.Remaining);
    }

    /// <summary>Runs the whole loop with the fake UNet, as the goldens were produced.</summary>
    public static void FreeRunning(IScheduler scheduler, GoldenRun golden, float relative = RelativeTolerance)
    {
        var run = scheduler.CreateRun(golden.InferenceSteps);
        run.SetBeginIndex(0);
        var random = new ReplayRandomSource(golden.Steps.SelectMany(s => s.Noise));
        var sample = InitialNoise();
        for (int i = 0; i < sample.Length; i++)
        {
            sample[i] *= run.InitNoiseSigma;
        }

        Close(golden.InitialSample, sample, "initial sample", relative);
        FreeRun(run, run.Timesteps, sample, random);
        Close(golden.FinalSample, sample, $"N={golden.InferenceSteps} final sample", relative);
        Assert.Equal(0, random.Remaining);
    }

    public static void FreeRun(ISchedulerRun run, IEnumerable<float> timesteps, float[] sample, IRandomSource random)
    {
        var scaled = new float[sample.Length];
        var eps = new float[sample.Length];
        foreach (var t in timesteps)
        {
            run.ScaleModelInput(sample, t, scaled);
            FakeEps(scaled, t, eps);
            run.Step(eps, t, sample, random);
        }
    }
}
