using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Sdxl.Net.Lora;
using Sdxl.Net.Models;
using Sdxl.Net.Runtime;

namespace Sdxl.Net.Text;

/// <summary>A textual-inversion embedding given to the pipeline: its file and the word that triggers it.</summary>
/// <param name="Path">The <c>.safetensors</c> file with <c>clip_l</c> [N, 768] and <c>clip_g</c> [N, 1280] tensors.</param>
/// <param name="Token">The trigger word.</param>
internal sealed record EmbeddingReference(string Path, string Token);

/// <summary>A textual-inversion embedding that a generation's text encoders carried.</summary>
/// <param name="Token">The trigger word.</param>
/// <param name="FileName">The embedding file's name.</param>
/// <param name="Vectors">The tokens the word expands to.</param>
public sealed record AppliedEmbedding(string Token, string FileName, int Vectors);

/// <summary>One SDXL textual-inversion embedding: N vectors for each text encoder.</summary>
internal sealed class TextualInversionEmbedding
{
    private TextualInversionEmbedding(string token, string path, int vectors, float[] clipL, int clipLWidth, float[] clipG, int clipGWidth)
    {
        Token = token;
        Path = path;
        Vectors = vectors;
        ClipL = clipL;
        ClipLWidth = clipLWidth;
        ClipG = clipG;
        ClipGWidth = clipGWidth;
    }

    public string Token { get; }

    public string Path { get; }

    /// <summary>N: the tokens the trigger word expands to.</summary>
    public int Vectors { get; }

    public float[] ClipL { get; }

    public int ClipLWidth { get; }

    public float[] ClipG { get; }

    public int ClipGWidth { get; }

    /// <summary>The vectors [N, width] for a text encoder (<c>text_encoder</c>: clip_l; <c>text_encoder_2</c>: clip_g).</summary>
    public (float[] Vectors, int Width) For(string component) => component == "text_encoder" ? (ClipL, ClipLWidth) : (ClipG, ClipGWidth);

    /// <summary>Reads an SDXL embedding file (the format of A1111, ComfyUI and diffusers' <c>load_textual_inversion</c> for SDXL).</summary>
    /// <exception cref="ArgumentException">The file is missing, is not safetensors, or is an SD 1.x/2.x embedding.</exception>
    public static TextualInversionEmbedding Load(string path, string token)
    {
        if (!File.Exists(path))
        {
            throw new ArgumentException($"Embedding file not found: '{path}'.", nameof(path));
        }

        if (!path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
        {
            throw new ArgumentException($"Embedding '{path}': only .safetensors embeddings are read (pickled .pt/.bin files can run code when loaded).", nameof(path));
        }

        SafetensorsFile file;
        try
        {
            file = SafetensorsFile.Open(path);
        }
        catch (InvalidDataException e)
        {
            throw new ArgumentException($"Embedding '{path}': {e.Message}", nameof(path), e);
        }

        if (!file.Tensors.TryGetValue("clip_l", out var clipL) || !file.Tensors.TryGetValue("clip_g", out var clipG))
        {
            var found = string.Join(", ", file.Tensors.Values.Select(t => $"{t.Name} {t.ShapeText}"));
            bool sd1 = file.Tensors.ContainsKey("emb_params") || file.Tensors.Values.Any(t => t.Shape.Length >= 1 && t.Shape[^1] is 768 or 1024);
            throw new ArgumentException(sd1
                ? $"Embedding '{path}' is a Stable Diffusion 1.x/2.x embedding ({found}); SDXL needs an SDXL embedding with 'clip_l' [N, 768] and 'clip_g' [N, 1280] tensors."
                : $"Embedding '{path}' has no 'clip_l' and 'clip_g' tensors (found {found}); SDXL embeddings carry both.", nameof(path));
        }

        if (clipL.Shape.Length != 2 || clipG.Shape.Length != 2 || clipL.Shape[0] != clipG.Shape[0] || clipL.Shape[0] < 1 || clipL.Shape[0] > 75)
        {
            throw new ArgumentException($"Embedding '{path}': 'clip_l' {clipL.ShapeText} and 'clip_g' {clipG.ShapeText} must both be [N, width] with the same N from 1 to 75.", nameof(path));
        }

        return new TextualInversionEmbedding(token, path, (int)clipL.Shape[0], file.ReadAsSingle(clipL), (int)clipL.Shape[1], file.ReadAsSingle(clipG), (int)clipG.Shape[1]);
    }
}

/// <summary>
/// The pipeline's textual-inversion embeddings applied to one model folder: each text encoder's token-embedding table
/// is extended with the embeddings' rows (an initializer override of the session, the "weights overlay" seam), and a
/// trigger word's tokens become the ids of those rows.
/// </summary>
/// <remarks>
/// Ids of the new rows follow the vocabulary (49408, 49409, …), as diffusers' <c>load_textual_inversion</c> adds tokens.
/// An export that pools at <c>argmax(input_ids)</c> then pools at the embedding's last row, as diffusers does; the
/// weighted (A1111) path recomputes the pooled embedding at the end-of-text token instead (<see cref="PoolAtEndOfText"/>).
/// </remarks>
internal sealed class TextualInversions : IDisposable
{
    private readonly Dictionary<string, EncoderTable> _tables;

    private TextualInversions(IReadOnlyList<TextualInversionEmbedding> items, Dictionary<string, EncoderTable> tables)
    {
        Items = items;
        _tables = tables;
    }

    public IReadOnlyList<TextualInversionEmbedding> Items { get; }

    /// <summary>What a result reports.</summary>
    public IReadOnlyList<AppliedEmbedding> Applied => Items.Select(e => new AppliedEmbedding(e.Token, System.IO.Path.GetFileName(e.Path), e.Vectors)).ToArray();

    /// <summary>Opens a model folder whose text encoders carry <paramref name="references"/>' rows (none: a plain open).</summary>
    /// <param name="directory">The model folder.</param>
    /// <param name="options">The execution provider.</param>
    /// <param name="references">The embeddings.</param>
    /// <param name="loadVaeEncoder">Whether to open vae_encoder/.</param>
    /// <param name="customize">Other weights overlays of the folder's sessions (LoRA adapters), combined with the embeddings'.</param>
    /// <param name="cancellationToken">Checked between components.</param>
    public static SdxlModelFolder OpenFolder(string directory, ExecutionProviderOptions options, IReadOnlyList<EmbeddingReference> references, bool loadVaeEncoder = true,
        Func<string, SessionCustomization?>? customize = null, CancellationToken cancellationToken = default)
    {
        var embeddings = Directory.Exists(directory) ? Create(directory, references) : null;
        SdxlModelFolder folder;
        try
        {
            folder = SdxlModelFolder.Open(directory, options, loadVaeEncoder,
                embeddings is null && customize is null ? null : c => SessionCustomization.Combine(embeddings?.Customize(c), customize?.Invoke(c)), cancellationToken);
        }
        catch
        {
            embeddings?.Dispose();
            throw;
        }

        folder.AttachEmbeddings(embeddings);
        return folder;
    }

    /// <summary>Reads the embeddings and builds the extended tables for the text encoders of <paramref name="modelDirectory"/>.</summary>
    /// <exception cref="ArgumentException">An embedding file is unusable, a trigger word repeats, or its widths do not fit the model.</exception>
    /// <exception cref="SdxlModelException">A text encoder's token-embedding table cannot be found or read.</exception>
    public static TextualInversions? Create(string modelDirectory, IReadOnlyList<EmbeddingReference> references)
    {
        if (references.Count == 0)
        {
            return null;
        }

        var items = new List<TextualInversionEmbedding>();
        foreach (var r in references)
        {
            if (items.Any(e => string.Equals(e.Token, r.Token, StringComparison.OrdinalIgnoreCase)))
            {
                throw new ArgumentException($"The embedding trigger word '{r.Token}' is given twice; each embedding needs its own word.", nameof(references));
            }

            items.Add(TextualInversionEmbedding.Load(r.Path, r.Token));
        }

        var tables = new Dictionary<string, EncoderTable>(StringComparer.Ordinal);
        try
        {
            foreach (var component in new[] { "text_encoder", "text_encoder_2" })
            {
                var file = Path.Combine(modelDirectory, component, "model.onnx");
                if (File.Exists(file))
                {
                    tables[component] = EncoderTable.Build(component, file, items);
                }
            }
        }
        catch
        {
            foreach (var t in tables.Values)
            {
                t.Dispose();
            }

            throw;
        }

        return new TextualInversions(items, tables);
    }

    /// <summary>The session override for <paramref name="component"/>: its token-embedding table with the embeddings' rows appended.</summary>
    public SessionCustomization? Customize(string component) =>
        _tables.TryGetValue(component, out var table) ? new SessionCustomization([new(table.InitializerName, table.Value)], disablePrepacking: false) : null;

    /// <summary>
    /// If an embedding's trigger word (its token ids under <paramref name="tokenizer"/>) starts at <paramref name="position"/>
    /// of <paramref name="ids"/>, the number of ids it covers and the ids of its rows; the longest trigger wins, as in A1111.
    /// </summary>
    public bool TryMatch(IReadOnlyList<int> ids, int position, ClipTokenizer tokenizer, string component, out int matchedLength, out int[] rowIds)
    {
        matchedLength = 0;
        rowIds = [];
        if (!_tables.TryGetValue(component, out var table))
        {
            return false;
        }

        for (int e = 0; e < Items.Count; e++)
        {
            var trigger = tokenizer.EncodeToIds(Items[e].Token);
            if (trigger.Count <= matchedLength || position + trigger.Count > ids.Count)
            {
                continue;
            }

            bool match = true;
            for (int k = 0; k < trigger.Count && match; k++)
            {
                match = ids[position + k] == trigger[k];
            }

            if (match)
            {
                matchedLength = trigger.Count;
                rowIds = Enumerable.Range(table.FirstIds[e], Items[e].Vectors).ToArray();
            }
        }

        return matchedLength > 0;
    }

    /// <summary>
    /// A1111's pooled embedding for a chunk that holds embedding rows: the text projection of the final states at the
    /// first end-of-text token. (The export pools at <c>argmax(input_ids)</c>, which the rows' ids above the vocabulary
    /// would capture; A1111's placeholders are id 0.) <see langword="null"/> when the chunk holds no embedding row, or the
    /// export lacks <c>last_hidden_state</c> or a plain MatMul projection to <c>text_embeds</c>: then the export's pooling stands.
    /// </summary>
    public float[]? PoolAtEndOfText(TextEncoderModel encoder, ReadOnlySpan<int> chunkIds, int endOfText, RunOptions? runOptions)
    {
        if (!_tables.TryGetValue(encoder.Component, out var table) || table.Projection is not { } projection || !encoder.HasLastHiddenState)
        {
            return null;
        }

        bool holdsRows = false;
        foreach (var id in chunkIds)
        {
            holdsRows |= id >= table.VocabularySize;
        }

        int eos = chunkIds.IndexOf(endOfText);
        if (!holdsRows || eos < 0)
        {
            return null;
        }

        var states = encoder.EncodeLastHiddenState(chunkIds, 1, chunkIds.Length, runOptions);
        int hidden = projection.Length / table.ProjectionWidth;
        var token = states.AsSpan(eos * hidden, hidden);
        var pooled = new float[table.ProjectionWidth];
        for (int h = 0; h < hidden; h++)
        {
            System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(projection.AsSpan(h * pooled.Length, pooled.Length), token[h], pooled, pooled);
        }

        return pooled;
    }

    /// <summary>Replaces every trigger word in <paramref name="ids"/> by its embedding's row ids (the plain path).</summary>
    public List<int> Expand(IReadOnlyList<int> ids, ClipTokenizer tokenizer, string component)
    {
        var result = new List<int>(ids.Count);
        for (int i = 0; i < ids.Count;)
        {
            if (TryMatch(ids, i, tokenizer, component, out var length, out var rows))
            {
                result.AddRange(rows);
                i += length;
            }
            else
            {
                result.Add(ids[i]);
                i++;
            }
        }

        return result;
    }

    public void Dispose()
    {
        foreach (var t in _tables.Values)
        {
            t.Dispose();
        }
    }

    /// <summary>One encoder's extended table: the original [V, d] followed by every embedding's rows.</summary>
    private sealed class EncoderTable(string initializerName, OrtValue value, int[] firstIds, int vocabularySize, float[]? projection, int projectionWidth) : IDisposable
    {
        public string InitializerName { get; } = initializerName;

        /// <summary>The rows of the original table: ids at or above it are embedding rows.</summary>
        public int VocabularySize { get; } = vocabularySize;

        /// <summary>The text projection [hidden, P] feeding <c>text_embeds</c>, when it is a plain MatMul by an initializer.</summary>
        public float[]? Projection { get; } = projection;

        public int ProjectionWidth { get; } = projectionWidth;

        public OrtValue Value { get; } = value;

        /// <summary>The id of each embedding's first row.</summary>
        public int[] FirstIds { get; } = firstIds;

        public void Dispose() => Value.Dispose();

        public static EncoderTable Build(string component, string modelFile, List<TextualInversionEmbedding> items)
        {
            var graph = OnnxGraphReader.Read(modelFile);
            var table = FindTokenEmbedding(graph)
                ?? throw new SdxlModelException($"{component}: no token-embedding table found (a Gather of an initializer [vocabulary, width] by input_ids), so textual-inversion rows cannot be added. File: '{modelFile}'.");
            int rows = checked((int)table.Dimensions[0]);
            int width = checked((int)table.Dimensions[1]);
            var firstIds = new int[items.Count];
            int total = rows;
            for (int e = 0; e < items.Count; e++)
            {
                var (_, w) = items[e].For(component);
                if (w != width)
                {
                    throw new ArgumentException(
                        $"Embedding '{items[e].Path}' has {(component == "text_encoder" ? "clip_l" : "clip_g")} vectors of width {w}, but {component}'s token embeddings are {width} wide: it was trained for another model.",
                        nameof(items));
                }

                firstIds[e] = total;
                total += items[e].Vectors;
            }

            var values = new float[(long)total * width];
            graph.ReadAsSingle(table).CopyTo(values, 0);
            for (int e = 0; e < items.Count; e++)
            {
                items[e].For(component).Vectors.CopyTo(values, (long)firstIds[e] * width);
            }

            long[] shape = [total, width];
            var value = table.ElementType switch
            {
                OnnxDataType.Float => OrtValue.CreateTensorValueFromMemory(values, shape),
                OnnxDataType.Float16 => OrtValue.CreateTensorValueFromMemory(Array.ConvertAll(values, v => (Float16)v), shape),
                _ => throw new SdxlModelException($"{component}: the token-embedding table '{table.Name}' is of ONNX type {table.DataType}; textual inversion supports float32 and float16 tables. File: '{modelFile}'."),
            };
            // The pooled projection, for A1111's pooling at the end-of-text token (see PoolAtEndOfText).
            float[]? projection = null;
            int projectionWidth = 0;
            var project = graph.Nodes.FirstOrDefault(n => n.Outputs.Contains("text_embeds"));
            if (project is { OpType: "MatMul", Inputs.Count: 2 } && graph.Initializers.TryGetValue(project.Inputs[1], out var weight)
                && weight.Dimensions.Length == 2 && weight.ElementType is OnnxDataType.Float or OnnxDataType.Float16)
            {
                projection = graph.ReadAsSingle(weight);
                projectionWidth = checked((int)weight.Dimensions[1]);
            }

            return new EncoderTable(table.Name, value, firstIds, rows, projection, projectionWidth);
        }

        // The table is the rank-2 initializer that a Gather indexes with input_ids (directly or through a Cast).
        private static OnnxInitializer? FindTokenEmbedding(OnnxGraph graph)
        {
            var fromIds = new HashSet<string>(StringComparer.Ordinal) { "input_ids" };
            foreach (var node in graph.Nodes)
            {
                if (node.OpType == "Cast" && node.Inputs.Count == 1 && fromIds.Contains(node.Inputs[0]))
                {
                    fromIds.Add(node.Outputs[0]);
                }
            }

            foreach (var node in graph.Nodes)
            {
                if (node.OpType == "Gather" && node.Inputs.Count == 2 && fromIds.Contains(node.Inputs[1])
                    && graph.Initializers.TryGetValue(node.Inputs[0], out var table) && table.Dimensions.Length == 2)
                {
                    return table;
                }
            }

            return null;
        }
    }
}
