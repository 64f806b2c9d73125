using Sdxl.Net.Randomness;
using Sdxl.Net.Schedulers;
using Xunit;

namespace Sdxl.Net.Tests.Schedulers;

/// <summary>
/// The ancestral KDPM2 sampler has no golden file: its schedule is checked against KDPM2's (which has one), its noise
/// draws against diffusers' step structure, and its output against a model that knows the clean sample.
/// </summary>
public sealed class KDpm2AncestralDiscreteSchedulerTests
{
    private static readonly SchedulerConfig Config = GoldenSchedulerFile.Load("k_dpm_2_discrete").Config;

    [Theory]
    [InlineData(4)]
    [InlineData(20)]
    public void Schedule_shares_the_whole_timesteps_and_sigmas_of_KDPM2(int steps)
    {
        var ancestral = new KDpm2AncestralDiscreteScheduler(Config).CreateRun(steps);
        var kdpm2 = new KDpm2DiscreteScheduler(Config).CreateRun(steps);

        Assert.Equal(2, ancestral.Order);
        Assert.Equal((2 * steps) - 1, ancestral.Timesteps.Count);
        Assert.Equal(kdpm2.Sigmas, ancestral.Sigmas);
        Assert.Equal(kdpm2.InitNoiseSigma, ancestral.InitNoiseSigma);
        for (int i = 0; i < steps; i++)
        {
            Assert.Equal(kdpm2.Timesteps[2 * i], ancestral.Timesteps[2 * i]);
        }

        // Each midpoint timestep belongs to the noise level √(σ·σ_down), below its own step's σ (σ_down may fall below the next σ).
        for (int i = 1; i < ancestral.Timesteps.Count; i += 2)
        {
            Assert.InRange(ancestral.Timesteps[i], 0f, ancestral.Timesteps[i - 1] - 1f);
        }
    }

    [Theory]
    [InlineData(4)]
    [InlineData(20)]
    public void Noise_is_drawn_once_per_two_evaluation_step_and_not_on_the_final_step(int steps)
    {
        var run = new KDpm2AncestralDiscreteScheduler(Config).CreateRun(steps);
        run.SetBeginIndex(0);
        var random = new CountingRandomSource(new TorchCpuGenerator(1234));
        var sample = GoldenAssert.InitialNoise();
        var eps = new float[sample.Length];
        var scaled = new float[sample.Length];
        var drawsAfterEachCall = new List<int>();
        foreach (var t in run.Timesteps)
        {
            run.ScaleModelInput(sample, t, scaled);
            GoldenAssert.FakeEps(scaled, t, eps);
            run.Step(eps, t, sample, random);
            drawsAfterEachCall.Add(random.Draws);
        }

        // diffusers draws in the second (corrector) evaluation: after calls 2, 4, ..., 2N − 2.
        for (int call = 1; call <= drawsAfterEachCall.Count; call++)
        {
            Assert.Equal(call / 2, drawsAfterEachCall[call - 1]);
        }

        Assert.Equal(steps - 1, random.Draws);
    }

    [Fact]
    public void The_same_noise_gives_the_same_trajectory_and_different_noise_a_different_one()
    {
        var scheduler = new KDpm2AncestralDiscreteScheduler(Config);
        float[] Generate(ulong seed)
        {
            var run = scheduler.CreateRun(10);
            run.SetBeginIndex(0);
            var sample = GoldenAssert.InitialNoise();
            GoldenAssert.FreeRun(run, run.Timesteps, sample, new TorchCpuGenerator(seed));
            return sample;
        }

        var first = Generate(7);
        Assert.Equal(first, Generate(7));
        Assert.NotEqual(first, Generate(8));
        Assert.All(first, x => Assert.True(float.IsFinite(x)));
    }

    [Theory]
    [InlineData(4)]
    [InlineData(25)]
    public void A_model_that_knows_the_clean_sample_lands_on_it(int steps)
    {
        const float Clean = 0.3f;
        var alphasCumprod = NoiseSchedule.AlphasCumprod(NoiseSchedule.Betas(Config, 0.00085, 0.012));
        var trainSigmas = NoiseSchedule.TrainSigmas(alphasCumprod);
        var run = new KDpm2AncestralDiscreteScheduler(Config).CreateRun(steps);
        run.SetBeginIndex(0);
        var random = new TorchCpuGenerator(42);
        var sample = GoldenAssert.InitialNoise();
        for (int i = 0; i < sample.Length; i++)
        {
            sample[i] = Clean + (sample[i] * run.InitNoiseSigma);
        }

        var eps = new float[sample.Length];
        foreach (var t in run.Timesteps)
        {
            // The ideal ε-prediction at the noise level of t: (x − x₀) / σ(t).
            float sigma = (float)NoiseSchedule.Interp(t, trainSigmas);
            for (int i = 0; i < sample.Length; i++)
            {
                eps[i] = (sample[i] - Clean) / sigma;
            }

            run.Step(eps, t, sample, random);
        }

        Assert.All(sample, x => Assert.Equal(Clean, x, 1e-4f));
    }

    private sealed class CountingRandomSource(IRandomSource inner) : IRandomSource
    {
        public int Draws { get; private set; }

        public void NextNormal(Span<float> destination)
        {
            Draws++;
            inner.NextNormal(destination);
        }

        public void NextUniform(Span<float> destination) => throw new InvalidOperationException("Schedulers draw normal noise only.");
    }
}
