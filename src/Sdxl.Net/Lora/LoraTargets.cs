using Sdxl.Net.Runtime;

namespace Sdxl.Net.Lora;

/// <summary>One LoRA file matched against a model: the modules that found their weight and those that did not.</summary>
/// <param name="File">The file.</param>
/// <param name="Matched">Modules and the initializers they adapt.</param>
/// <param name="Unmatched">Modules that match nothing in the model.</param>
internal sealed record LoraMatch(LoraFile File, IReadOnlyList<(LoraModule Module, LoraTarget Target)> Matched, IReadOnlyList<LoraModule> Unmatched)
{
    /// <summary>Unmatched modules plus tensor keys that belong to no module.</summary>
    public int UnmatchedCount => Unmatched.Count + File.UnrecognisedKeys.Count;
}

/// <summary>
/// The adaptable modules of a model folder's UNet and text encoders (read from the ONNX graphs once, lazily) and the
/// matching of LoRA module names onto them.
/// </summary>
internal sealed class LoraTargets
{
    private readonly object _gate = new();
    private readonly Dictionary<LoraComponent, OnnxModuleIndex?> _indexes = [];
    private SgmUnetNames? _sgm;
    private bool _sgmResolved;

    public LoraTargets(string modelDirectory) => ModelDirectory = modelDirectory;

    public string ModelDirectory { get; }

    /// <summary>The ONNX file of a component.</summary>
    public string ModelFile(LoraComponent component) => Path.Combine(ModelDirectory, LoraFile.ComponentName(component), "model.onnx");

    /// <summary>The component's module index; <see langword="null"/> when the folder has no such model (a refiner has no text_encoder).</summary>
    public OnnxModuleIndex? Index(LoraComponent component)
    {
        lock (_gate)
        {
            if (!_indexes.TryGetValue(component, out var index))
            {
                var file = ModelFile(component);
                index = File.Exists(file) ? new OnnxModuleIndex(OnnxGraphReader.Read(file)) : null;
                _indexes[component] = index;
            }

            return index;
        }
    }

    /// <summary>Matches every module of <paramref name="file"/>.</summary>
    public LoraMatch Match(LoraFile file)
    {
        var matched = new List<(LoraModule, LoraTarget)>();
        var unmatched = new List<LoraModule>();
        foreach (var module in file.Modules)
        {
            if (Find(module) is { } target)
            {
                matched.Add((module, target));
            }
            else
            {
                unmatched.Add(module);
            }
        }

        return new LoraMatch(file, matched, unmatched);
    }

    /// <summary>The initializer a module adapts, or <see langword="null"/>.</summary>
    public LoraTarget? Find(LoraModule module)
    {
        var index = Index(module.Component);
        if (index is null)
        {
            return null;
        }

        if (module.Dotted)
        {
            return index.FindByPath(module.Name) ?? index.FindByUnderscoreName(module.Name.Replace('.', '_'));
        }

        var name = module.Name;
        if (module.Component == LoraComponent.Unet && SgmUnetNames.IsSgmName(name))
        {
            if (Sgm()?.ToDiffusers(name) is not { } diffusers)
            {
                return null;
            }

            name = diffusers;
        }

        return index.FindByUnderscoreName(name);
    }

    /// <summary>
    /// Checks that <paramref name="match"/> can be applied: something matched, the UNet part (if any) matched the UNet,
    /// and every matched module's ΔW has its initializer's shape.
    /// </summary>
    /// <exception cref="ArgumentException">The file does not fit this model; the message says how.</exception>
    public void Validate(LoraMatch match)
    {
        var path = match.File.Path;
        int unetModules = 0, unetMatched = 0;
        foreach (var m in match.File.Modules)
        {
            unetModules += m.Component == LoraComponent.Unet ? 1 : 0;
        }

        foreach (var (m, _) in match.Matched)
        {
            unetMatched += m.Component == LoraComponent.Unet ? 1 : 0;
        }

        if (match.Matched.Count == 0 || (unetModules > 0 && unetMatched == 0))
        {
            var first = match.Unmatched.Count > 0 ? match.Unmatched[0].DisplayName : "?";
            var part = match.Matched.Count == 0 ? $"none of its {match.File.Modules.Count} modules" : $"none of its {unetModules} UNet modules";
            throw new ArgumentException(
                $"LoRA '{path}' ({match.File.Format}): {part} matches the model in '{ModelDirectory}' (first: '{first}'). "
                + "Is it made for another model (SD 1.5, SD 2.x, a refiner)?", nameof(GenerationRequest.Loras));
        }

        foreach (var (module, target) in match.Matched)
        {
            long outputs = module.Up.Shape[0];
            long inputs = module.Down.ElementCount / module.Rank;
            var (targetOut, targetIn) = target.MatrixShape;
            if (outputs != targetOut || inputs != targetIn)
            {
                throw new ArgumentException(
                    $"LoRA '{path}': module '{module.DisplayName}' (down {module.Down.ShapeText}, up {module.Up.ShapeText}) gives ΔW [{outputs}, {inputs}], "
                    + $"but '{target.ModulePath}' is [{targetOut}, {targetIn}] (initializer '{target.Weight.Name}' {target.Weight.Shape} of node '{target.Node}'). "
                    + "The LoRA is made for another model.", nameof(GenerationRequest.Loras));
            }
        }
    }

    private SgmUnetNames? Sgm()
    {
        lock (_gate)
        {
            if (!_sgmResolved)
            {
                var layout = SgmUnetNames.LayoutFromConfig(Path.Combine(ModelDirectory, "unet", "config.json"));
                if (layout is null && Index(LoraComponent.Unet) is { } unet)
                {
                    layout = SgmUnetNames.LayoutFromModules(unet.Modules.Keys);
                }

                _sgm = layout is null ? null : SgmUnetNames.For(layout);
                _sgmResolved = true;
            }

            return _sgm;
        }
    }
}
