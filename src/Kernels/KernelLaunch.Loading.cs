using System.Reflection;
using ILGPU;
using ILGPU.Backends;
using ILGPU.Backends.EntryPoints;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>What a device can run beyond the kernels every backend takes.</summary>
/// <param name="DynamicSharedMemory">
/// Whether kernels may use dynamic group shared memory (false for Mesa rusticl, which aborts the
/// process on ILGPU's form of it).
/// </param>
public readonly record struct KernelFeatures(bool DynamicSharedMemory)
{
    /// <summary>Everything ILGPU offers (CUDA, native OpenCL, the CPU accelerator).</summary>
    public static KernelFeatures All => new(DynamicSharedMemory: true);
}

/// <summary>A kernel the device cannot run, refused when it loads (before any launch).</summary>
public sealed class KernelNotSupportedException(string message) : NotSupportedException(message);

/// <summary>
/// Kernel loading. Every family loads its kernels through these methods, which compile the kernel
/// for the accelerator, check what it needs against <see cref="Features"/> and only then build it
/// on the device and bind it to the default stream. A kernel the device cannot take (dynamic shared
/// memory on rusticl) is a <see cref="KernelNotSupportedException"/> when the family loads, so it
/// can never be launched there.
/// </summary>
public sealed partial class KernelLaunch
{
    /// <summary>What the device can run; checked for every kernel that loads.</summary>
    public KernelFeatures Features { get; }

    private readonly List<string> loaded = [];

    /// <summary>Every kernel loaded through this policy, as "Type.Method", in load order.</summary>
    public IReadOnlyList<string> Loaded => loaded;

    /// <summary>
    /// Compiles <paramref name="kernel"/> (implicitly grouped unless <paramref name="grouped"/>),
    /// refuses it if it needs a feature the device lacks, and returns its launcher.
    /// </summary>
    private TLauncher LoadChecked<TLauncher>(Delegate kernel, bool grouped)
        where TLauncher : Delegate
    {
        var method = kernel.Method;
        if (!IsCpu && method.GetCustomAttribute<CpuKernelAttribute>() is not null)
        {
            throw new KernelNotSupportedException(
                $"kernel {method.DeclaringType?.Name}.{method.Name} is for the CPU accelerator only and cannot load on {Accelerator.Name}");
        }
        var entry = grouped
            ? EntryPointDescription.FromExplicitlyGroupedKernel(method)
            : EntryPointDescription.FromImplicitlyGroupedKernel(method);
        var compiled = Accelerator.GetBackend().Compile(entry, default);
        Refuse(compiled, method);
        var kernelOnDevice = grouped ? Accelerator.LoadKernel(compiled) : Accelerator.LoadAutoGroupedKernel(compiled);
        loaded.Add($"{method.DeclaringType?.Name}.{method.Name}");
        return kernelOnDevice.CreateLauncherDelegate<TLauncher>();
    }

    /// <summary>
    /// On the CPU accelerator an implicitly grouped kernel is not compiled by ILGPU: its launches call
    /// the kernel method on <see cref="HostWorkers"/>, once per thread index (see there why). Records
    /// the kernel as loaded and says whether that is the case.
    /// </summary>
    private bool RunsOnHost(Delegate kernel)
    {
        if (!IsCpu)
        {
            return false;
        }
        var method = kernel.Method;
        loaded.Add($"{method.DeclaringType?.Name}.{method.Name}");
        return true;
    }

    /// <summary>Throws if the compiled kernel needs what <see cref="Features"/> says the device lacks.</summary>
    private void Refuse(CompiledKernel compiled, MethodInfo method)
    {
        if (!Features.DynamicSharedMemory && UsesDynamicSharedMemory(compiled))
        {
            throw new KernelNotSupportedException(
                $"kernel {method.DeclaringType?.Name}.{method.Name} uses dynamic shared memory, which {Accelerator.Name} cannot run");
        }
    }

    /// <summary>
    /// Whether a compiled kernel allocates dynamic shared memory. ILGPU 1.5.3 keeps the entry point
    /// (whose shared-memory specification says so) non-public: read by reflection, and a missing
    /// member is an error, never a silent "no".
    /// </summary>
    internal static bool UsesDynamicSharedMemory(CompiledKernel compiled)
    {
        const BindingFlags flags = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;
        var entryPoint = typeof(CompiledKernel).GetProperty("EntryPoint", flags)?.GetValue(compiled) as EntryPoint
            ?? throw new InvalidOperationException("ILGPU's CompiledKernel.EntryPoint is missing (ILGPU changed; ZeroFL needs 1.5.3)");
        return entryPoint.SharedMemory.HasDynamicMemory;
    }

    /// <summary>Loads an explicitly grouped kernel (shared memory, barriers) launched with a <see cref="KernelConfig"/>.</summary>
    public Action<KernelConfig, T1, T2, T3, T4> LoadGrouped<T1, T2, T3, T4>(Action<T1, T2, T3, T4> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct
    {
        var launcher = LoadChecked<Action<AcceleratorStream, KernelConfig, T1, T2, T3, T4>>(kernel, grouped: true);
        var stream = Accelerator.DefaultStream;
        return (config, a1, a2, a3, a4) => launcher(stream, config, a1, a2, a3, a4);
    }

    /// <summary>Loads an implicitly grouped grid-stride kernel, launched on the default stream with a thread count.</summary>
    public Action<Index1D, T1> Load<T1>(Action<Index1D, T1> kernel)
        where T1 : struct
    {
        if (RunsOnHost(kernel))
        {
            return (index, a1) => HostWorkers.Shared.Run(index.X, i => kernel(new Index1D(i), a1));
        }
        var launcher = LoadChecked<Action<AcceleratorStream, Index1D, T1>>(kernel, grouped: false);
        var stream = Accelerator.DefaultStream;
        return (index, a1) => launcher(stream, index, a1);
    }

    /// <inheritdoc cref="Load{T1}"/>
    public Action<Index1D, T1, T2> Load<T1, T2>(Action<Index1D, T1, T2> kernel)
        where T1 : struct where T2 : struct
    {
        if (RunsOnHost(kernel))
        {
            return (index, a1, a2) => HostWorkers.Shared.Run(index.X, i => kernel(new Index1D(i), a1, a2));
        }
        var launcher = LoadChecked<Action<AcceleratorStream, Index1D, T1, T2>>(kernel, grouped: false);
        var stream = Accelerator.DefaultStream;
        return (index, a1, a2) => launcher(stream, index, a1, a2);
    }

    /// <inheritdoc cref="Load{T1}"/>
    public Action<Index1D, T1, T2, T3> Load<T1, T2, T3>(Action<Index1D, T1, T2, T3> kernel)
        where T1 : struct where T2 : struct where T3 : struct
    {
        if (RunsOnHost(kernel))
        {
            return (index, a1, a2, a3) => HostWorkers.Shared.Run(index.X, i => kernel(new Index1D(i), a1, a2, a3));
        }
        var launcher = LoadChecked<Action<AcceleratorStream, Index1D, T1, T2, T3>>(kernel, grouped: false);
        var stream = Accelerator.DefaultStream;
        return (index, a1, a2, a3) => launcher(stream, index, a1, a2, a3);
    }

    /// <inheritdoc cref="Load{T1}"/>
    public Action<Index1D, T1, T2, T3, T4> Load<T1, T2, T3, T4>(Action<Index1D, T1, T2, T3, T4> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct
    {
        if (RunsOnHost(kernel))
        {
            return (index, a1, a2, a3, a4) => HostWorkers.Shared.Run(index.X, i => kernel(new Index1D(i), a1, a2, a3, a4));
        }
        var launcher = LoadChecked<Action<AcceleratorStream, Index1D, T1, T2, T3, T4>>(kernel, grouped: false);
        var stream = Accelerator.DefaultStream;
        return (index, a1, a2, a3, a4) => launcher(stream, index, a1, a2, a3, a4);
    }

    /// <inheritdoc cref="Load{T1}"/>
    public Action<Index1D, T1, T2, T3, T4, T5> Load<T1, T2, T3, T4, T5>(Action<Index1D, T1, T2, T3, T4, T5> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct
    {
        if (RunsOnHost(kernel))
        {
            return (index, a1, a2, a3, a4, a5) => HostWorkers.Shared.Run(index.X, i => kernel(new Index1D(i), a1, a2, a3, a4, a5));
        }
        var launcher = LoadChecked<Action<AcceleratorStream, Index1D, T1, T2, T3, T4, T5>>(kernel, grouped: false);
        var stream = Accelerator.DefaultStream;
        return (index, a1, a2, a3, a4, a5) => launcher(stream, index, a1, a2, a3, a4, a5);
    }

    /// <inheritdoc cref="Load{T1}"/>
    public Action<Index1D, T1, T2, T3, T4, T5, T6> Load<T1, T2, T3, T4, T5, T6>(Action<Index1D, T1, T2, T3, T4, T5, T6> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct
    {
        if (RunsOnHost(kernel))
        {
            return (index, a1, a2, a3, a4, a5, a6) => HostWorkers.Shared.Run(index.X, i => kernel(new Index1D(i), a1, a2, a3, a4, a5, a6));
        }
        var launcher = LoadChecked<Action<AcceleratorStream, Index1D, T1, T2, T3, T4, T5, T6>>(kernel, grouped: false);
        var stream = Accelerator.DefaultStream;
        return (index, a1, a2, a3, a4, a5, a6) => launcher(stream, index, a1, a2, a3, a4, a5, a6);
    }

    /// <inheritdoc cref="Load{T1}"/>
    public Action<Index1D, T1, T2, T3, T4, T5, T6, T7> Load<T1, T2, T3, T4, T5, T6, T7>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct
    {
        if (RunsOnHost(kernel))
        {
            return (index, a1, a2, a3, a4, a5, a6, a7) => HostWorkers.Shared.Run(index.X, i => kernel(new Index1D(i), a1, a2, a3, a4, a5, a6, a7));
        }
        var launcher = LoadChecked<Action<AcceleratorStream, Index1D, T1, T2, T3, T4, T5, T6, T7>>(kernel, grouped: false);
        var stream = Accelerator.DefaultStream;
        return (index, a1, a2, a3, a4, a5, a6, a7) => launcher(stream, index, a1, a2, a3, a4, a5, a6, a7);
    }

    /// <inheritdoc cref="Load{T1}"/>
    public Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8> Load<T1, T2, T3, T4, T5, T6, T7, T8>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct
    {
        if (RunsOnHost(kernel))
        {
            return (index, a1, a2, a3, a4, a5, a6, a7, a8) => HostWorkers.Shared.Run(index.X, i => kernel(new Index1D(i), a1, a2, a3, a4, a5, a6, a7, a8));
        }
        var launcher = LoadChecked<Action<AcceleratorStream, Index1D, T1, T2, T3, T4, T5, T6, T7, T8>>(kernel, grouped: false);
        var stream = Accelerator.DefaultStream;
        return (index, a1, a2, a3, a4, a5, a6, a7, a8) => launcher(stream, index, a1, a2, a3, a4, a5, a6, a7, a8);
    }

    /// <inheritdoc cref="Load{T1}"/>
    public Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9> Load<T1, T2, T3, T4, T5, T6, T7, T8, T9>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct
    {
        if (RunsOnHost(kernel))
        {
            return (index, a1, a2, a3, a4, a5, a6, a7, a8, a9) => HostWorkers.Shared.Run(index.X, i => kernel(new Index1D(i), a1, a2, a3, a4, a5, a6, a7, a8, a9));
        }
        var launcher = LoadChecked<Action<AcceleratorStream, Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9>>(kernel, grouped: false);
        var stream = Accelerator.DefaultStream;
        return (index, a1, a2, a3, a4, a5, a6, a7, a8, a9) => launcher(stream, index, a1, a2, a3, a4, a5, a6, a7, a8, a9);
    }

    /// <inheritdoc cref="Load{T1}"/>
    public Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10> Load<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct
    {
        if (RunsOnHost(kernel))
        {
            return (index, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10) => HostWorkers.Shared.Run(index.X, i => kernel(new Index1D(i), a1, a2, a3, a4, a5, a6, a7, a8, a9, a10));
        }
        var launcher = LoadChecked<Action<AcceleratorStream, Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10>>(kernel, grouped: false);
        var stream = Accelerator.DefaultStream;
        return (index, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10) => launcher(stream, index, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10);
    }

    /// <inheritdoc cref="Load{T1}"/>
    public Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11> Load<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct where T11 : struct
    {
        if (RunsOnHost(kernel))
        {
            return (index, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11) => HostWorkers.Shared.Run(index.X, i => kernel(new Index1D(i), a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11));
        }
        var launcher = LoadChecked<Action<AcceleratorStream, Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11>>(kernel, grouped: false);
        var stream = Accelerator.DefaultStream;
        return (index, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11) => launcher(stream, index, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11);
    }

    /// <inheritdoc cref="Load{T1}"/>
    public Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12> Load<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct where T11 : struct where T12 : struct
    {
        if (RunsOnHost(kernel))
        {
            return (index, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12) => HostWorkers.Shared.Run(index.X, i => kernel(new Index1D(i), a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12));
        }
        var launcher = LoadChecked<Action<AcceleratorStream, Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12>>(kernel, grouped: false);
        var stream = Accelerator.DefaultStream;
        return (index, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12) => launcher(stream, index, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12);
    }
}
