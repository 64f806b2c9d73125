using Sdxl.Net.Randomness;
using Sdxl.Net.Schedulers;
using Xunit;

namespace Sdxl.Net.Tests.Schedulers;

/// <summary>PNDM with its Runge–Kutta warm-up (skip_prk_steps = false), which has no golden file.</summary>
public sealed class PndmSchedulerTests
{
    private static readonly SchedulerConfig WithPrk = GoldenSchedulerFile.Load("pndm").Config.With("skip_prk_steps", false);

    [Fact]
    public void Runge_Kutta_schedule_follows_diffusers_construction()
    {
        // ts = [1, 101, ..., 901]; prk from ts[-4:] with half steps of 50; plms = ts[:-3] reversed.
        var run = new PndmScheduler(WithPrk).CreateRun(10);
        float[] expected =
        [
            901, 851, 851, 801, 801, 751, 751, 701, 701, 651, 651, 601,
            601, 501, 401, 301, 201, 101, 1,
        ];
        Assert.Equal(expected, run.Timesteps);
        Assert.Null(run.Sigmas);
        Assert.Equal(1f, run.InitNoiseSigma);
    }

    [Fact]
    public void Runge_Kutta_needs_four_steps()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new PndmScheduler(WithPrk).CreateRun(3));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_model_that_knows_the_clean_sample_lands_on_it(bool skipPrk)
    {
        const float Clean = 0.3f;
        // set_alpha_to_one makes the last step land on the clean sample rather than on timestep 0's noise level.
        var config = WithPrk.With("skip_prk_steps", skipPrk).With("set_alpha_to_one", true);
        var alphasCumprod = NoiseSchedule.AlphasCumprod(NoiseSchedule.Betas(config));
        var run = new PndmScheduler(config).CreateRun(20);
        var sample = GoldenAssert.InitialNoise();
        var eps = new float[sample.Length];
        foreach (var t in run.Timesteps)
        {
            // The ideal ε-prediction for x_t = √ᾱ·x₀ + √(1 − ᾱ)·ε.
            float alpha = alphasCumprod[(int)t];
            for (int i = 0; i < sample.Length; i++)
            {
                eps[i] = (sample[i] - (MathF.Sqrt(alpha) * Clean)) / MathF.Sqrt(1 - alpha);
            }

            run.Step(eps, t, sample, new TorchCpuGenerator(0));
        }

        // The ideal ε is the same at every timestep, so every multistep combination reproduces it exactly.
        Assert.All(sample, x => Assert.Equal(Clean, x, 1e-4f));
    }
}
