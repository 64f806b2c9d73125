using Sdxl.Net.Schedulers;
using Xunit;

namespace Sdxl.Net.Tests.Schedulers;

/// <summary>The catalog names and diffusers class names of the KDPM2, LMS, PNDM and LCM samplers.</summary>
public sealed class MultistepCatalogTests
{
    [Theory]
    [InlineData("kdpm2", "KDPM2DiscreteScheduler", typeof(KDpm2DiscreteScheduler))]
    [InlineData("kdpm2-a", "KDPM2AncestralDiscreteScheduler", typeof(KDpm2AncestralDiscreteScheduler))]
    [InlineData("lms", "LMSDiscreteScheduler", typeof(LmsDiscreteScheduler))]
    [InlineData("pndm", "PNDMScheduler", typeof(PndmScheduler))]
    [InlineData("lcm", "LCMScheduler", typeof(LcmScheduler))]
    public void Names_and_class_names_create_the_sampler(string name, string className, Type type)
    {
        var scheduler = SchedulerCatalog.Default.Create(name, SchedulerConfig.SdxlBase);
        Assert.IsType(type, scheduler);
        Assert.Equal(name, scheduler.Name);
        Assert.IsType(type, SchedulerCatalog.Default.FromConfig(SchedulerConfig.SdxlBase.With("_class_name", className)));
    }
}
