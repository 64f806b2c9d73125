using System.Text.Json;
using Sdxl.Net.Randomness;
using Sdxl.Net.Schedulers;
using Xunit;

namespace Sdxl.Net.Tests.Schedulers;

/// <summary>
/// The DPM-Solver and UniPC schedulers against the diffusers golden files: schedules, single steps fed with the
/// recorded model output and sample, and whole trajectories driven by the fake model of the golden README.
/// </summary>
public sealed class DpmSolverGoldenTests
{
    public static TheoryData<string, int> Cases()
    {
        var data = new TheoryData<string, int>();
        foreach (var file in new[] { "dpmsolver_multistep", "dpmsolver_multistep_karras", "dpmsolver_multistep_sde_karras", "dpmsolver_singlestep", "unipc_multistep" })
        {
            foreach (var steps in new[] { 4, 20 })
            {
                data.Add(file, steps);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Schedule_matches_diffusers(string file, int steps)
    {
        var golden = SolverGolden.Load(file);
        var expected = golden.Run(steps);
        var run = golden.CreateScheduler().CreateRun(steps);

        Assert.Equal(expected.Timesteps, run.Timesteps);
        Assert.Equal(expected.Sigmas, run.Sigmas);
        Assert.Equal(expected.InitNoiseSigma, run.InitNoiseSigma);
        Assert.Equal(expected.Order, run.Order);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Each_step_matches_diffusers_given_the_recorded_inputs(string file, int steps)
    {
        var golden = SolverGolden.Load(file);
        var expected = golden.Run(steps);
        var run = golden.CreateScheduler().CreateRun(steps);
        run.SetBeginIndex(0);

        var sample = new float[SolverGolden.SampleLength];
        var scaled = new float[SolverGolden.SampleLength];
        for (int k = 0; k < expected.Steps.Count; k++)
        {
            var step = expected.Steps[k];
            (k == 0 ? expected.InitialSample : expected.Steps[k - 1].PrevSample).CopyTo(sample, 0);

            run.ScaleModelInput(sample, step.Timestep, scaled);
            Assert.Equal(step.ScaledInput, scaled);

            run.Step(step.ModelOutput, step.Timestep, sample, new SolverReplayedNoise(step.Noise));
            SolverGolden.AssertClose(step.PrevSample, sample, $"{file} N={steps} step {k} (t={step.Timestep})");
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Trajectory_with_the_fake_model_matches_diffusers(string file, int steps)
    {
        var golden = SolverGolden.Load(file);
        var expected = golden.Run(steps);
        var run = golden.CreateScheduler().CreateRun(steps);
        run.SetBeginIndex(0);
        var random = new SolverReplayedNoise(expected.Steps.SelectMany(s => s.Noise).ToList());

        // prepare_latents: x_init * init_noise_sigma in float32.
        var sample = new float[SolverGolden.SampleLength];
        for (int i = 0; i < sample.Length; i++)
        {
            sample[i] = (float)Math.Sin(0.37 * i) * run.InitNoiseSigma;
        }

        Assert.Equal(expected.InitialSample, sample);

        var scaled = new float[sample.Length];
        var eps = new float[sample.Length];
        foreach (float t in run.Timesteps)
        {
            run.ScaleModelInput(sample, t, scaled);
            for (int i = 0; i < eps.Length; i++)
            {
                eps[i] = (float)((0.5 * Math.Tanh(scaled[i])) + (0.01 * t / 1000.0));
            }

            run.Step(eps, t, sample, random);
        }

        Assert.Equal(0, random.Remaining);
        SolverGolden.AssertClose(expected.FinalSample, sample, $"{file} N={steps} final sample");
    }
}

/// <summary>A random source that replays the normal draws recorded in a golden file, one array per call.</summary>
internal sealed class SolverReplayedNoise(IReadOnlyList<float[]> draws) : IRandomSource
{
    private int _next;

    public int Remaining => draws.Count - _next;

    public void NextNormal(Span<float> destination)
    {
        if (_next >= draws.Count)
        {
            throw new InvalidOperationException($"The scheduler drew noise {_next + 1} times; the recording holds {draws.Count} draws.");
        }

        var draw = draws[_next++];
        Assert.Equal(draw.Length, destination.Length);
        draw.CopyTo(destination);
    }

    public void NextUniform(Span<float> destination) =>
        throw new InvalidOperationException("The DPM-Solver and UniPC schedulers must not draw uniform numbers.");
}

/// <summary>One scheduler golden file (see shared/golden/schedulers/README.md).</summary>
internal sealed class SolverGolden
{
    public const int SampleLength = 256;

    private readonly JsonElement _root;

    private SolverGolden(JsonElement root) => _root = root;

    public static SolverGolden Load(string name)
    {
        var text = File.ReadAllText(Path.Combine(TestPaths.Golden, "schedulers", name + ".json"));

        // Python's json writes -Infinity (lambda_min_clipped), which is not JSON.
        using var document = JsonDocument.Parse(text.Replace("-Infinity", "\"-Infinity\"", StringComparison.Ordinal));
        return new SolverGolden(document.RootElement.Clone());
    }

    /// <summary>The scheduler as diffusers built it: <c>Cls.from_config(sdxl_base_config, **overrides)</c>.</summary>
    public IScheduler CreateScheduler()
    {
        var config = SchedulerConfig.SdxlBase;
        foreach (var property in _root.GetProperty("overrides").EnumerateObject())
        {
            config = config.With(property.Name, property.Value.ValueKind switch
            {
                JsonValueKind.String => property.Value.GetString(),
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                JsonValueKind.Number => property.Value.GetDouble(),
                _ => throw new NotSupportedException(property.Value.ToString()),
            });
        }

        return _root.GetProperty("scheduler_class").GetString() switch
        {
            "DPMSolverMultistepScheduler" => new DpmSolverMultistepScheduler(config),
            "DPMSolverSinglestepScheduler" => new DpmSolverSinglestepScheduler(config),
            "UniPCMultistepScheduler" => new UniPcMultistepScheduler(config),
            var other => throw new NotSupportedException(other),
        };
    }

    public SolverGoldenRun Run(int steps)
    {
        foreach (var run in _root.GetProperty("runs").EnumerateArray())
        {
            if (run.GetProperty("num_inference_steps").GetInt32() == steps)
            {
                return new SolverGoldenRun(run);
            }
        }

        throw new ArgumentOutOfRangeException(nameof(steps), steps, "The golden file has no run with this step count.");
    }

    /// <summary>Asserts element-wise agreement to a relative 1e-5 (absolute 1e-6 near zero), reporting the worst element.</summary>
    public static void AssertClose(IReadOnlyList<float> expected, IReadOnlyList<float> actual, string what, double relative = 1e-5)
    {
        Assert.Equal(expected.Count, actual.Count);
        int worst = -1;
        double worstExcess = 0;
        for (int i = 0; i < expected.Count; i++)
        {
            double error = Math.Abs((double)actual[i] - expected[i]);
            double allowed = (relative * Math.Abs(expected[i])) + 1e-6;
            if (!(error <= allowed) && (worst < 0 || error - allowed > worstExcess))
            {
                worst = i;
                worstExcess = error - allowed;
            }
        }

        Assert.True(worst < 0, worst < 0 ? string.Empty : $"{what}: element {worst} is {actual[worst]:R}, expected {expected[worst]:R}.");
    }

    internal static float[] Floats(JsonElement array)
    {
        var result = new float[array.GetArrayLength()];
        int i = 0;
        foreach (var value in array.EnumerateArray())
        {
            result[i++] = value.GetSingle();
        }

        return result;
    }
}

/// <summary>One <c>runs[k]</c> entry of a golden file.</summary>
internal sealed class SolverGoldenRun
{
    public SolverGoldenRun(JsonElement run)
    {
        Timesteps = SolverGolden.Floats(run.GetProperty("timesteps"));
        Sigmas = SolverGolden.Floats(run.GetProperty("sigmas"));
        InitNoiseSigma = run.GetProperty("init_noise_sigma").GetSingle();
        Order = run.GetProperty("order").GetInt32();
        InitialSample = SolverGolden.Floats(run.GetProperty("initial_sample"));
        FinalSample = SolverGolden.Floats(run.GetProperty("final_sample"));
        Steps = run.GetProperty("steps").EnumerateArray().Select(s => new SolverGoldenStep(s)).ToList();
    }

    public float[] Timesteps { get; }

    public float[] Sigmas { get; }

    public float InitNoiseSigma { get; }

    public int Order { get; }

    public float[] InitialSample { get; }

    public float[] FinalSample { get; }

    public IReadOnlyList<SolverGoldenStep> Steps { get; }
}

/// <summary>One recorded <c>step</c> call.</summary>
internal sealed class SolverGoldenStep
{
    public SolverGoldenStep(JsonElement step)
    {
        Timestep = step.GetProperty("t").GetSingle();
        ScaledInput = SolverGolden.Floats(step.GetProperty("scaled_input"));
        ModelOutput = SolverGolden.Floats(step.GetProperty("model_output"));
        PrevSample = SolverGolden.Floats(step.GetProperty("prev_sample"));
        Noise = step.TryGetProperty("noise", out var noise)
            ? noise.EnumerateArray().Select(SolverGolden.Floats).ToList()
            : [];
    }

    public float Timestep { get; }

    public float[] ScaledInput { get; }

    public float[] ModelOutput { get; }

    public float[] PrevSample { get; }

    public IReadOnlyList<float[]> Noise { get; }
}
