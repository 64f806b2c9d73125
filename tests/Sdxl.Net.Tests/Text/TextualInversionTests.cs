using System.Text;
using Microsoft.ML.OnnxRuntime;
using Sdxl.Net.Models;
using Sdxl.Net.Runtime;
using Sdxl.Net.Text;

namespace Sdxl.Net.Tests.Text;

/// <summary>
/// SDXL textual inversion on the tiny models. The independent check: an embedding whose vectors are the token-embedding
/// rows of the words "red cat" must make "a mytok" encode to exactly the hidden states of "a red cat" (the encoder only
/// sees input embeddings), through both the plain and the weighted path.
/// </summary>
public sealed class TextualInversionTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sdxl-ti-").FullName;

    private static string BaseModel => Path.Combine(TestPaths.TinySdxl!, "tiny-sdxl-base");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Writes a safetensors file of float32 tensors.</summary>
    internal static void WriteSafetensors(string path, params (string Name, int[] Shape, float[] Values)[] tensors)
    {
        var header = new StringBuilder("{");
        long offset = 0;
        foreach (var (name, shape, values) in tensors)
        {
            header.Append($"\"{name}\":{{\"dtype\":\"F32\",\"shape\":[{string.Join(',', shape)}],\"data_offsets\":[{offset},{offset + (values.Length * 4)}]}},");
            offset += values.Length * 4;
        }

        header.Length--;
        header.Append('}');
        while ((header.Length + 8) % 8 != 0)
        {
            header.Append(' ');
        }

        using var stream = File.Create(path);
        stream.Write(BitConverter.GetBytes((long)header.Length));
        stream.Write(Encoding.ASCII.GetBytes(header.ToString()));
        foreach (var (_, _, values) in tensors)
        {
            foreach (var v in values)
            {
                stream.Write(BitConverter.GetBytes(v));
            }
        }
    }

    // The rows of `words`' tokens in the component's token-embedding table ([49408, d] initializer).
    private static float[] TableRows(string component, ClipTokenizer tokenizer, string words, out int width)
    {
        var graph = OnnxGraphReader.Read(Path.Combine(BaseModel, component, "model.onnx"));
        var table = graph.Initializers.Values.Single(t => t.Dimensions.Length == 2 && t.Dimensions[0] == 49408);
        width = (int)table.Dimensions[1];
        var all = graph.ReadAsSingle(table);
        var ids = tokenizer.EncodeToIds(words);
        var rows = new float[ids.Count * width];
        for (int i = 0; i < ids.Count; i++)
        {
            Array.Copy(all, ids[i] * width, rows, i * width, width);
        }

        return rows;
    }

    private string RedCatEmbedding(SdxlModelFolder plainModel)
    {
        var clipL = TableRows("text_encoder", plainModel.Tokenizer!, "red cat", out int wl);
        var clipG = TableRows("text_encoder_2", plainModel.Tokenizer2, "red cat", out int wg);
        var file = Path.Combine(_dir, "redcat.safetensors");
        WriteSafetensors(file, ("clip_g", [2, wg], clipG), ("clip_l", [2, wl], clipL));
        return file;
    }

    [TinySdxlFact]
    public void An_embedding_of_existing_rows_encodes_like_the_words_plain_and_weighted()
    {
        using var plainModel = SdxlModelFolder.Open(BaseModel, ExecutionProviderOptions.Cpu);
        var file = RedCatEmbedding(plainModel);
        using var model = TextualInversions.OpenFolder(BaseModel, ExecutionProviderOptions.Cpu, [new EmbeddingReference(file, "mytok")]);
        Assert.Equal(2, Assert.Single(model.Embeddings!.Items).Vectors);

        var expected = PromptEncoder.Encode(plainModel, "a red cat on mars", "a red cat on mars", null, null);
        var plain = PromptEncoder.Encode(model, "a mytok on mars", "a mytok on mars", null, null);
        Assert.Equal(expected.Hidden, plain.Hidden);

        using var runOptions = new RunOptions();
        var weighted = WeightedPromptEncoder.Encode(model, "a mytok on mars", "a mytok on mars", new PromptTexts("", null, null, null), runOptions);
        Assert.Equal(expected.Hidden, weighted.Hidden);

        // Pooled: A1111 pools at the end-of-text token, so the weighted path gives the pooled of "a red cat on mars"
        // (computed on the host from last_hidden_state and the projection: float rounding only). The plain path
        // pools at argmax(input_ids) like diffusers, which is the embedding's last row here.
        for (int i = 0; i < expected.Pooled.Length; i++)
        {
            Assert.True(Math.Abs(expected.Pooled[i] - weighted.Pooled[i]) <= 1e-5, $"pooled[{i}]: {weighted.Pooled[i]} vs {expected.Pooled[i]}");
        }

        Assert.NotEqual(expected.Pooled, plain.Pooled);

        // Without the trigger word the sessions behave as before (the appended rows change nothing else), pooled included.
        var untouched = PromptEncoder.Encode(model, "a red cat on mars", "a red cat on mars", null, null);
        Assert.Equal(expected.Hidden, untouched.Hidden);
        Assert.Equal(expected.Pooled, untouched.Pooled);
    }

    [TinySdxlFact]
    public void Embedding_vectors_stay_in_one_chunk()
    {
        using var plainModel = SdxlModelFolder.Open(BaseModel, ExecutionProviderOptions.Cpu);
        var file = RedCatEmbedding(plainModel);
        using var embeddings = TextualInversions.Create(BaseModel, [new EmbeddingReference(file, "mytok")])!;

        // 74 cats leave one place in the first chunk; the embedding's two vectors move to the second chunk together.
        var prompt = string.Join(' ', Enumerable.Repeat("cat", 74)) + " mytok";
        var chunks = PromptChunker.Chunk(plainModel.Tokenizer!, PromptParser.Parse(prompt), embeddings, "text_encoder");
        Assert.Equal([74, 2], chunks.Select(c => c.TokenCount).ToArray());
        Assert.Equal([49408, 49409], chunks[1].InputIds.Skip(1).Take(2).ToArray());

        // The weight of the word applies to every vector.
        var weighted = PromptChunker.Chunk(plainModel.Tokenizer!, PromptParser.Parse("(mytok:1.3)"), embeddings, "text_encoder");
        Assert.Equal([1.3f, 1.3f], weighted[0].Weights.Skip(1).Take(2).ToArray());
    }

    [TinySdxlFact]
    public void Sd15_embeddings_and_wrong_widths_are_refused_clearly()
    {
        var sd15 = Path.Combine(_dir, "old.safetensors");
        WriteSafetensors(sd15, ("emb_params", [2, 768], new float[2 * 768]));
        var e = Assert.Throws<ArgumentException>(() => TextualInversions.Create(BaseModel, [new EmbeddingReference(sd15, "old")]));
        Assert.Contains("Stable Diffusion 1.x/2.x embedding", e.Message, StringComparison.Ordinal);

        // A real SDXL embedding (768 / 1280) does not fit the tiny encoders (32 / 64).
        var sdxl = Path.Combine(_dir, "big.safetensors");
        WriteSafetensors(sdxl, ("clip_l", [1, 768], new float[768]), ("clip_g", [1, 1280], new float[1280]));
        e = Assert.Throws<ArgumentException>(() => TextualInversions.Create(BaseModel, [new EmbeddingReference(sdxl, "big")]));
        Assert.Contains("width 768", e.Message, StringComparison.Ordinal);
        Assert.Contains("32 wide", e.Message, StringComparison.Ordinal);

        var pt = Path.Combine(_dir, "x.pt");
        File.WriteAllBytes(pt, [1, 2, 3]);
        e = Assert.Throws<ArgumentException>(() => TextualInversions.Create(BaseModel, [new EmbeddingReference(pt, "x")]));
        Assert.Contains("only .safetensors", e.Message, StringComparison.Ordinal);
    }

    [TinySdxlFact]
    public async Task Cli_generates_with_an_embedding_records_it_and_from_image_asks_for_it()
    {
        using var plainModel = SdxlModelFolder.Open(BaseModel, ExecutionProviderOptions.Cpu);
        var file = RedCatEmbedding(plainModel);
        var png = Path.Combine(_dir, "ti.png");
        string[] common = ["--width", "64", "--height", "64", "--steps", "2", "--guidance", "5", "--seed", "3"];
        var err = new StringWriter();
        int exit = await Sdxl.Cli.CliApp.RunAsync(["generate", "--model", BaseModel, "--prompt", "a mytok", .. common, "--embedding", file + ":mytok", "--output", png], new StringWriter(), err);
        Assert.True(exit == 0, err.ToString());
        var recipe = Sdxl.Net.Imaging.ImageRecipe.ReadRecipe(png)!;
        Assert.Equal(new AppliedEmbedding("mytok", "redcat.safetensors", 2), Assert.Single(recipe.Embeddings));

        err = new StringWriter();
        exit = await Sdxl.Cli.CliApp.RunAsync(["generate", "--from-image", png, "--model", BaseModel, "--output", Path.Combine(_dir, "again.png")], new StringWriter(), err);
        Assert.Equal(2, exit);
        Assert.Contains("pass the same --embedding", err.ToString(), StringComparison.Ordinal);

        // The file name is the default trigger word.
        err = new StringWriter();
        exit = await Sdxl.Cli.CliApp.RunAsync(["generate", "--model", BaseModel, "--prompt", "a redcat", .. common, "--embedding", file, "--output", Path.Combine(_dir, "b.npy")], new StringWriter(), err);
        Assert.True(exit == 0, err.ToString());
    }
}
