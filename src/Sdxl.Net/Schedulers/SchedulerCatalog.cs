using System.Collections.Immutable;

namespace Sdxl.Net.Schedulers;

/// <summary>
/// Maps short sampler names (<c>euler</c>, <c>euler-a</c>, ...) and diffusers class names to scheduler factories.
/// </summary>
/// <remarks>
/// Instances are immutable: <see cref="With"/> returns a new catalog, so <see cref="Default"/> can be shared freely.
/// Every factory receives the model's <c>scheduler_config.json</c>, so swapping samplers keeps the model's beta
/// schedule and spacing exactly as <c>Cls.from_config(pipe.scheduler.config)</c> does in diffusers.
/// </remarks>
public sealed class SchedulerCatalog
{
    private readonly ImmutableDictionary<string, Func<SchedulerConfig, IScheduler>> _byName;
    private readonly ImmutableDictionary<string, Func<SchedulerConfig, IScheduler>> _byClass;

    private SchedulerCatalog(
        ImmutableDictionary<string, Func<SchedulerConfig, IScheduler>> byName,
        ImmutableDictionary<string, Func<SchedulerConfig, IScheduler>> byClass)
    {
        _byName = byName;
        _byClass = byClass;
    }

    /// <summary>The built-in samplers.</summary>
    public static SchedulerCatalog Default { get; } = CreateDefault();

    /// <summary>The registered sampler names, sorted.</summary>
    public IReadOnlyList<string> Names => _byName.Keys.Order(StringComparer.Ordinal).ToArray();

    /// <summary>The diffusers class names <see cref="FromConfig"/> understands, sorted.</summary>
    public IReadOnlyList<string> ClassNames => _byClass.Keys.Order(StringComparer.Ordinal).ToArray();

    /// <summary>Creates the sampler registered as <paramref name="name"/> (case-insensitive) on top of <paramref name="config"/>.</summary>
    /// <exception cref="ArgumentException">No sampler has that name; the message lists the known names.</exception>
    public IScheduler Create(string name, SchedulerConfig config)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(config);
        if (!_byName.TryGetValue(name, out var factory))
        {
            throw new ArgumentException($"Unknown scheduler '{name}'. Known schedulers: {string.Join(", ", Names)}.", nameof(name));
        }

        return factory(config);
    }

    /// <summary>Creates the scheduler named by the configuration's <c>_class_name</c>, as diffusers' pipeline loading does.</summary>
    /// <exception cref="NotSupportedException">The class is missing or not supported; the message lists the supported classes.</exception>
    public IScheduler FromConfig(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var className = config.ClassName
            ?? throw new NotSupportedException($"The scheduler configuration has no '_class_name'. Supported classes: {string.Join(", ", ClassNames)}.");
        if (!_byClass.TryGetValue(className, out var factory))
        {
            throw new NotSupportedException($"Scheduler class '{className}' is not supported. Supported classes: {string.Join(", ", ClassNames)}.");
        }

        return factory(config);
    }

    /// <summary>Returns a catalog with <paramref name="name"/> registered (replacing any sampler of that name).</summary>
    /// <param name="name">The short name, matched case-insensitively.</param>
    /// <param name="factory">Creates the sampler from the model's scheduler configuration.</param>
    /// <param name="className">Optionally, a diffusers <c>_class_name</c> that <see cref="FromConfig"/> should map to this factory.</param>
    public SchedulerCatalog With(string name, Func<SchedulerConfig, IScheduler> factory, string? className = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(factory);
        return new SchedulerCatalog(
            _byName.SetItem(name, factory),
            className is null ? _byClass : _byClass.SetItem(className, factory));
    }

    private static SchedulerCatalog CreateDefault()
    {
        var byName = ImmutableDictionary.CreateBuilder<string, Func<SchedulerConfig, IScheduler>>(StringComparer.OrdinalIgnoreCase);
        var byClass = ImmutableDictionary.CreateBuilder<string, Func<SchedulerConfig, IScheduler>>(StringComparer.Ordinal);

        void Add(string name, string? className, Func<SchedulerConfig, IScheduler> factory)
        {
            byName[name] = factory;
            if (className is not null)
            {
                byClass[className] = factory;
            }
        }

        // The config passed in is the model's; a sampler name only switches class and the options the name implies.
        Add("euler", "EulerDiscreteScheduler", c => new EulerDiscreteScheduler(c));
        Add("euler-karras", null, c => new EulerDiscreteScheduler(c.With("use_karras_sigmas", true)));
        Add("euler-a", "EulerAncestralDiscreteScheduler", c => new EulerAncestralDiscreteScheduler(c));
        Add("ddim", "DDIMScheduler", c => new DdimScheduler(c));
        Add("ddpm", "DDPMScheduler", c => new DdpmScheduler(c));
        Add("heun", "HeunDiscreteScheduler", c => new HeunDiscreteScheduler(c));
        Add("kdpm2", "KDPM2DiscreteScheduler", c => new KDpm2DiscreteScheduler(c));
        Add("kdpm2-a", "KDPM2AncestralDiscreteScheduler", c => new KDpm2AncestralDiscreteScheduler(c));
        Add("lms", "LMSDiscreteScheduler", c => new LmsDiscreteScheduler(c));
        Add("pndm", "PNDMScheduler", c => new PndmScheduler(c));
        Add("lcm", "LCMScheduler", c => new LcmScheduler(c));
        Add("tcd", "TCDScheduler", c => new TcdScheduler(c));

        // Trailing spacing, as the few-step models (SDXL-Turbo, -Lightning, Hyper-SD) are meant to be sampled.
        Add("euler-trailing", null, c => new EulerDiscreteScheduler(c.With("timestep_spacing", "trailing")));
        Add("euler-a-trailing", null, c => new EulerAncestralDiscreteScheduler(c.With("timestep_spacing", "trailing")));
        Add("ddim-trailing", null, c => new DdimScheduler(c.With("timestep_spacing", "trailing")));

        // DPM-Solver++ and UniPC: a name fixes the algorithm and order it stands for, the model config keeps the rest.
        static SchedulerConfig DpmPlusPlus(SchedulerConfig c, string algorithm) => c.With("algorithm_type", algorithm).With("solver_order", 2.0);
        Add("dpmpp-2m", null, c => new DpmSolverMultistepScheduler(DpmPlusPlus(c, "dpmsolver++")));
        Add("dpmpp-2m-karras", null, c => new DpmSolverMultistepScheduler(DpmPlusPlus(c, "dpmsolver++").With("use_karras_sigmas", true)));
        Add("dpmpp-2m-sde", null, c => new DpmSolverMultistepScheduler(DpmPlusPlus(c, "sde-dpmsolver++")));
        Add("dpmpp-2m-sde-karras", null, c => new DpmSolverMultistepScheduler(DpmPlusPlus(c, "sde-dpmsolver++").With("use_karras_sigmas", true)));
        Add("dpmpp-2s", null, c => new DpmSolverSinglestepScheduler(DpmPlusPlus(c, "dpmsolver++")));
        Add("dpmpp-singlestep", null, c => new DpmSolverSinglestepScheduler(DpmPlusPlus(c, "dpmsolver++")));
        Add("unipc", "UniPCMultistepScheduler", c => new UniPcMultistepScheduler(c));

        // Loading a model whose config names a DPM-Solver class uses that config's own algorithm and order.
        byClass["DPMSolverMultistepScheduler"] = c => new DpmSolverMultistepScheduler(c);
        byClass["DPMSolverSinglestepScheduler"] = c => new DpmSolverSinglestepScheduler(c);
        return new SchedulerCatalog(byName.ToImmutable(), byClass.ToImmutable());
    }
}
