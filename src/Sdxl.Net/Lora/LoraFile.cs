using System.Text.Json;

namespace Sdxl.Net.Lora;

/// <summary>The model component a LoRA module adapts.</summary>
internal enum LoraComponent
{
    Unet,
    TextEncoder,
    TextEncoder2,
}

/// <summary>One adapted module of a LoRA file: its low-rank factors and alpha.</summary>
/// <param name="Component">The component the module belongs to.</param>
/// <param name="Name">
/// The module name as the file spells it after the component prefix: kohya's underscore form
/// (<c>down_blocks_1_attentions_0_proj_in</c>, or SGM <c>input_blocks_4_1_proj_in</c>) or a dotted diffusers path.
/// </param>
/// <param name="Dotted">Whether <paramref name="Name"/> is a dotted module path (diffusers/PEFT keys).</param>
/// <param name="Down">The down (A) factor [rank, in] or [rank, in, kh, kw].</param>
/// <param name="Up">The up (B) factor [out, rank] or [out, rank, 1, 1].</param>
/// <param name="Alpha">The alpha; <see langword="null"/> (or 0) means the rank, so the scale is 1.</param>
internal sealed record LoraModule(LoraComponent Component, string Name, bool Dotted, SafetensorsTensor Down, SafetensorsTensor Up, float? Alpha)
{
    public int Rank => (int)Down.Shape[0];

    /// <summary>Whether the factors are convolution kernels (LoCon).</summary>
    public bool IsConvolution => Down.Shape.Length == 4;

    /// <summary>The key the file uses for this module (for messages).</summary>
    public string DisplayName => $"{LoraFile.ComponentName(Component)}:{Name}";

    /// <summary>alpha / rank (sd-scripts: an absent or zero alpha means the rank).</summary>
    public float AlphaScale => Alpha is { } a && a != 0 ? a / Rank : 1f;
}

/// <summary>
/// A LoRA adapter file: its format, found from the tensor keys (never the file name), and its modules. Recognised:
/// kohya/sd-scripts (<c>lora_unet_…</c>, <c>lora_te1_…</c>, <c>lora_te2_…</c>, <c>lora_te_…</c> with
/// <c>.lora_down/.lora_up/.alpha</c>, in diffusers or SGM module names, linear or convolution "LoCon" modules) and
/// diffusers/PEFT (<c>unet.….lora_A/lora_B</c>, <c>text_encoder(_2).…</c>, alpha from tensors or the
/// <c>lora_adapter_metadata</c> header entry). Other LyCORIS kinds are refused by name.
/// </summary>
internal sealed class LoraFile
{
    private static readonly (string Prefix, LoraComponent Component)[] KohyaPrefixes =
    [
        ("lora_unet_", LoraComponent.Unet),
        ("lora_te1_", LoraComponent.TextEncoder),
        ("lora_te2_", LoraComponent.TextEncoder2),
        ("lora_te_", LoraComponent.TextEncoder),
    ];

    private static readonly (string Prefix, LoraComponent Component)[] PeftPrefixes =
    [
        ("unet.", LoraComponent.Unet),
        ("text_encoder_2.", LoraComponent.TextEncoder2),
        ("text_encoder.", LoraComponent.TextEncoder),
    ];

    /// <summary>Key segments (after the module name) of adapter kinds this library does not merge, with the kind's name.</summary>
    private static readonly (string Segment, string Kind)[] UnsupportedKinds =
    [
        ("hada_", "LoHa (LyCORIS Hadamard product)"),
        ("lokr_", "LoKr (LyCORIS Kronecker product)"),
        ("lora_mid", "LoCon with CP/Tucker decomposition (lora_mid)"),
        ("oft_", "OFT (orthogonal fine-tuning)"),
        ("dora_scale", "DoRA (weight-decomposed LoRA)"),
        ("lora_magnitude_vector", "DoRA (weight-decomposed LoRA)"),
        ("diff", "LyCORIS full-weight difference"),
        ("a1", "GLoRA"),
        ("b1", "GLoRA"),
        ("w_norm", "LyCORIS norm-layer adapter"),
        ("b_norm", "LyCORIS norm-layer adapter"),
        ("on_input", "IA3"),
    ];

    private LoraFile(string path, SafetensorsFile file, string format, List<LoraModule> modules, List<string> unrecognised)
    {
        Path = path;
        File = file;
        Format = format;
        Modules = modules;
        UnrecognisedKeys = unrecognised;
    }

    public string Path { get; }

    public SafetensorsFile File { get; }

    /// <summary>"kohya", "kohya (LoCon)", "diffusers/PEFT" or a combination.</summary>
    public string Format { get; }

    public IReadOnlyList<LoraModule> Modules { get; }

    /// <summary>Tensor keys that belong to no LoRA module (reported as unmatched).</summary>
    public IReadOnlyList<string> UnrecognisedKeys { get; }

    public static string ComponentName(LoraComponent component) => component switch
    {
        LoraComponent.Unet => "unet",
        LoraComponent.TextEncoder => "text_encoder",
        _ => "text_encoder_2",
    };

    /// <summary>Reads and classifies <paramref name="path"/>.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is malformed, holds an unsupported adapter kind, or no LoRA module.</exception>
    public static LoraFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!System.IO.File.Exists(path))
        {
            throw new FileNotFoundException($"LoRA file not found: '{path}'.", path);
        }

        var file = SafetensorsFile.Open(path);
        foreach (var key in file.Tensors.Keys)
        {
            if (UnsupportedKind(key) is { } kind)
            {
                throw new InvalidDataException($"'{path}' is a {kind} adapter (key '{key}'); only LoRA and LoCon (lora_down/lora_up, lora_A/lora_B) can be applied.");
            }
        }

        var peftAlphas = PeftAlphas.FromMetadata(file.Metadata);
        var parts = new Dictionary<(LoraComponent, string, bool), Parts>();
        var unrecognised = new List<string>();
        bool kohya = false, peft = false;
        foreach (var (key, tensor) in file.Tensors)
        {
            if (TryKohya(key, out var component, out var module, out var role))
            {
                kohya = true;
                Collect(parts, (component, module, false), role, tensor);
            }
            else if (TryPeft(key, out component, out module, out role))
            {
                peft = true;
                Collect(parts, (component, module, true), role, tensor);
            }
            else
            {
                unrecognised.Add(key);
            }
        }

        var modules = new List<LoraModule>();
        foreach (var ((component, module, dotted), p) in parts)
        {
            if (p.Down is null || p.Up is null)
            {
                if (p.Down is null && p.Up is null)
                {
                    continue; // an alpha without factors: nothing to apply
                }

                throw new InvalidDataException($"'{path}': module '{module}' has {(p.Down is null ? "an up" : "a down")} factor but no {(p.Down is null ? "down (lora_down / lora_A)" : "up (lora_up / lora_B)")} factor.");
            }

            CheckFactors(path, module, p.Down, p.Up);
            float? alpha = p.Alpha is { } a ? file.ReadScalar(a) : dotted ? peftAlphas.For(component, module) : null;
            modules.Add(new LoraModule(component, module, dotted, p.Down, p.Up, alpha));
        }

        if (modules.Count == 0)
        {
            throw new InvalidDataException(
                $"'{path}' holds no LoRA module: expected kohya keys (lora_unet_…/lora_te1_…/lora_te2_… with .lora_down.weight and .lora_up.weight) "
                + $"or diffusers/PEFT keys (unet.….lora_A.weight / lora_B.weight); found {file.Tensors.Count} tensor(s){(file.Tensors.Count > 0 ? $" such as '{file.Tensors.Keys.First()}'" : string.Empty)}.");
        }

        modules.Sort((x, y) => x.Component != y.Component ? x.Component.CompareTo(y.Component) : string.CompareOrdinal(x.Name, y.Name));
        bool locon = modules.Exists(m => m.IsConvolution);
        var format = (kohya, peft) switch
        {
            (true, true) => "kohya + diffusers/PEFT",
            (true, false) => locon ? "kohya (LoCon)" : "kohya",
            _ => locon ? "diffusers/PEFT (with convolutions)" : "diffusers/PEFT",
        };
        return new LoraFile(path, file, format, modules, unrecognised);
    }

    private static string? UnsupportedKind(string key)
    {
        // The segments after the module name: "lora_unet_x.hada_w1_a", "unet.a.b.to_q.lora_magnitude_vector".
        var segments = key.Split('.');
        for (int i = 1; i < segments.Length; i++)
        {
            foreach (var (segment, kind) in UnsupportedKinds)
            {
                bool prefix = segment.EndsWith('_');
                if (prefix ? segments[i].StartsWith(segment, StringComparison.Ordinal) : segments[i] == segment || (segment == "diff" && segments[i] == "diff_b"))
                {
                    return kind;
                }
            }
        }

        return null;
    }

    private static void CheckFactors(string path, string module, SafetensorsTensor down, SafetensorsTensor up)
    {
        bool linear = down.Shape.Length == 2 && up.Shape.Length == 2;
        bool conv = down.Shape.Length == 4 && up.Shape.Length == 4 && up.Shape[2] == 1 && up.Shape[3] == 1;
        if (!linear && !conv)
        {
            throw new InvalidDataException(
                $"'{path}': module '{module}' has factors down {down.ShapeText} and up {up.ShapeText}; expected [rank, in] and [out, rank], or [rank, in, kh, kw] and [out, rank, 1, 1].");
        }

        if (down.Shape[0] != up.Shape[1] || down.Shape[0] == 0)
        {
            throw new InvalidDataException($"'{path}': module '{module}' has down {down.ShapeText} and up {up.ShapeText}, whose ranks differ.");
        }
    }

    private static void Collect(Dictionary<(LoraComponent, string, bool), Parts> parts, (LoraComponent, string, bool) key, Role role, SafetensorsTensor tensor)
    {
        if (!parts.TryGetValue(key, out var p))
        {
            parts[key] = p = new Parts();
        }

        switch (role)
        {
            case Role.Down:
                p.Down = tensor;
                break;
            case Role.Up:
                p.Up = tensor;
                break;
            default:
                p.Alpha = tensor;
                break;
        }
    }

    private static bool TryKohya(string key, out LoraComponent component, out string module, out Role role)
    {
        component = default;
        module = string.Empty;
        role = default;
        foreach (var (prefix, c) in KohyaPrefixes)
        {
            if (!key.StartsWith(prefix, StringComparison.Ordinal))
            {
                continue;
            }

            int dot = key.IndexOf('.', prefix.Length);
            if (dot < 0)
            {
                return false;
            }

            var suffix = key[(dot + 1)..];
            Role? r = suffix switch
            {
                "lora_down.weight" => Role.Down,
                "lora_up.weight" => Role.Up,
                "alpha" => Role.Alpha,
                _ => null,
            };
            if (r is null)
            {
                return false;
            }

            component = c;
            module = key[prefix.Length..dot];
            role = r.Value;
            return true;
        }

        return false;
    }

    private static bool TryPeft(string key, out LoraComponent component, out string module, out Role role)
    {
        component = LoraComponent.Unet;
        module = string.Empty;
        role = default;
        var rest = key;
        bool prefixed = false;
        foreach (var (prefix, c) in PeftPrefixes)
        {
            if (key.StartsWith(prefix, StringComparison.Ordinal))
            {
                component = c;
                rest = key[prefix.Length..];
                prefixed = true;
                break;
            }
        }

        if (rest.StartsWith("base_model.model.", StringComparison.Ordinal))
        {
            rest = rest["base_model.model.".Length..];
        }

        (string Suffix, Role Role)[] suffixes =
        [
            (".lora_A.weight", Role.Down), (".lora_B.weight", Role.Up),
            (".lora.down.weight", Role.Down), (".lora.up.weight", Role.Up),
            (".lora_down.weight", Role.Down), (".lora_up.weight", Role.Up),
            ("_lora.down.weight", Role.Down), ("_lora.up.weight", Role.Up),
            (".alpha", Role.Alpha),
        ];
        foreach (var (suffix, r) in suffixes)
        {
            if (!rest.EndsWith(suffix, StringComparison.Ordinal))
            {
                continue;
            }

            module = rest[..^suffix.Length];
            if (suffix[0] == '_')
            {
                // diffusers' old attention-processor keys: attn1.processor.to_q_lora.down.weight → attn1.to_q.
                module = module.Replace(".processor.", ".", StringComparison.Ordinal);
                if (module.EndsWith("to_out", StringComparison.Ordinal))
                {
                    module += ".0";
                }
            }

            role = r;
            // Unprefixed keys are UNet keys when they start with a UNet module (diffusers' unet.save_attn_procs).
            return prefixed || IsUnetModule(module);
        }

        return false;
    }

    private static bool IsUnetModule(string module) =>
        module.StartsWith("down_blocks.", StringComparison.Ordinal) || module.StartsWith("up_blocks.", StringComparison.Ordinal)
        || module.StartsWith("mid_block.", StringComparison.Ordinal);

    private enum Role
    {
        Down,
        Up,
        Alpha,
    }

    private sealed class Parts
    {
        public SafetensorsTensor? Down { get; set; }

        public SafetensorsTensor? Up { get; set; }

        public SafetensorsTensor? Alpha { get; set; }
    }

    /// <summary>
    /// The alphas diffusers stores for PEFT adapters in the <c>lora_adapter_metadata</c> header entry (the LoraConfig
    /// as JSON, its keys prefixed with the component: <c>unet.lora_alpha</c>, <c>unet.alpha_pattern</c>, …).
    /// </summary>
    private sealed class PeftAlphas
    {
        private readonly Dictionary<string, float> _alpha = new(StringComparer.Ordinal);
        private readonly Dictionary<string, Dictionary<string, float>> _patterns = new(StringComparer.Ordinal);

        public static PeftAlphas FromMetadata(IReadOnlyDictionary<string, string> metadata)
        {
            var result = new PeftAlphas();
            if (!metadata.TryGetValue("lora_adapter_metadata", out var json))
            {
                return result;
            }

            try
            {
                using var doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 16 });
                if (doc.RootElement.ValueKind != JsonValueKind.Object)
                {
                    return result;
                }

                foreach (var p in doc.RootElement.EnumerateObject())
                {
                    // "unet.lora_alpha" or plain "lora_alpha" (a single model's adapter).
                    int dot = p.Name.LastIndexOf('.');
                    var scope = dot < 0 ? string.Empty : p.Name[..dot];
                    var field = dot < 0 ? p.Name : p.Name[(dot + 1)..];
                    if (field == "lora_alpha" && p.Value.TryGetDouble(out var alpha))
                    {
                        result._alpha[scope] = (float)alpha;
                    }
                    else if (field == "alpha_pattern" && p.Value.ValueKind == JsonValueKind.Object)
                    {
                        var patterns = new Dictionary<string, float>(StringComparer.Ordinal);
                        foreach (var entry in p.Value.EnumerateObject())
                        {
                            if (entry.Value.TryGetDouble(out var a))
                            {
                                patterns[entry.Name] = (float)a;
                            }
                        }

                        result._patterns[scope] = patterns;
                    }
                }
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"The LoRA file's lora_adapter_metadata is not valid JSON: {e.Message}", e);
            }

            return result;
        }

        public float? For(LoraComponent component, string module)
        {
            var scope = ComponentName(component);
            foreach (var s in new[] { scope, string.Empty })
            {
                if (_patterns.TryGetValue(s, out var patterns))
                {
                    // PEFT matches a pattern key against the module name's trailing dotted part.
                    foreach (var (pattern, alpha) in patterns)
                    {
                        if (module == pattern || module.EndsWith("." + pattern, StringComparison.Ordinal))
                        {
                            return alpha;
                        }
                    }
                }

                if (_alpha.TryGetValue(s, out var a))
                {
                    return a;
                }
            }

            return null;
        }
    }
}
