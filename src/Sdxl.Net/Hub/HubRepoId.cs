using System.Text.RegularExpressions;

namespace Sdxl.Net.Hub;

/// <summary>Repository ids (<c>org/name</c>) and their cache folder names (<c>models--org--name</c>).</summary>
internal static partial class HubRepoId
{
    /// <summary>
    /// The Hub's rule for ids (huggingface_hub validate_repo_id), restricted to the <c>org/name</c> form: a bare name
    /// could as well be a folder that does not exist, and SDXL repositories all have an owner.
    /// </summary>
    [GeneratedRegex(@"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,95}/[A-Za-z0-9_][A-Za-z0-9_.\-]{0,95}$")]
    private static partial Regex Pattern();

    public static bool IsValid(string value) =>
        Pattern().IsMatch(value) && !value.Contains("--", StringComparison.Ordinal) && !value.Contains("..", StringComparison.Ordinal)
        && !value.EndsWith(".git", StringComparison.Ordinal);

    public static void Validate(string repoId)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(repoId);
        if (!IsValid(repoId))
        {
            throw new ArgumentException($"'{repoId}' is not a Hugging Face repository id: expected owner/name (letters, digits, '-', '_', '.'; no '--' or '..'), e.g. stabilityai/stable-diffusion-xl-base-1.0.", nameof(repoId));
        }
    }

    /// <summary><c>models--org--name</c>, as huggingface_hub's repo_folder_name.</summary>
    public static string FolderName(string repoId) => "models--" + repoId.Replace("/", "--", StringComparison.Ordinal);

    /// <summary>The repository id of a cache folder name, or null when the folder is not a model repository.</summary>
    public static string? FromFolderName(string folder)
    {
        const string prefix = "models--";
        if (!folder.StartsWith(prefix, StringComparison.Ordinal))
        {
            return null;
        }

        var id = folder[prefix.Length..].Replace("--", "/", StringComparison.Ordinal);
        return id.Length > 0 ? id : null;
    }

    /// <summary>A full 40-digit commit hash (immutable, so its snapshot never changes).</summary>
    [GeneratedRegex("^[0-9a-f]{40}$")]
    public static partial Regex CommitHash();
}
