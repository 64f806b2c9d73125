using System.Text.Json;
using Microsoft.ML.Tokenizers;

namespace Sdxl.Net.Text;

/// <summary>
/// The CLIP byte-level BPE tokenizer used by both SDXL text encoders, producing the same ids as the Hugging Face
/// <c>CLIPTokenizer</c> that diffusers loads from a model's <c>tokenizer/</c> and <c>tokenizer_2/</c> folders.
/// </summary>
/// <remarks>
/// <para>
/// Encoding follows transformers' slow <c>CLIPTokenizer</c> without ftfy: the text is first split on the added
/// tokens (the special tokens and <c>added_tokens_decoder</c> entries, matched literally), then each remaining span
/// is cleaned, lower-cased and pre-tokenized (see <see cref="ClipTextSplitter"/>), and each pre-token is encoded by
/// byte-level BPE with the <c>&lt;/w&gt;</c> end-of-word suffix. Splitting on added tokens matters for SDXL's
/// <c>tokenizer_2/</c>, whose pad token <c>!</c> is an added token: every <c>!</c> in a prompt becomes id 0 there
/// (diffusers issue #4153), while <c>tokenizer/</c> merges <c>!!!</c> into one BPE token.
/// </para>
/// <para>
/// The BPE merges and vocabulary lookup run on Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/>; text cleanup,
/// lower-casing and pre-tokenization are done here because they need Python semantics that no built-in
/// normalizer or pre-tokenizer offers (code-point classes, Python <c>str.lower()</c>, CJK splitting).
/// </para>
/// <para>Instances are immutable and safe to share between threads.</para>
/// </remarks>
public sealed class ClipTokenizer
{
    private const string VocabFileName = "vocab.json";
    private const string MergesFileName = "merges.txt";
    private const string EndOfWordSuffix = "</w>";

    // transformers' CLIPTokenizer reads at most this many merges (CLIP's 49152-token vocabulary minus the 256 byte
    // symbols and the two special tokens), whatever the file holds.
    private const int MaxMergeCount = 49152 - 256 - 2;

    private readonly BpeTokenizer _bpe;
    private readonly IReadOnlyDictionary<string, int> _vocabulary;
    private readonly KeyValuePair<string, int>[] _addedTokens;
    private Dictionary<int, string>? _tokenTexts;

    private ClipTokenizer(
        BpeTokenizer bpe,
        IReadOnlyDictionary<string, int> vocabulary,
        KeyValuePair<string, int>[] addedTokens,
        int bosTokenId,
        int eosTokenId,
        int padTokenId,
        int maxLength)
    {
        _bpe = bpe;
        _vocabulary = vocabulary;
        _addedTokens = addedTokens;
        BosTokenId = bosTokenId;
        EosTokenId = eosTokenId;
        PadTokenId = padTokenId;
        MaxLength = maxLength;
        CommaTokenId = vocabulary.TryGetValue("," + EndOfWordSuffix, out var comma) ? comma : -1;
    }

    /// <summary>The length of every <see cref="TokenizedPrompt.InputIds"/> sequence (77 for CLIP).</summary>
    public int MaxLength { get; }

    /// <summary>The id of the start-of-text token (<c>&lt;|startoftext|&gt;</c>, 49406 for CLIP).</summary>
    public int BosTokenId { get; }

    /// <summary>The id of the end-of-text token (<c>&lt;|endoftext|&gt;</c>, 49407 for CLIP).</summary>
    public int EosTokenId { get; }

    /// <summary>
    /// The id that fills <see cref="TokenizedPrompt.InputIds"/> after the end-of-text token: 49407 for SDXL's
    /// <c>tokenizer/</c> (pad <c>&lt;|endoftext|&gt;</c>), 0 for <c>tokenizer_2/</c> (pad <c>!</c>).
    /// </summary>
    public int PadTokenId { get; }

    /// <summary>The id of the word-final comma (<c>,&lt;/w&gt;</c>), where long weighted prompts prefer to break; -1 when absent.</summary>
    internal int CommaTokenId { get; }

    /// <summary>
    /// Loads a Hugging Face tokenizer folder: <c>vocab.json</c> and <c>merges.txt</c>, plus the optional
    /// <c>tokenizer_config.json</c> and <c>special_tokens_map.json</c> for the pad token, the model length and the
    /// added tokens.
    /// </summary>
    /// <param name="directory">The folder, e.g. an SDXL model's <c>tokenizer/</c> or <c>tokenizer_2/</c>.</param>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException"><c>vocab.json</c> or <c>merges.txt</c> is missing.</exception>
    /// <exception cref="InvalidDataException">A file is malformed or names a token the vocabulary lacks.</exception>
    public static ClipTokenizer FromDirectory(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (!Directory.Exists(directory))
        {
            throw new DirectoryNotFoundException($"Tokenizer folder '{directory}' does not exist.");
        }

        var settings = ClipTokenizerSettings.Read(directory);
        return Build(Path.Combine(directory, VocabFileName), Path.Combine(directory, MergesFileName), settings);
    }

    /// <summary>Creates a tokenizer from a <c>vocab.json</c> and a <c>merges.txt</c>.</summary>
    /// <param name="vocabJsonPath">The JSON object mapping each token to its id.</param>
    /// <param name="mergesPath">The BPE merges, one <c>left right</c> pair per line, highest priority first.</param>
    /// <param name="padToken">The token that pads sequences to <paramref name="maxLength"/>; must be in the vocabulary.</param>
    /// <param name="maxLength">The encoded sequence length, including the start and end tokens.</param>
    /// <exception cref="FileNotFoundException">A file is missing.</exception>
    /// <exception cref="InvalidDataException">A file is malformed or the pad token is not in the vocabulary.</exception>
    public static ClipTokenizer Create(
        string vocabJsonPath,
        string mergesPath,
        string padToken = ClipTokenizerSettings.DefaultEndOfText,
        int maxLength = ClipTokenizerSettings.DefaultMaxLength)
    {
        ArgumentException.ThrowIfNullOrEmpty(vocabJsonPath);
        ArgumentException.ThrowIfNullOrEmpty(mergesPath);
        ArgumentException.ThrowIfNullOrEmpty(padToken);
        var settings = new ClipTokenizerSettings();
        settings.PadToken = padToken;
        settings.MaxLength = ClipTokenizerSettings.ValidateMaxLength(maxLength, nameof(maxLength));
        return Build(vocabJsonPath, mergesPath, settings);
    }

    /// <summary>
    /// Encodes <paramref name="text"/> to its token ids, without the start and end tokens and without truncation.
    /// </summary>
    public IReadOnlyList<int> EncodeToIds(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 4);
        var preTokens = new List<string>();
        var spanStart = 0;
        for (var i = 0; i < text.Length;)
        {
            var added = MatchAddedToken(text, i);
            if (added < 0)
            {
                i++;
                continue;
            }

            EncodeSpan(text[spanStart..i], ids, preTokens);
            ids.Add(_addedTokens[added].Value);
            i += _addedTokens[added].Key.Length;
            spanStart = i;
        }

        EncodeSpan(spanStart == 0 ? text : text[spanStart..], ids, preTokens);
        return ids;
    }

    /// <summary>
    /// Encodes <paramref name="text"/> as diffusers does for the text encoders:
    /// <c>[BOS] + ids[..(MaxLength - 2)] + [EOS]</c>, then padded with <see cref="PadTokenId"/> to
    /// <see cref="MaxLength"/>.
    /// </summary>
    public TokenizedPrompt Encode(string text) => Pad(EncodeToIds(text));

    /// <summary><c>[BOS] + ids[..(MaxLength - 2)] + [EOS]</c>, padded with <see cref="PadTokenId"/>.</summary>
    internal TokenizedPrompt Pad(IReadOnlyList<int> ids)
    {
        var kept = Math.Min(ids.Count, MaxLength - 2);
        var inputIds = new int[MaxLength];
        inputIds[0] = BosTokenId;
        for (var i = 0; i < kept; i++)
        {
            inputIds[i + 1] = ids[i];
        }

        inputIds[kept + 1] = EosTokenId;
        inputIds.AsSpan(kept + 2).Fill(PadTokenId);
        return new TokenizedPrompt(inputIds, ids.Count, kept);
    }

    /// <summary>
    /// Encodes a prompt in the <see cref="PromptSyntax.Weighted"/> language: parsed with <paramref name="weighting"/>'s
    /// grammar, each piece tokenized on its own, split into 75-token chunks (AUTOMATIC1111's rule: a full chunk breaks
    /// after its last comma when that comma is among its last 20 tokens; <c>BREAK</c> starts a new chunk).
    /// </summary>
    /// <exception cref="ArgumentException">A weight in the prompt is not a number.</exception>
    public IReadOnlyList<PromptChunk> EncodeChunks(string prompt, PromptWeighting weighting = PromptWeighting.Automatic1111)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        return PromptChunker.Chunk(this, PromptParser.Parse(prompt, weighting));
    }

    /// <summary>The vocabulary entry of <paramref name="id"/> (e.g. <c>photo&lt;/w&gt;</c>), or <see langword="null"/> when the vocabulary has no such id.</summary>
    public string? TokenText(int id)
    {
        var texts = _tokenTexts;
        if (texts is null)
        {
            texts = new Dictionary<int, string>(_vocabulary.Count);
            foreach (var (token, tokenId) in _vocabulary)
            {
                texts.TryAdd(tokenId, token);
            }

            foreach (var (token, tokenId) in _addedTokens)
            {
                texts.TryAdd(tokenId, token);
            }

            _tokenTexts = texts;
        }

        return texts.TryGetValue(id, out var text) ? text : null;
    }

    private void EncodeSpan(string span, List<int> ids, List<string> preTokens)
    {
        if (span.Length == 0)
        {
            return;
        }

        preTokens.Clear();
        ClipTextSplitter.Split(span, preTokens);
        foreach (var preToken in preTokens)
        {
            // transformers seeds its BPE cache with the two literal special tokens, so a pre-token equal to one of
            // them (e.g. "<|ENDOFTEXT|>" lower-cased) maps straight to its vocabulary id, without the suffix.
            if (preToken is ClipTokenizerSettings.DefaultStartOfText or ClipTokenizerSettings.DefaultEndOfText &&
                _vocabulary.TryGetValue(preToken, out var specialId))
            {
                ids.Add(specialId);
                continue;
            }

            ids.AddRange(_bpe.EncodeToIds(preToken, considerPreTokenization: false, considerNormalization: false));
        }
    }

    // transformers splits the raw text on its added tokens (a trie: leftmost match, longest first) before anything
    // else. The list is short (three or four tokens), so a linear probe per position is cheapest.
    private int MatchAddedToken(string text, int index)
    {
        var best = -1;
        for (var t = 0; t < _addedTokens.Length; t++)
        {
            var token = _addedTokens[t].Key;
            if (token[0] == text[index] &&
                index + token.Length <= text.Length &&
                (best < 0 || token.Length > _addedTokens[best].Key.Length) &&
                string.CompareOrdinal(text, index, token, 0, token.Length) == 0)
            {
                best = t;
            }
        }

        return best;
    }

    private static ClipTokenizer Build(string vocabPath, string mergesPath, ClipTokenizerSettings settings)
    {
        var vocabulary = ReadVocabulary(vocabPath);
        var merges = ReadMerges(mergesPath);

        int Lookup(string token, string role)
        {
            if (vocabulary.TryGetValue(token, out var id))
            {
                return id;
            }

            foreach (var added in settings.AddedTokens)
            {
                if (added.Key == token)
                {
                    return added.Value;
                }
            }

            throw new InvalidDataException(
                $"The {role} token '{token}' is not in the vocabulary '{vocabPath}'.");
        }

        var bosId = Lookup(settings.BosToken, "start-of-text (bos)");
        var eosId = Lookup(settings.EosToken, "end-of-text (eos)");
        var padId = Lookup(settings.PadToken, "pad");
        var unkId = Lookup(settings.UnkToken, "unknown (unk)");

        // Text matched literally before BPE: CLIP's "<|...|>" special tokens, as CLIP's own pre-tokenization pattern
        // matches them. A pad token that is ordinary text (tokenizer_2's "!") is NOT split out: the reference
        // tokenization of SDXL prompts encodes "!" by BPE. (transformers' slow CLIPTokenizer would split it as an
        // added token, diffusers issue #4153; the reference images follow CLIP's tokenizer.)
        var addedTokens = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var added in settings.AddedTokens)
        {
            if (IsSpecialTokenText(added.Key))
            {
                addedTokens[added.Key] = added.Value;
            }
        }

        addedTokens.TryAdd(settings.BosToken, bosId);
        addedTokens.TryAdd(settings.EosToken, eosId);
        if (IsSpecialTokenText(settings.UnkToken))
        {
            addedTokens.TryAdd(settings.UnkToken, unkId);
        }

        if (IsSpecialTokenText(settings.PadToken))
        {
            addedTokens.TryAdd(settings.PadToken, padId);
        }

        BpeTokenizer bpe;
        try
        {
            bpe = BpeTokenizer.Create(new BpeOptions(vocabulary)
            {
                Merges = merges,
                EndOfWordSuffix = EndOfWordSuffix,
                ByteLevel = true,
                UnknownToken = settings.UnkToken,
            });
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or KeyNotFoundException)
        {
            throw new InvalidDataException(
                $"The vocabulary '{vocabPath}' and merges '{mergesPath}' do not form a BPE model: {ex.Message}", ex);
        }

        return new ClipTokenizer(bpe, vocabulary, [.. addedTokens], bosId, eosId, padId, settings.MaxLength);
    }

    private static Dictionary<string, int> ReadVocabulary(string path)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"The CLIP vocabulary file '{path}' does not exist.", path);
        }

        Dictionary<string, int>? vocabulary;
        try
        {
            using var stream = File.OpenRead(path);
            vocabulary = JsonSerializer.Deserialize<Dictionary<string, int>>(stream);
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException(
                $"The CLIP vocabulary file '{path}' is not a JSON object mapping tokens to integer ids: {ex.Message}", ex);
        }

        if (vocabulary is null || vocabulary.Count == 0)
        {
            throw new InvalidDataException($"The CLIP vocabulary file '{path}' is empty.");
        }

        return vocabulary;
    }

    private static List<string> ReadMerges(string path)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"The CLIP merges file '{path}' does not exist.", path);
        }

        var merges = new List<string>(MaxMergeCount);
        var lineNumber = 0;
        foreach (var rawLine in File.ReadLines(path))
        {
            lineNumber++;
            var line = rawLine.TrimEnd('\r');
            if ((lineNumber == 1 && line.StartsWith("#version", StringComparison.Ordinal)) ||
                string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            var separator = line.IndexOf(' ');
            if (separator <= 0 || separator == line.Length - 1 || line.IndexOf(' ', separator + 1) >= 0)
            {
                throw new InvalidDataException(
                    $"The CLIP merges file '{path}' has an invalid line {lineNumber}: expected two symbols " +
                    $"separated by one space, found '{line}'.");
            }

            merges.Add(line);
            if (merges.Count == MaxMergeCount)
            {
                break;
            }
        }

        return merges;
    }

    private static bool IsSpecialTokenText(string token) =>
        token.Length > 4 && token.StartsWith("<|", StringComparison.Ordinal) && token.EndsWith("|>", StringComparison.Ordinal);
}
