using System.Globalization;
using System.Text;

namespace Sdxl.Net.Imaging;

/// <summary>
/// Writes each image to a file named by a template under a root directory, e.g.
/// <c>out/{timestamp}-{seed}-{index}-{prompt-slug}.png</c>. The extension picks the encoder
/// (<c>.png</c> with the recipe, <c>.jpg</c>/<c>.jpeg</c>, <c>.webp</c>). A batch is written atomically, all or none.
/// </summary>
/// <remarks>
/// <para>Placeholders: <c>{seed}</c> (the image's seed, <c>noseed</c> when it has none), <c>{index}</c> (its index in
/// the batch), <c>{timestamp}</c> (UTC <c>yyyyMMdd-HHmmss-fff</c>, one value per batch) and <c>{prompt-slug}</c>
/// (the prompt lowered to ASCII letters, digits and dashes, at most <see cref="MaxSlugLength"/> characters).</para>
/// <para>Files never land outside <see cref="RootDirectory"/>: the template must be relative, without <c>..</c>
/// segments; substituted values never contain separators or dots that could climb out; and every final path is
/// checked to lie under the root before anything is written.</para>
/// </remarks>
public sealed class ImageFileSink : IImageSink
{
    /// <summary>The default template: <c>{timestamp}-{seed}-{index}-{prompt-slug}.png</c>.</summary>
    public const string DefaultTemplate = "{timestamp}-{seed}-{index}-{prompt-slug}.png";

    private static readonly string[] Placeholders = ["{seed}", "{index}", "{timestamp}", "{prompt-slug}"];
    private readonly string _rootWithSeparator;
    private readonly TimeProvider _timeProvider;

    /// <summary>Creates a sink writing under <paramref name="rootDirectory"/> with names from <paramref name="template"/>.</summary>
    /// <param name="rootDirectory">The folder every file goes under; created on first write if missing.</param>
    /// <param name="template">A relative path template; forward slashes separate sub-folders.</param>
    /// <param name="quality">JPEG/WebP quality, 1 to 100 (ignored for PNG).</param>
    /// <param name="timeProvider">The clock of <c>{timestamp}</c> (default: the system clock).</param>
    /// <exception cref="ArgumentException">The template is rooted, climbs with <c>..</c>, has an unknown placeholder, or an unsupported extension.</exception>
    public ImageFileSink(string rootDirectory, string template = DefaultTemplate, int quality = 90, TimeProvider? timeProvider = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(rootDirectory);
        ArgumentException.ThrowIfNullOrWhiteSpace(template);
        ImageEncoding.CheckQuality(quality, nameof(quality));
        ValidateTemplate(template);
        RootDirectory = Path.TrimEndingDirectorySeparator(Path.GetFullPath(rootDirectory));
        _rootWithSeparator = RootDirectory + Path.DirectorySeparatorChar;
        Template = template;
        Format = ImageEncoding.FormatForExtension(Path.GetExtension(template), nameof(template));
        Quality = quality;
        _timeProvider = timeProvider ?? TimeProvider.System;
    }

    /// <summary>The longest <c>{prompt-slug}</c>, in characters.</summary>
    public const int MaxSlugLength = 48;

    /// <summary>The absolute root folder.</summary>
    public string RootDirectory { get; }

    /// <summary>The file name template.</summary>
    public string Template { get; }

    /// <summary>The format chosen by the template's extension.</summary>
    public ImageFileFormat Format { get; }

    /// <summary>JPEG/WebP quality.</summary>
    public int Quality { get; }

    /// <summary>The absolute path <paramref name="image"/> of <paramref name="result"/> goes to, at <paramref name="timestamp"/>.</summary>
    /// <exception cref="InvalidOperationException">The path would leave <see cref="RootDirectory"/> (never expected; a defence in depth).</exception>
    public string PathFor(GenerationResult result, GeneratedImage image, DateTimeOffset timestamp)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(image);
        var relative = new StringBuilder(Template)
            .Replace("{seed}", image.Seed is { } seed ? seed.ToString(CultureInfo.InvariantCulture) : "noseed")
            .Replace("{index}", image.Index.ToString(CultureInfo.InvariantCulture))
            .Replace("{timestamp}", timestamp.UtcDateTime.ToString("yyyyMMdd-HHmmss-fff", CultureInfo.InvariantCulture))
            .Replace("{prompt-slug}", Slugify(result.Request.Prompt))
            .Replace('/', Path.DirectorySeparatorChar)
            .ToString();
        var full = Path.GetFullPath(Path.Combine(RootDirectory, relative));
        if (!full.StartsWith(_rootWithSeparator, StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"The file name '{relative}' resolves to '{full}', outside the sink's root '{RootDirectory}'.");
        }

        return full;
    }

    /// <summary>
    /// The prompt as a file-name-safe slug: ASCII letters (lowered) and digits, every other run of characters one dash,
    /// no leading or trailing dash, at most <see cref="MaxSlugLength"/> characters; <c>image</c> when nothing is left.
    /// </summary>
    public static string Slugify(string? prompt)
    {
        var slug = new StringBuilder(MaxSlugLength);
        bool dash = false;
        foreach (var c in prompt ?? string.Empty)
        {
            if (slug.Length >= MaxSlugLength)
            {
                break;
            }

            if (char.IsAsciiLetterOrDigit(c))
            {
                if (dash && slug.Length > 0)
                {
                    slug.Append('-');
                }

                dash = false;
                slug.Append(char.ToLowerInvariant(c));
            }
            else
            {
                dash = true;
            }
        }

        if (slug.Length > MaxSlugLength)
        {
            slug.Length = MaxSlugLength;
        }

        var text = slug.ToString().TrimEnd('-');
        return text.Length == 0 ? "image" : text;
    }

    /// <inheritdoc />
    public async ValueTask WriteAsync(GenerationResult result, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(result);
        var timestamp = _timeProvider.GetUtcNow();
        var files = new List<(string, Func<Stream, CancellationToken, Task>)>(result.Images.Count);
        var seen = new Dictionary<string, int>(OperatingSystem.IsWindows() ? StringComparer.OrdinalIgnoreCase : StringComparer.Ordinal);
        foreach (var image in result.Images)
        {
            var path = PathFor(result, image, timestamp);
            if (!seen.TryAdd(path, image.Index))
            {
                throw new InvalidOperationException(
                    $"The template '{Template}' names images {seen[path]} and {image.Index} of the batch both '{path}'; add {{index}} to it.");
            }

            var generated = image;
            files.Add((path, (stream, ct) => ImageEncoding.EncodeAsync(stream, result, generated, Format, Quality, ct)));
        }

        foreach (var directory in seen.Keys.Select(Path.GetDirectoryName).Distinct())
        {
            Directory.CreateDirectory(directory!);
        }

        await AtomicFile.WriteAllAsync(files, cancellationToken).ConfigureAwait(false);
    }

    private static void ValidateTemplate(string template)
    {
        if (Path.IsPathRooted(template) || template.StartsWith('/') || template.StartsWith('\\') || template.Contains(':', StringComparison.Ordinal))
        {
            throw new ArgumentException($"The file name template '{template}' must be a relative path under the sink's root.", nameof(template));
        }

        if (template.Contains('\\', StringComparison.Ordinal))
        {
            throw new ArgumentException($"The file name template '{template}' must separate folders with '/', not '\\'.", nameof(template));
        }

        foreach (var segment in template.Split('/'))
        {
            if (segment.Length == 0 || segment == "." || segment == "..")
            {
                throw new ArgumentException($"The file name template '{template}' has an empty, '.' or '..' segment; files must stay under the sink's root.", nameof(template));
            }

            if (segment.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0)
            {
                throw new ArgumentException($"The file name template '{template}' has a character not allowed in file names in '{segment}'.", nameof(template));
            }
        }

        var rest = template;
        foreach (var placeholder in Placeholders)
        {
            rest = rest.Replace(placeholder, string.Empty, StringComparison.Ordinal);
        }

        int brace = rest.IndexOfAny(['{', '}']);
        if (brace >= 0)
        {
            throw new ArgumentException(
                $"The file name template '{template}' has an unknown placeholder near '{rest[brace..]}'; known: {string.Join(", ", Placeholders)}.", nameof(template));
        }

        if (Path.GetFileNameWithoutExtension(template).Length == 0)
        {
            throw new ArgumentException($"The file name template '{template}' has no file name before its extension.", nameof(template));
        }
    }
}
