namespace Sdxl.Net.Lora;

/// <summary>What a LoRA file holds and, given a model folder, which of its modules find a weight there.</summary>
/// <param name="Path">The file.</param>
/// <param name="Format">The format found from the keys: "kohya", "kohya (LoCon)", "diffusers/PEFT", …</param>
/// <param name="ModulesByComponent">Module counts per component (<c>unet</c>, <c>text_encoder</c>, <c>text_encoder_2</c>).</param>
/// <param name="Ranks">The distinct ranks.</param>
/// <param name="Alphas">The distinct alphas (<see langword="null"/> entries: no alpha, i.e. alpha = rank).</param>
/// <param name="ConvolutionModules">How many modules are convolutions (LoCon).</param>
/// <param name="Matched">With a model: "module → initializer" for every matched module.</param>
/// <param name="Unmatched">With a model: modules and keys that match nothing.</param>
/// <param name="Problem">With a model: why the file cannot be applied to it, or <see langword="null"/>.</param>
public sealed record LoraInspection(
    string Path,
    string Format,
    IReadOnlyDictionary<string, int> ModulesByComponent,
    IReadOnlyList<int> Ranks,
    IReadOnlyList<float?> Alphas,
    int ConvolutionModules,
    IReadOnlyList<string> Matched,
    IReadOnlyList<string> Unmatched,
    string? Problem)
{
    /// <summary>Reads <paramref name="loraPath"/> and, with <paramref name="modelDirectory"/>, matches it against that SDXL ONNX folder.</summary>
    /// <exception cref="ArgumentException">The file is missing, malformed or of an unsupported adapter kind.</exception>
    /// <exception cref="SdxlModelException">A model file cannot be read.</exception>
    public static LoraInspection Inspect(string loraPath, string? modelDirectory = null)
    {
        var (file, _) = new LoraFileCache().Get(loraPath);
        var byComponent = new SortedDictionary<string, int>(StringComparer.Ordinal);
        foreach (var m in file.Modules)
        {
            var name = LoraFile.ComponentName(m.Component);
            byComponent[name] = byComponent.GetValueOrDefault(name) + 1;
        }

        var ranks = file.Modules.Select(m => m.Rank).Distinct().Order().ToList();
        var alphas = file.Modules.Select(m => m.Alpha).Distinct().ToList();
        int convolutions = file.Modules.Count(m => m.IsConvolution);
        var matched = new List<string>();
        var unmatched = new List<string>();
        string? problem = null;
        if (modelDirectory is not null)
        {
            var targets = new LoraTargets(modelDirectory);
            var match = targets.Match(file);
            matched.AddRange(match.Matched.Select(p => $"{p.Module.DisplayName} → {p.Target.Weight.Name} ({p.Target.ModulePath}, {p.Target.Layout})"));
            unmatched.AddRange(match.Unmatched.Select(m => m.DisplayName).Concat(file.UnrecognisedKeys));
            try
            {
                targets.Validate(match);
            }
            catch (ArgumentException e)
            {
                problem = e.Message[..(e.Message.IndexOf(" (Parameter", StringComparison.Ordinal) is var i and >= 0 ? i : e.Message.Length)];
            }
        }

        return new LoraInspection(file.Path, file.Format, byComponent, ranks, alphas, convolutions, matched, unmatched, problem);
    }
}
