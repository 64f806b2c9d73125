namespace Sdxl.Net.Hub;

/// <summary>An ONNX pipeline folder inside a repository: its folder ("" for the root) and the files a pipeline reads.</summary>
internal sealed record OnnxLayout(string Root, IReadOnlyList<string> Files)
{
    public string DisplayName => Root.Length == 0 ? "(repository root)" : Root;
}

/// <summary>
/// Finds the ONNX pipeline folders (optimum/Olive layout: <c>model_index.json</c> beside <c>unet/model.onnx</c>) in
/// a repository's file list and picks the files a pipeline needs from each, leaving out PyTorch, Flax and OpenVINO
/// weights, which are often ten times the size.
/// </summary>
internal static class OnnxLayouts
{
    private const string ModelIndex = "model_index.json";

    /// <summary>Weights of other frameworks and documentation: never downloaded.</summary>
    private static readonly string[] ExcludedExtensions =
        [".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".msgpack", ".h5", ".xml", ".md", ".png", ".jpg", ".jpeg", ".webp", ".gif"];

    /// <summary>Folders with an ONNX model that the SDXL pipeline never loads.</summary>
    private static readonly HashSet<string> IgnoredComponents = new(StringComparer.Ordinal) { "safety_checker", "feature_extractor" };

    /// <summary>Every ONNX pipeline folder in <paramref name="files"/> (repository paths with '/'), shortest root first.</summary>
    public static IReadOnlyList<OnnxLayout> Detect(IEnumerable<string> files)
    {
        var all = files.Select(f => f.Replace('\\', '/')).Distinct(StringComparer.Ordinal).ToList();
        var present = new HashSet<string>(all, StringComparer.Ordinal);
        var roots = new SortedSet<string>(Comparer<string>.Create((a, b) => a.Length != b.Length ? a.Length.CompareTo(b.Length) : string.CompareOrdinal(a, b)));
        foreach (var file in all)
        {
            const string unet = "unet/model.onnx";
            if (file == unet || file.EndsWith("/" + unet, StringComparison.Ordinal))
            {
                var root = file[..^unet.Length].TrimEnd('/');
                if (present.Contains(Join(root, ModelIndex)))
                {
                    roots.Add(root);
                }
            }
        }

        var layouts = new List<OnnxLayout>();
        foreach (var root in roots)
        {
            var prefix = root.Length == 0 ? string.Empty : root + "/";
            var componentsWithModel = new HashSet<string>(StringComparer.Ordinal);
            foreach (var file in all)
            {
                if (file.StartsWith(prefix, StringComparison.Ordinal) && file[prefix.Length..].Split('/') is [var dir, "model.onnx"])
                {
                    componentsWithModel.Add(dir);
                }
            }

            var selected = new List<string>();
            foreach (var file in all)
            {
                if (file.StartsWith(prefix, StringComparison.Ordinal) && IsNeeded(file[prefix.Length..], componentsWithModel))
                {
                    selected.Add(file);
                }
            }

            selected.Sort(StringComparer.Ordinal);
            layouts.Add(new OnnxLayout(root, selected));
        }

        return layouts;
    }

    /// <summary>
    /// The layout for <paramref name="variant"/>: one whose folder is the variant, or has it as a part of its name
    /// (<c>fp16</c> matches <c>onnx/fp16</c> and <c>onnx-fp16</c>). Without a variant: the repository root when it
    /// is a layout, else the shortest layout that is not fp16, else the shortest.
    /// </summary>
    public static OnnxLayout? Choose(IReadOnlyList<OnnxLayout> layouts, string? variant)
    {
        if (layouts.Count == 0)
        {
            return null;
        }

        if (string.IsNullOrWhiteSpace(variant))
        {
            return layouts.FirstOrDefault(l => l.Root.Length == 0)
                ?? layouts.FirstOrDefault(l => !NameParts(l.Root).Contains("fp16"))
                ?? layouts[0];
        }

        var wanted = variant.Trim().Trim('/').Replace('\\', '/');
        return layouts.FirstOrDefault(l => string.Equals(l.Root, wanted, StringComparison.OrdinalIgnoreCase))
            ?? layouts.FirstOrDefault(l => NameParts(l.Root).Contains(wanted.ToLowerInvariant()));
    }

    public static string Describe(IReadOnlyList<OnnxLayout> layouts) =>
        layouts.Count == 0 ? "none" : string.Join(", ", layouts.Select(l => l.DisplayName));

    /// <summary>Whether a path relative to a layout root is read by an ONNX pipeline.</summary>
    private static bool IsNeeded(string relative, HashSet<string> componentsWithModel)
    {
        var parts = relative.Split('/');
        if (parts is [ModelIndex])
        {
            return true;
        }

        if (parts is not [var dir, var name] || IsExcluded(name))
        {
            return false;
        }

        if (name == "config.json" || dir == "scheduler" || dir.StartsWith("tokenizer", StringComparison.Ordinal))
        {
            return true;
        }

        if (!componentsWithModel.Contains(dir) || IgnoredComponents.Contains(dir))
        {
            return false;
        }

        // model.onnx and its external data: model.onnx_data (optimum), model.onnx.data, weights.pb (Olive) or one
        // file per tensor (torch.onnx.export). Other .onnx files are variants (model.fp16.onnx) the loader never opens.
        return name.StartsWith("model.onnx", StringComparison.Ordinal)
            || (!name.Contains(".onnx", StringComparison.Ordinal) && !name.EndsWith(".json", StringComparison.OrdinalIgnoreCase)
                && !name.EndsWith(".txt", StringComparison.OrdinalIgnoreCase));
    }

    private static bool IsExcluded(string name)
    {
        if (name.StartsWith('.') || name.Contains(".safetensors", StringComparison.OrdinalIgnoreCase)
            || name.StartsWith("openvino", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        foreach (var extension in ExcludedExtensions)
        {
            if (name.EndsWith(extension, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    private static HashSet<string> NameParts(string root) =>
        new(root.ToLowerInvariant().Split(['/', '-', '_', '.'], StringSplitOptions.RemoveEmptyEntries), StringComparer.Ordinal);

    private static string Join(string root, string file) => root.Length == 0 ? file : root + "/" + file;
}
