using Sdxl.Net.Models;

namespace Sdxl.Cli;

/// <summary><c>sdxl info DIR</c>: components, I/O signatures, dtypes and the recognised variant.</summary>
internal static class InfoCommand
{
    public static int Run(CliArguments options, TextWriter stdout)
    {
        var model = CliApp.ModelPath(options);
        options.RejectUnknown();
        var info = SdxlModelInfo.Inspect(model);
        stdout.WriteLine($"model:        {info.Directory}");
        stdout.WriteLine($"variant:      {info.Variant}");
        stdout.WriteLine($"sizes:        multiples of {info.PixelMultiple} px, default {info.DefaultImageSize}x{info.DefaultImageSize}");
        stdout.WriteLine($"time_ids:     {info.TimeIdsWidth} values{(info.TimeIdsWidth == 5 ? " (original size, crop, aesthetic score)" : " (original size, crop, target size)")}");
        stdout.WriteLine($"unet:         {info.UNetInChannels} input channels{(info.UNetInChannels == 9 ? " (inpainting)" : string.Empty)}");
        stdout.WriteLine($"scheduler:    {info.SchedulerClass ?? "(none)"}");
        if (info.GuidanceEmbeddingDim is { } condDim)
        {
            stdout.WriteLine($"guidance:     LCM UNet: --guidance becomes the guidance embedding (timestep_cond, {condDim} values); no CFG; use --scheduler lcm (--preset lcm)");
        }

        stdout.WriteLine($"vae scaling:  {info.VaeScalingFactor}");
        stdout.WriteLine($"empty negative prompt → zeros: {info.ForceZerosForEmptyPrompt}");
        foreach (var (name, signature) in info.Signatures)
        {
            stdout.WriteLine($"{name}:");
            stdout.WriteLine($"  {signature}");
        }

        return CliApp.Ok;
    }
}
