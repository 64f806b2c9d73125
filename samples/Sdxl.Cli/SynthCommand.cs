using System.Diagnostics;
using System.Globalization;
using Sdxl.Net.Synthetic;
using Sdxl.Net.Synthetic.Export;

namespace Sdxl.Cli;

/// <summary>
/// <c>sdxl synth</c>: writes a random-weight SDXL folder that every other command opens like an export. <c>tiny</c> and
/// <c>small</c> are the fast stand-in networks of the tests and benchmarks; <c>full</c> has SDXL's real structure and
/// size (a 2.57 B-parameter UNet, CLIP ViT-L and bigG, the SDXL VAE; about 13.9 GB in fp32), for memory and load-time
/// measurements.
/// </summary>
internal static class SynthCommand
{
    public static int Run(CliArguments options, TextWriter stdout, TextWriter stderr, CancellationToken ct)
    {
        var size = options.Optional("size") ?? "tiny";
        var output = options.Optional("out") ?? options.Required("output");
        var dtype = options.Optional("dtype") ?? "fp32";
        bool refiner = options.Flag("refiner");
        options.RejectUnknown();
        if (dtype is not ("fp32" or "fp16"))
        {
            throw new UsageException($"--dtype must be fp32 or fp16; got '{dtype}'");
        }

        var parent = Path.GetDirectoryName(Path.GetFullPath(output));
        if (parent is null || !Directory.Exists(parent))
        {
            throw new UsageException($"--out: the parent folder does not exist: '{parent}'");
        }

        if (Directory.Exists(output) && Directory.EnumerateFileSystemEntries(output).Any())
        {
            throw new UsageException($"--out: the folder is not empty: '{output}' (synth writes a new model folder)");
        }

        bool float16 = dtype == "fp16";
        var watch = Stopwatch.StartNew();
        switch (size)
        {
            case "tiny":
            case "small":
                var baseOptions = size == "small" ? SyntheticModelOptions.Small : new SyntheticModelOptions();
                SyntheticSdxlModel.Write(output, baseOptions with { Refiner = refiner, Float16 = float16 });
                stdout.WriteLine($"wrote a {size} synthetic {(refiner ? "refiner" : "base")} folder ({dtype} I/O) to {output}");
                break;
            case "full":
                var architecture = refiner ? SdxlArchitecture.Refiner : SdxlArchitecture.Base;
                var counts = ExportedSdxlModel.CountParameters(architecture);
                long total = counts.Values.Sum();
                long bytes = total * (float16 ? 2 : 4);
                var free = new DriveInfo(Path.GetPathRoot(Path.GetFullPath(parent))!).AvailableFreeSpace;
                if (free < bytes + (1L << 30))
                {
                    throw new UsageException(string.Create(CultureInfo.InvariantCulture,
                        $"--out: {bytes / 1e9:0.0} GB needed and {free / 1e9:0.0} GB free on that disk"));
                }

                stderr.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"writing SDXL {(refiner ? "refiner" : "base")}-shaped weights: {total / 1e9:0.00} B parameters, {bytes / 1e9:0.0} GB ({dtype})"));
                ct.ThrowIfCancellationRequested();
                var written = ExportedSdxlModel.Write(output, new ExportedModelOptions { Architecture = architecture, Float16 = float16 },
                    new Progress<string>(component => stderr.WriteLine($"  {component}")));
                foreach (var (component, count) in written)
                {
                    stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{component,-15} {count,15:N0} parameters"));
                }

                break;
            default:
                throw new UsageException($"--size must be tiny, small or full; got '{size}'");
        }

        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"done in {watch.Elapsed.TotalSeconds:0.0} s"));
        return CliApp.Ok;
    }
}
