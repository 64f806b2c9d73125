using Sdxl.Net.Randomness;
using Sdxl.Net.Schedulers;
using Xunit;

namespace Sdxl.Net.Tests.Schedulers;

/// <summary>
/// diffusers' <c>TCDScheduler</c> (src/diffusers/schedulers/scheduling_tcd.py at 58eb52c0). The expected trajectories come
/// from <see cref="ReferenceTcd"/>, a straightforward float64 transcription of that file's <c>set_timesteps(N)</c> and
/// <c>step(..., eta)</c> written for this test (no library code), run with the golden files' fake UNet and a fixed noise
/// sequence; the schedule is also checked against diffusers' own LCM golden, whose distillation schedule TCD shares.
/// </summary>
public sealed class TcdSchedulerTests
{
    public static TheoryData<int, float> Runs => new() { { 4, 0f }, { 4, 0.3f }, { 8, 0.3f }, { 8, 1f }, { 1, 0.3f }, { 20, 0.5f } };

    [Fact]
    public void Schedule_is_the_distillation_schedule_diffusers_uses_for_lcm()
    {
        // LCMScheduler.set_timesteps and TCDScheduler.set_timesteps build the same schedule from original_inference_steps.
        var lcm = GoldenSchedulerFile.Load("lcm");
        foreach (var run in lcm.Runs)
        {
            var tcd = new TcdScheduler(SchedulerConfig.SdxlBase).CreateRun(run.InferenceSteps);
            Assert.Equal(run.Timesteps, tcd.Timesteps.ToArray());
            Assert.Null(tcd.Sigmas);
            Assert.Equal(1f, tcd.InitNoiseSigma);
        }
    }

    [Theory]
    [MemberData(nameof(Runs))]
    public void Trajectory_matches_the_diffusers_formulas(int steps, float eta)
    {
        var expected = ReferenceTcd.Run(steps, eta, out int draws);
        var run = new TcdScheduler(SchedulerConfig.SdxlBase, eta).CreateRun(steps);
        run.SetBeginIndex(0);
        var random = new CountingNoise();
        var sample = GoldenAssert.InitialNoise();
        GoldenAssert.FreeRun(run, run.Timesteps, sample, random);
        GoldenAssert.Close(expected, sample, $"TCD N={steps} eta={eta}", relative: 1e-4f);
        Assert.Equal(draws, random.Draws);
    }

    [Fact]
    public void Eta_zero_is_deterministic_and_eta_outside_zero_to_one_is_refused()
    {
        var run = new TcdScheduler(SchedulerConfig.SdxlBase).CreateRun(4);
        var random = new CountingNoise();
        GoldenAssert.FreeRun(run, run.Timesteps, GoldenAssert.InitialNoise(), random);
        Assert.Equal(0, random.Draws);
        Assert.Throws<ArgumentOutOfRangeException>(() => new TcdScheduler(SchedulerConfig.SdxlBase, 1.5f));
        var e = Assert.Throws<ArgumentException>(() => CustomSchedules.WithEta(new TcdScheduler(SchedulerConfig.SdxlBase), -0.1f));
        Assert.Contains("Eta", e.Message);
    }

    [Fact]
    public void The_catalog_and_the_request_eta_reach_tcd_and_ddim_only()
    {
        var tcd = SchedulerCatalog.Default.Create("tcd", SchedulerConfig.SdxlBase);
        Assert.Equal(0.3f, Assert.IsType<TcdScheduler>(CustomSchedules.WithEta(tcd, 0.3f)).Eta);
        Assert.IsType<TcdScheduler>(SchedulerCatalog.Default.FromConfig(SchedulerConfig.SdxlBase.With("_class_name", "TCDScheduler")));
        var euler = SchedulerCatalog.Default.Create("euler", SchedulerConfig.SdxlBase);
        Assert.Same(euler, CustomSchedules.WithEta(euler, 0.3f));
    }

    /// <summary>Noise z_k[i] = cos(0.7 i + 1.3 k) for the k-th draw, counted.</summary>
    private sealed class CountingNoise : IRandomSource
    {
        public int Draws { get; private set; }

        public void NextNormal(Span<float> destination)
        {
            ReferenceTcd.Noise(Draws++, destination);
        }

        public void NextUniform(Span<float> destination) => throw new InvalidOperationException();
    }

    /// <summary>TCDScheduler in float64: scaled_linear betas 0.00085..0.012, original_inference_steps 50, epsilon prediction.</summary>
    private static class ReferenceTcd
    {
        public static void Noise(int k, Span<float> destination)
        {
            for (int i = 0; i < destination.Length; i++)
            {
                destination[i] = (float)Math.Cos((0.7 * i) + (1.3 * k));
            }
        }

        public static float[] Run(int steps, float eta, out int draws)
        {
            // betas = linspace(√0.00085, √0.012, 1000)²; alphas_cumprod = cumprod(1 − betas).
            var alphas = new double[1000];
            double product = 1, start = Math.Sqrt(0.00085), end = Math.Sqrt(0.012);
            for (int i = 0; i < 1000; i++)
            {
                double b = start + ((end - start) * i / 999.0);
                product *= 1 - (b * b);
                alphas[i] = product;
            }

            // tcd_origin_timesteps = arange(1, 51) · 20 − 1, reversed, taken at floor(linspace(0, 50, N, endpoint=False)).
            var timesteps = new int[steps];
            for (int j = 0; j < steps; j++)
            {
                int index = (int)Math.Floor(j * 50.0 / steps);
                timesteps[j] = ((50 - index) * 20) - 1;
            }

            draws = 0;
            var x = GoldenAssert.InitialNoise().Select(v => (double)v).ToArray();
            var noise = new float[x.Length];
            for (int j = 0; j < steps; j++)
            {
                int t = timesteps[j];
                int prev = j + 1 < steps ? timesteps[j + 1] : 0;
                int s = (int)Math.Floor((1 - (double)eta) * prev);
                double at = alphas[t], aPrev = alphas[prev], aS = alphas[s];
                var xFloat = x.Select(v => (float)v).ToArray();
                var eps = new float[x.Length];
                GoldenAssert.FakeEps(xFloat, t, eps);
                bool noisy = eta > 0 && j != steps - 1;
                if (noisy)
                {
                    Noise(draws++, noise);
                }

                for (int i = 0; i < x.Length; i++)
                {
                    double x0 = (x[i] - (Math.Sqrt(1 - at) * eps[i])) / Math.Sqrt(at);
                    double xs = (Math.Sqrt(aS) * x0) + (Math.Sqrt(1 - aS) * eps[i]);
                    x[i] = noisy ? (Math.Sqrt(aPrev / aS) * xs) + (Math.Sqrt(1 - (aPrev / aS)) * noise[i]) : xs;
                }
            }

            return x.Select(v => (float)v).ToArray();
        }
    }
}
