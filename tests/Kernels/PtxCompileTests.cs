using System.Reflection;
using ILGPU.Runtime;
using ILGPU.Backends;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime.Cuda;
using ZeroFL.Engine.Devices;
using ZeroFL.Kernels;

namespace ZeroFL.Tests.Kernels;

/// <summary>
/// Compiles every <see cref="GpuKernelAttribute"/> kernel to PTX, so a CPU-only CI proves the GPU
/// path builds (the CPU accelerator runs kernels as .NET code and proves nothing about that).
/// </summary>
public sealed class PtxCompileTests
{
    public static IEnumerable<TestCaseData> AllKernels()
    {
        const BindingFlags flags = BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic;
        return typeof(KernelLibrary).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(flags))
            .Where(m => m.GetCustomAttribute<GpuKernelAttribute>() is not null)
            .OrderBy(m => m.DeclaringType!.Name + "." + m.Name, StringComparer.Ordinal)
            .Select(m => new TestCaseData(m).SetArgDisplayNames(m.DeclaringType!.Name + "." + m.Name));
    }

    [TestCaseSource(nameof(AllKernels))]
    public void KernelCompilesToPtx(MethodInfo kernel)
    {
        using var context = ComputeDevice.CreateContext();
        var backend = new PTXBackend(context, CudaArchitecture.SM_80, CudaInstructionSet.ISA_80, null!);
        var entry = kernel.GetParameters().FirstOrDefault()?.ParameterType == typeof(ILGPU.Index1D)
            ? EntryPointDescription.FromImplicitlyGroupedKernel(kernel)
            : EntryPointDescription.FromExplicitlyGroupedKernel(kernel);
        var compiled = backend.Compile(entry, new KernelSpecialization());
        Assert.That(((PTXCompiledKernel)compiled).PTXAssembly, Does.Contain(".entry"));
    }

    [Test]
    public void EveryKernelFamilyHasKernels()
    {
        Assert.That(AllKernels().Count(), Is.GreaterThanOrEqualTo(6));
    }

    [Test]
    public void EverySimdHelperHasAScalarFallback()
    {
        foreach (var (simd, scalar) in SimdRedirects.Pairs)
        {
            Assert.That(scalar.ReturnType, Is.EqualTo(simd.ReturnType), simd.Name);
        }
    }
}
