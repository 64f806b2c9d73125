using Sdxl.Net.Schedulers;
using Xunit;

namespace Sdxl.Net.Tests.Schedulers;

/// <summary>
/// The three golden checks of a scheduler file, run for 4 and 20 steps: the exact schedule, single steps fed with
/// the recorded model output and sample, and the whole trajectory driven by the fake model.
/// </summary>
/// <typeparam name="TSelf">The derived test class, which lists its golden files.</typeparam>
public abstract class SchedulerGoldenTheory<TSelf>
    where TSelf : SchedulerGoldenTheory<TSelf>, IGoldenFileSet
{
    [Theory]
    [MemberData(nameof(Cases))]
    public void Schedule_matches_diffusers(string file, int steps)
    {
        var (scheduler, golden) = Load(file, steps);
        GoldenAssert.Schedule(scheduler, golden, TimestepUlps(file));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Each_step_matches_diffusers_given_the_recorded_inputs(string file, int steps)
    {
        var (scheduler, golden) = Load(file, steps);
        GoldenAssert.StepByStep(scheduler, golden);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Trajectory_with_the_fake_model_matches_diffusers(string file, int steps)
    {
        var (scheduler, golden) = Load(file, steps);
        GoldenAssert.FreeRunning(scheduler, golden);
    }

    /// <summary>Every file of <typeparamref name="TSelf"/> with the 4- and 20-step runs the goldens record.</summary>
    public static TheoryData<string, int> Cases()
    {
        var data = new TheoryData<string, int>();
        foreach (var file in TSelf.Files)
        {
            data.Add(file, 4);
            data.Add(file, 20);
        }

        return data;
    }

    /// <summary>The scheduler a golden file describes.</summary>
    private protected abstract IScheduler Create(string file, GoldenSchedulerFile golden);

    /// <summary>Float32 ulps allowed on the timesteps of <paramref name="file"/>; 0 for an exact match.</summary>
    private protected virtual int TimestepUlps(string file) => 0;

    private protected (IScheduler Scheduler, GoldenRun Golden) Load(string file, int steps)
    {
        var golden = GoldenSchedulerFile.Load(file);
        return (Create(file, golden), golden.Runs.Single(r => r.InferenceSteps == steps));
    }
}

/// <summary>The golden files a <see cref="SchedulerGoldenTheory{TSelf}"/> runs.</summary>
public interface IGoldenFileSet
{
    /// <summary>The file names under TestData/golden/schedulers, without extension.</summary>
    static abstract IEnumerable<string> Files { get; }
}
