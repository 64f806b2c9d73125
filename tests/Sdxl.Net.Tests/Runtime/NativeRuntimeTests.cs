using Sdxl.Net.Denoising;
using Sdxl.Net.Runtime;

namespace Sdxl.Net.Tests.Runtime;

public sealed class NativeRuntimeTests
{
    [Fact]
    public void A_missing_native_library_names_the_runtime_packages_and_keeps_the_loaders_words()
    {
        // What ONNX Runtime's managed API throws when libonnxruntime is absent: its NativeMethods static
        // constructor fails with DllNotFoundException, surfacing as a TypeInitializationException.
        var loader = new DllNotFoundException("Unable to load shared library 'onnxruntime' or one of its dependencies.");
        var thrown = new TypeInitializationException("Microsoft.ML.OnnxRuntime.NativeMethods", loader);

        Assert.True(NativeRuntime.IsMissingNativeLibrary(thrown));
        var e = NativeRuntime.Missing(thrown);
        Assert.Contains("Sdxl.Net.Runtime.Cpu", e.Message);
        Assert.Contains("Sdxl.Net.Runtime.Cuda", e.Message);
        Assert.Contains("Unable to load shared library 'onnxruntime'", e.Message);
        Assert.Same(thrown, e.InnerException);
    }

    [Fact]
    public void Other_initialisation_failures_are_not_reported_as_a_missing_package()
    {
        Assert.False(NativeRuntime.IsMissingNativeLibrary(new TypeInitializationException("X", new InvalidOperationException("bad state"))));
        Assert.False(NativeRuntime.IsMissingNativeLibrary(new InvalidOperationException()));
    }

    [Fact]
    public void The_native_library_of_the_test_runtime_package_loads()
    {
        // The tests reference Sdxl.Net.Runtime.Cpu, so this must not throw.
        NativeRuntime.EnsureLoaded();
    }

    [Theory]
    // Heun/KDPM2: N steps are 2N − 1 timesteps; diffusers advances its bar when (i + 1) % order == 0 and at the end.
    [InlineData(2, 11, new[] { 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 6 }, 6)]
    [InlineData(2, 1, new[] { 1 }, 1)]
    [InlineData(1, 4, new[] { 1, 2, 3, 4 }, 4)]
    public void Second_order_samplers_report_steps_not_model_evaluations(int order, int evaluations, int[] expected, int total)
    {
        var counter = new StepCounter(order, evaluations);
        Assert.Equal(total, counter.Total);
        for (int i = 0; i < evaluations; i++)
        {
            Assert.Equal(expected[i] == 0 ? null : expected[i], counter.Advance(i));
        }
    }
}
