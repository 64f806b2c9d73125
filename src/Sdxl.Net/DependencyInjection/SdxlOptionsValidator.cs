using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Sdxl.Net.Runtime;

namespace Sdxl.Net.DependencyInjection;

/// <summary>
/// Validates <see cref="SdxlOptions"/> for <c>Microsoft.Extensions.Options</c> (registered by <c>AddSdxl</c>, checked at
/// host start through <c>ValidateOnStart</c>): every problem is reported at once, with relative paths taken from the
/// host's content root.
/// </summary>
public sealed class SdxlOptionsValidator : IValidateOptions<SdxlOptions>
{
    private readonly string? _contentRoot;

    /// <summary>Creates the validator; <paramref name="environment"/> gives the content root relative paths are resolved against.</summary>
    public SdxlOptionsValidator(IHostEnvironment? environment = null) => _contentRoot = environment?.ContentRootPath;

    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, SdxlOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var problems = Problems(options, _contentRoot);
        if (problems.Count == 0)
        {
            return ValidateOptionsResult.Success;
        }

        // Name the options instance of a keyed pipeline ("Sdxl[turbo]:ModelPath …").
        var prefix = string.IsNullOrEmpty(name) ? "Sdxl:" : $"Sdxl[{name}]:";
        return ValidateOptionsResult.Fail(problems.Select(p => p.Replace("Sdxl:", prefix, StringComparison.Ordinal)));
    }

    /// <summary>Every problem with <paramref name="options"/> (empty when valid).</summary>
    internal static IReadOnlyList<string> Problems(SdxlOptions options, string? contentRoot)
    {
        var errors = new List<string>();
        var resolved = options.WithPathsFrom(contentRoot);
        if (string.IsNullOrWhiteSpace(options.ModelPath))
        {
            errors.Add("Sdxl:ModelPath is required: the folder of an SDXL ONNX export.");
        }
        else if (!Directory.Exists(resolved.ModelPath))
        {
            errors.Add($"Sdxl:ModelPath '{resolved.ModelPath}' does not exist.");
        }

        if (options.RefinerPath is not null && !Directory.Exists(resolved.RefinerPath))
        {
            errors.Add($"Sdxl:RefinerPath '{resolved.RefinerPath}' does not exist.");
        }

        if (!(options.HighNoiseFraction > 0 && options.HighNoiseFraction < 1))
        {
            errors.Add($"Sdxl:HighNoiseFraction must be in (0, 1); got {options.HighNoiseFraction}.");
        }

        foreach (var path in resolved.ControlNetPaths ?? [])
        {
            if (string.IsNullOrWhiteSpace(path) || !Directory.Exists(path))
            {
                errors.Add($"Sdxl:ControlNetPaths entry '{path}' does not exist.");
            }
        }

        if (options.IntraOpThreads is < 0 or > ExecutionProviderOptions.MaxIntraOpThreads)
        {
            errors.Add($"Sdxl:IntraOpThreads must be 0 (ONNX Runtime's choice) or from 1 to {ExecutionProviderOptions.MaxIntraOpThreads}; got {options.IntraOpThreads}.");
        }

        try
        {
            var device = ExecutionProviderOptions.Parse(options.Device ?? string.Empty);
            if (options.EnableCudaGraph && device.Kind == ExecutionProviderKind.Cpu)
            {
                errors.Add("Sdxl:EnableCudaGraph needs a cuda or tensorrt Device.");
            }
        }
        catch (FormatException e)
        {
            errors.Add($"Sdxl:Device: {e.Message}");
        }

        if (options.EnableCudaGraph && options.MemoryMode == MemoryMode.LoadPerPhase)
        {
            errors.Add("Sdxl:EnableCudaGraph cannot be combined with MemoryMode LoadPerPhase.");
        }

        return errors;
    }
}
