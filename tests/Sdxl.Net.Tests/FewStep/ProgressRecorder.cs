namespace Sdxl.Net.Tests.FewStep;

/// <summary>Collects progress reports synchronously, on the reporting thread (Progress&lt;T&gt; would post them later).</summary>
internal sealed class ProgressRecorder : IProgress<GenerationProgress>
{
    private readonly List<GenerationProgress> _reports = [];

    public IReadOnlyList<GenerationProgress> Reports
    {
        get
        {
            lock (_reports)
            {
                return _reports.ToArray();
            }
        }
    }

    public IReadOnlyList<GenerationProgress> Steps => Reports.Where(r => r.Phase == GenerationPhase.Denoising && r.Step > 0).ToArray();

    public void Report(GenerationProgress value)
    {
        lock (_reports)
        {
            _reports.Add(value);
        }
    }
}
