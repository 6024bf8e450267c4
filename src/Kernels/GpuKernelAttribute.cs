namespace ZeroFL.Kernels;

/// <summary>
/// Marks a static method as an ILGPU kernel: implicitly grouped (first parameter <c>Index1D</c>),
/// or, for the few GPU-only kernels that need shared memory (which ILGPU allows only there),
/// explicitly grouped (no index parameter, launched with a <c>KernelConfig</c>).
/// The PTX compile test finds every kernel through this attribute, so a kernel without it is not
/// proven to build for GPUs.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class GpuKernelAttribute : Attribute
{
}

/// <summary>
/// Marks a kernel that only the CPU accelerator loads: it runs there as ordinary .NET code and may
/// call the Vector256 engines directly (marked <c>[IntrinsicImplementation]</c>, so that ILGPU's
/// front end calls them rather than translating their unsafe code). It is never compiled for a GPU
/// backend (the PTX test skips it, and <see cref="KernelLaunch"/> refuses to load it on one), so
/// it needs no scalar twin.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class CpuKernelAttribute : Attribute
{
}

/// <summary>
/// Marks a SIMD helper that runs as plain .NET code on the CPU accelerator and is redirected to
/// the scalar method named by <see cref="ScalarFallback"/> (same declaring type, same signature)
/// when a GPU backend compiles it. <see cref="SimdRedirects"/> registers every marked helper.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class SimdHelperAttribute(string scalarFallback) : Attribute
{
    /// <summary>Name of the scalar method GPU backends compile instead.</summary>
    public string ScalarFallback { get; } = scalarFallback;
}
