using System.Text.Json;
using System.Text.RegularExpressions;
using Sdxl.Net.Randomness;
using Xunit;

namespace Sdxl.Net.Tests.Randomness;

/// <summary>
/// The noise that diffusers' stochastic schedulers drew inside <c>step</c> from
/// <c>torch.Generator("cpu").manual_seed(noise_seed)</c> (TestData/golden/schedulers): a fresh generator per run,
/// one [1,4,8,8] randn per recorded noise array, in order.
/// </summary>
public sealed class SchedulerNoiseTests
{
    private const int LatentLength = 1 * 4 * 8 * 8;

    // Python's json module writes non-finite floats (some DPM-Solver lambdas) as bare NaN / Infinity, which is not
    // JSON; quoting them lets System.Text.Json read the files. No noise value is non-finite.
    private static readonly Regex NonFiniteLiteral = new(
        @"(?<=[\[,:]\s*)(-?Infinity|NaN)(?=\s*[,\]}])", RegexOptions.CultureInvariant | RegexOptions.Compiled);

    public static TheoryData<string> NoisyScheduleFiles() => new(NoisyFileNames());

    [Fact]
    public void The_ancestral_ddpm_and_lcm_goldens_are_among_the_noisy_files()
    {
        var files = NoisyFileNames().ToArray();

        Assert.Contains("euler_ancestral_discrete.json", files);
        Assert.Contains("ddpm.json", files);
        Assert.Contains("lcm.json", files);
    }

    private static IEnumerable<string> NoisyFileNames()
    {
        foreach (var path in Directory.GetFiles(Path.Combine(TestPaths.Golden, "schedulers"), "*.json").Order(StringComparer.Ordinal))
        {
            using var document = ParseGolden(path);
            if (document.RootElement.TryGetProperty("injects_noise", out var injects) && injects.ValueKind == JsonValueKind.True)
            {
                yield return Path.GetFileName(path);
            }
        }
    }

    [Theory]
    [MemberData(nameof(NoisyScheduleFiles))]
    public void Fresh_generator_reproduces_every_recorded_step_noise(string file)
    {
        using var document = ParseGolden(Path.Combine(TestPaths.Golden, "schedulers", file));
        var seed = document.RootElement.GetProperty("noise_seed").GetUInt64();
        var draws = 0;

        foreach (var run in document.RootElement.GetProperty("runs").EnumerateArray())
        {
            var steps = run.GetProperty("num_inference_steps").GetInt32();
            var generator = new TorchCpuGenerator(seed);
            var noise = new float[LatentLength];
            foreach (var step in run.GetProperty("steps").EnumerateArray())
            {
                if (!step.TryGetProperty("noise", out var recorded))
                {
                    continue;
                }

                foreach (var expected in recorded.EnumerateArray())
                {
                    generator.NextNormal(noise);
                    BitExact.Equal(
                        TorchRandnGolden.Floats(expected), noise, $"{file}, {steps} steps, step {step.GetProperty("i").GetInt32()}");
                    draws++;
                }
            }
        }

        Assert.True(draws > 0, $"{file} records no noise although it says it injects noise.");
    }

    private static JsonDocument ParseGolden(string path) =>
        JsonDocument.Parse(NonFiniteLiteral.Replace(File.ReadAllText(path), "\"$1\""));
}
