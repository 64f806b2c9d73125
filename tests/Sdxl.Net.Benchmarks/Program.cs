using BenchmarkDotNet.Running;
using Sdxl.Net.Benchmarks;

// overhead / soak / gpu-check / few-step / lora-switch / fuzz / scale / serve are plain commands; anything else goes to BenchmarkDotNet
// (e.g. `-- --filter *Guidance*`, `-- --list flat`).
return args.FirstOrDefault() switch
{
    "overhead" => await OverheadCommand.RunAsync(CommandOptions.Parse(args[1..])),
    "soak" => await SoakCommand.RunAsync(CommandOptions.Parse(args[1..])),
    "gpu-check" => await GpuCheckCommand.RunAsync(CommandOptions.Parse(args[1..])),
    "serve" => await ServeCommand.RunAsync(CommandOptions.Parse(args[1..])),
    "lora-switch" => await LoraSwitchCommand.RunAsync(CommandOptions.Parse(args[1..])),
    "few-step" => await FewStepCommand.RunAsync(CommandOptions.Parse(args[1..])),
    "fuzz" => await FuzzCommand.RunAsync(CommandOptions.Parse(args[1..])),
    "scale" => await ScaleCommand.RunAsync(CommandOptions.Parse(args[1..])),
    "scale-run" => await ScaleCommand.RunChildAsync(CommandOptions.Parse(args[1..])),
    "scale-load" => ScaleCommand.RunLoadChild(CommandOptions.Parse(args[1..])),
    _ => RunBenchmarks(args),
};

static int RunBenchmarks(string[] args)
{
    BenchmarkSwitcher.FromAssembly(typeof(GuidanceBenchmarks).Assembly).Run(args);
    return 0;
}
