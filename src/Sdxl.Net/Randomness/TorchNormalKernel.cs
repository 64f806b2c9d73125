namespace Sdxl.Net.Randomness;

/// <summary>
/// The arithmetic PyTorch's CPU <c>randn</c> uses for float32 tensors of 16 or more elements. The two variants
/// draw the same uniforms but round differently (up to about 1.3e-6 apart), so a seed reproduces a picture
/// bit for bit only with the variant the reference machine used.
/// </summary>
public enum TorchNormalKernel
{
    /// <summary>
    /// The AVX2 kernel (float32 Cephes approximations with FMA contraction): what official x86-64 PyTorch builds
    /// dispatch to, and therefore what diffusers produces with a CPU generator on an ordinary PC or server.
    /// </summary>
    Avx2,

    /// <summary>
    /// The portable kernel (C library <c>logf</c>, <c>cosf</c>, <c>sinf</c>): what PyTorch uses on ARM and Apple
    /// silicon, or on x86-64 with <c>ATEN_CPU_CAPABILITY=default</c>. It calls the same C library functions, so it
    /// is bit-exact where those are glibc's (Linux); other C runtimes may differ in the last bit.
    /// </summary>
    Scalar,
}
