using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Sdxl.Net;
using Sdxl.Net.Conditioning;
using Sdxl.Net.Imaging;
using Sdxl.Net.Runtime;
using Sdxl.Net.Text;

namespace Sdxl.Cli;

/// <summary>The <c>sdxl</c> command line: generate, tokenize, schedule, info, buckets, demo.</summary>
internal static class CliApp
{
    public const int Ok = 0;
    public const int RuntimeFailure = 1;
    public const int UsageFailure = 2;

    /// <summary>Interrupted by SIGINT (Ctrl+C): 128 + 2, as shells report it.</summary>
    public const int Interrupted = 130;

    /// <summary>Terminated by SIGTERM: 128 + 15.</summary>
    public const int Terminated = 143;

    private static readonly HashSet<string> Flags = new(StringComparer.Ordinal) { "verbose", "json", "help", "karras", "vae-tiling", "cuda-graph", "guess-mode", "no-prepack" };
    private static readonly HashSet<string> Repeatable = new(ControlNetOptions.Repeatable, StringComparer.Ordinal) { "embedding", "lora" };

    // synth's --refiner is a switch; generate's --refiner takes a folder.
    private static readonly HashSet<string> SynthFlags = new(StringComparer.Ordinal) { "verbose", "help", "refiner" };

    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr)
    {
        bool verbose = args.Contains("--verbose");
        if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
        {
            stdout.WriteLine(args.Length > 1 && CliHelp.ForCommand(args[1]) is { } commandHelp ? commandHelp : Usage);
            return args.Length == 0 ? UsageFailure : Ok;
        }

        if (args[0] is "--version" or "version")
        {
            stdout.WriteLine(CliHelp.Version);
            return Ok;
        }

        args = CliHelp.ExpandShortOptions(args, Flags);
        // SIGINT (Ctrl+C) and SIGTERM cancel the run: model loading stops between components, generation between
        // steps, and a file being written is removed. A second signal is left to the runtime, which ends the process.
        using var cts = new CancellationTokenSource();
        int signal = 0;
        void OnSignal(PosixSignalContext context)
        {
            if (Interlocked.CompareExchange(ref signal, (int)context.Signal, 0) == 0)
            {
                context.Cancel = true;
                cts.Cancel();
            }
        }

        using var onInterrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var onTerminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);

        try
        {
            var command = args[0];
            var rest = args.Skip(1).ToArray();
            if (command is "info" or "download" && rest.Length > 0 && !rest[0].StartsWith("--", StringComparison.Ordinal))
            {
                rest = [command == "info" ? "--model" : "--repo", .. rest];
            }
            else if (command == "canny")
            {
                rest = CannyCommand.Positional(rest);
            }

            if (command == "lora")
            {
                return LoraCommand.Run(rest, stdout);
            }

            if (rest.Contains("--help") || rest.Contains("-h"))
            {
                stdout.WriteLine(CliHelp.ForCommand(command) ?? Usage);
                return Ok;
            }

            var options = new CliArguments(rest, command == "synth" ? SynthFlags : Flags, Repeatable);

            return command switch
            {
                "generate" or "img2img" or "inpaint" => await GenerateCommand.RunAsync(options, command, stdout, stderr, cts.Token).ConfigureAwait(false),
                "tokenize" => Tokenize(options, stdout),
                "schedule" => ScheduleCommand.Run(options, stdout),
                "info" => InfoCommand.Run(options, stdout),
                "buckets" => Buckets(options, stdout),
                "canny" => CannyCommand.Run(options, stdout),
                "demo" => await DemoCommand.RunAsync(options, stdout, stderr, cts.Token).ConfigureAwait(false),
                "synth" => SynthCommand.Run(options, stdout, stderr, cts.Token),
                "download" => await HubCommands.DownloadAsync(options, stdout, stderr, cts.Token).ConfigureAwait(false),
                "models" => HubCommands.Models(options, stdout),
                _ => throw new UsageException($"unknown command '{command}' (commands: generate, img2img, inpaint, canny, tokenize, schedule, info, buckets, demo, synth, download, models, lora; see --help)"),
            };
        }
        catch (UsageException e)
        {
            stderr.WriteLine($"sdxl: error: {OneLine(e.Message)}");
            return UsageFailure;
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            stderr.WriteLine(signal == (int)PosixSignal.SIGTERM ? "sdxl: terminated; nothing was written" : "sdxl: interrupted; nothing was written");
            return signal == (int)PosixSignal.SIGTERM ? Terminated : Interrupted;
        }
        catch (OperationCanceledException)
        {
            stderr.WriteLine("sdxl: cancelled");
            return RuntimeFailure;
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            // Invalid values caught by the library's request validation are usage errors too. The library's messages
            // already name the value; drop .NET's "(Parameter 'x') Actual value was y." suffix.
            var message = e.Message;
            int suffix = message.IndexOf(" (Parameter '", StringComparison.Ordinal);
            if (e is ArgumentException && suffix > 0)
            {
                message = message[..suffix];
            }

            stderr.WriteLine($"sdxl: error: {OneLine(message)}");
            if (verbose)
            {
                stderr.WriteLine(e);
            }

            return UsageFailure;
        }
        catch (Exception e)
        {
            stderr.WriteLine($"sdxl: failed: {OneLine(e.Message)}");
            if (verbose)
            {
                stderr.WriteLine(e);
            }

            return RuntimeFailure;
        }
    }

    /// <summary>The message on one line: native and parser messages sometimes span several.</summary>
    internal static string OneLine(string message) =>
        string.Join(' ', message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    /// <summary>The <c>--model</c> folder, or the cached folder of an ORG/NAME Hugging Face repository id.</summary>
    internal static string ModelPath(CliArguments options) => HubCommands.ResolveModel(options.Required("model"), "model");

    /// <summary>Reads <c>--prompt-syntax</c> and <c>--prompt-weighting</c> (falling back to a recipe's values).</summary>
    internal static (PromptSyntax Syntax, PromptWeighting Weighting) PromptSyntaxOptions(CliArguments options, GenerationRequest? fromImage = null)
    {
        var syntax = options.Optional("prompt-syntax") switch
        {
            null => fromImage?.PromptSyntax ?? PromptSyntax.Plain,
            "plain" => PromptSyntax.Plain,
            "weighted" => PromptSyntax.Weighted,
            var other => throw new UsageException($"--prompt-syntax must be plain or weighted; got '{other}'"),
        };
        var weightingText = options.Optional("prompt-weighting");
        var weighting = weightingText switch
        {
            null => fromImage?.PromptWeighting ?? PromptWeighting.Automatic1111,
            "a1111" => PromptWeighting.Automatic1111,
            "no-mean-restore" => PromptWeighting.NoMeanRestore,
            "comfyui" => PromptWeighting.ComfyUI,
            var other => throw new UsageException($"--prompt-weighting must be a1111, no-mean-restore or comfyui; got '{other}'"),
        };
        if (weightingText is not null && syntax != PromptSyntax.Weighted)
        {
            throw new UsageException("--prompt-weighting applies to --prompt-syntax weighted");
        }

        return (syntax, weighting);
    }

    private static int Tokenize(CliArguments options, TextWriter stdout)
    {
        var model = ModelPath(options);
        var prompt = options.Required("prompt");
        bool json = options.Flag("json");
        var (syntax, weighting) = PromptSyntaxOptions(options);
        options.RejectUnknown();
        var tokenizers = new List<(string Name, ClipTokenizer Tokenizer)>();
        foreach (var name in new[] { "tokenizer", "tokenizer_2" })
        {
            var dir = Path.Combine(model, name);
            if (Directory.Exists(dir))
            {
                tokenizers.Add((name, ClipTokenizer.FromDirectory(dir)));
            }
        }

        if (tokenizers.Count == 0)
        {
            throw new UsageException($"--model: '{model}' has neither tokenizer/ nor tokenizer_2/");
        }

        if (syntax == PromptSyntax.Weighted)
        {
            return TokenizeWeighted(tokenizers, prompt, weighting, json, stdout);
        }

        var results = tokenizers.Select(t => (t.Name, Tokens: t.Tokenizer.Encode(prompt))).ToList();
        if (json)
        {
            var doc = new Dictionary<string, object>();
            foreach (var (name, tokens) in results)
            {
                doc[name] = new Dictionary<string, object>
                {
                    ["input_ids"] = tokens.InputIds,
                    ["token_count"] = tokens.TokenCount,
                    ["truncated"] = tokens.Truncated,
                };
            }

            stdout.WriteLine(JsonSerializer.Serialize(doc));
            return Ok;
        }

        foreach (var (name, tokens) in results)
        {
            stdout.WriteLine($"{name}: {tokens.TokenCount} tokens{(tokens.Truncated ? $" (truncated to {tokens.KeptTokenCount})" : string.Empty)}");
            stdout.WriteLine($"  ids: {string.Join(' ', tokens.InputIds)}");
        }

        return Ok;
    }

    // Weighted syntax: each tokenizer's chunks, with every prompt token's text and weight.
    private static int TokenizeWeighted(List<(string Name, ClipTokenizer Tokenizer)> tokenizers, string prompt, PromptWeighting weighting, bool json, TextWriter stdout)
    {
        var doc = new Dictionary<string, object>();
        foreach (var (name, tokenizer) in tokenizers)
        {
            var chunks = tokenizer.EncodeChunks(prompt, weighting);
            if (json)
            {
                doc[name] = new Dictionary<string, object>
                {
                    ["chunks"] = chunks.Select(c => new Dictionary<string, object>
                    {
                        ["input_ids"] = c.InputIds,
                        ["weights"] = c.Weights,
                        ["token_count"] = c.TokenCount,
                        ["tokens"] = c.InputIds.Skip(1).Take(c.TokenCount).Select(id => tokenizer.TokenText(id) ?? "?").ToArray(),
                    }).ToArray(),
                };
                continue;
            }

            stdout.WriteLine($"{name}: {chunks.Count} chunk(s), {chunks.Sum(c => c.TokenCount)} tokens");
            for (int k = 0; k < chunks.Count; k++)
            {
                var c = chunks[k];
                var tokens = Enumerable.Range(1, c.TokenCount).Select(i =>
                {
                    var text = (tokenizer.TokenText(c.InputIds[i]) ?? "?").Replace("</w>", string.Empty, StringComparison.Ordinal);
                    return c.Weights[i] == 1f ? text : string.Create(CultureInfo.InvariantCulture, $"{text}:{c.Weights[i]:0.###}");
                });
                stdout.WriteLine($"  chunk {k + 1} ({c.TokenCount} tokens): {string.Join(' ', tokens)}");
                stdout.WriteLine($"    ids: {string.Join(' ', c.InputIds)}");
            }
        }

        if (json)
        {
            stdout.WriteLine(JsonSerializer.Serialize(doc));
        }

        return Ok;
    }

    private static int Buckets(CliArguments options, TextWriter stdout)
    {
        var width = options.Int("width", 1, 65536);
        var height = options.Int("height", 1, 65536);
        options.RejectUnknown();
        if (width is { } w && height is { } h)
        {
            var nearest = AspectRatioBuckets.Nearest(w, h);
            stdout.WriteLine($"{nearest.Width}x{nearest.Height} (width x height)");
            return Ok;
        }

        foreach (var b in AspectRatioBuckets.All)
        {
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{b.Width,5} x {b.Height,-5} ratio {b.AspectRatio:0.000}"));
        }

        return Ok;
    }

    public const string Usage = """
        sdxl — Stable Diffusion XL on ONNX Runtime

        Commands:
          generate  --model DIR --prompt TEXT [--prompt-2 TEXT] [--negative-prompt TEXT] [--negative-prompt-2 TEXT]
                    [--width W (1024)] [--height H (1024)] [--steps N (50)] [--guidance G (5)] [--guidance-rescale R] [--scheduler NAME]
                    [--original-size HxW] [--crop TOP,LEFT] [--target-size HxW]
                    [--negative-original-size HxW] [--negative-crop TOP,LEFT] [--negative-target-size HxW]
                    [--timestep-spacing leading|trailing|linspace] [--karras]
                    [--batch N] [--seed S | --seeds S1,S2,...] [--latents FILE.npy] [--device cpu|cuda[:N]|tensorrt[:N]]
                    [--refiner DIR] [--high-noise-fraction F] [--aesthetic-score A] [--negative-aesthetic-score A]
                    [--memory-mode keep|per-phase] [--no-prepack] [--vae-tiling] [--cuda-graph]
                    [--lora FILE[:WEIGHT]]... (repeatable; weight 1 when omitted, negative allowed)
                    [--prompt-syntax plain|weighted] [--prompt-weighting a1111|no-mean-restore|comfyui] [--clip-skip N]
                    [--embedding FILE.safetensors[:TOKEN]]... (SDXL textual inversion; TOKEN defaults to the file name)
                    [--preset turbo|lightning-4|lightning-8|lcm|hyper-8] [--eta G]
                    [--timesteps T1,T2,... | --sigmas S1,S2,...,0]
                    [--preview-every N --preview-dir DIR [--preview-kind latent|taesd] [--taesd DIR] [--preview-size PX]]
                    [--controlnet DIR --control-image FILE [--control-scale S] [--control-start A] [--control-end B]]...
                    [--guess-mode]  (repeat the ControlNet group per net; matched by position; see docs/controlnet.md)
                    [--from-image FILE.png] --output|-o FILE.png|.jpg|.webp|.npy [--verbose]
          img2img   --model DIR --image FILE [--strength S (0.3)] [--resize stretch|crop|pad] [--vae-sampling sample|mean]
                    and the options of generate;
                    --width/--height are optional and resize the image (default: the image's own size)
          inpaint   --model DIR --image FILE --mask FILE [--strength S (0.9999)] and the options of img2img
                    (white mask pixels are repainted; 4-channel UNets blend, 9-channel inpainting UNets are fed the mask)
          canny     IN OUT.png [--low 100] [--high 200]
                    (a canny-edge control image, as OpenCV's cv2.Canny in diffusers' examples)
          tokenize  --model DIR --prompt TEXT [--prompt-syntax plain|weighted] [--prompt-weighting ...] [--json]
                    (weighted: the 75-token chunks with each token's text and weight)
          schedule  --model DIR [--scheduler NAME] [--timestep-spacing leading|trailing|linspace] [--karras]
                    --steps N [--strength S] [--json]
          info      DIR | --model DIR
          buckets   [--width W --height H]
          lora inspect FILE [--model DIR]
                    (format, ranks, alphas; with --model the matched and unmatched modules)
          demo      [--output FILE.png (sdxl-demo.png in the temp folder)] [--steps N] [--seed S]
                    (writes a tiny random-weight model and runs it: the picture is noise)
          synth     --out DIR [--size tiny|small|full] [--dtype fp32|fp16] [--refiner]
                    (writes a random-weight folder; full = SDXL's real structure and size, ~13.9 GB fp32 / 7 GB fp16)
          download  ORG/NAME [--revision R] [--variant fp16] [--cache-dir DIR]
                    (the ONNX files of a Hugging Face repository into the huggingface_hub cache; prints the folder)
          models    [--cache-dir DIR] [--json]   (the models in that cache, sizes and ONNX layouts)

        Models: DIR may also be ORG/NAME, a repository in the Hugging Face cache (HF_HUB_CACHE, HF_HOME);
          HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE=1 are honoured as by huggingface_hub.

        Schedulers (--scheduler): euler, euler-karras, euler-a, heun, dpmpp-2m, dpmpp-2m-karras, dpmpp-2m-sde,
          dpmpp-2m-sde-karras, dpmpp-2s, unipc, ddim, ddpm, kdpm2, kdpm2-a, lms, pndm, lcm, tcd,
          euler-trailing, euler-a-trailing, ddim-trailing
          (default: the class in the model's scheduler/scheduler_config.json).
        Prompts: plain (default) is diffusers' reading, cut after 75 tokens. weighted is AUTOMATIC1111's language:
          (x) x1.1, [x] /1.1, (x:1.3), BREAK, any length in 75-token chunks; see docs/prompts.md.
        Few-step models: --preset sets --steps, --guidance and --scheduler (explicit flags win); an LCM UNet takes
          --guidance as its guidance embedding; --eta reaches ddim and tcd (default 0, as diffusers' pipeline);
          --timesteps (euler, lcm, tcd) or --sigmas (euler, final sigma included) set the step count.
        Sizes: --original-size/--target-size are HEIGHTxWIDTH, as diffusers' (height, width) tuples.

        sdxl --version prints the version; sdxl COMMAND --help (or sdxl help COMMAND) the options of one command.
        Exit codes: 0 success, 1 runtime failure, 2 invalid arguments, 130 interrupted (Ctrl+C), 143 terminated (SIGTERM).
        """;
}
