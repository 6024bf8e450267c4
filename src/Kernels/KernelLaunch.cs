using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// Launch sizes for grid-stride kernels. Every kernel in this project loops
/// <c>for (i = index; i &lt; n; i += stride)</c> and is launched with <c>stride</c> threads, chosen per
/// accelerator: on the CPU accelerator every simulated thread is an OS thread, so the launch is the
/// number of threads it runs at once; on a GPU it is enough groups to fill every multiprocessor.
/// </summary>
public sealed partial class KernelLaunch
{
    /// <summary>Creates the launch policy for an accelerator that runs every kernel ILGPU offers.</summary>
    public KernelLaunch(Accelerator accelerator)
        : this(accelerator, KernelFeatures.All)
    {
    }

    /// <summary>Creates the launch policy for an accelerator with the given <paramref name="features"/>.</summary>
    public KernelLaunch(Accelerator accelerator, KernelFeatures features)
    {
        Accelerator = accelerator;
        Features = features;
        IsCpu = accelerator.AcceleratorType == AcceleratorType.CPU;
        MaxThreads = accelerator.NumMultiprocessors * accelerator.MaxNumThreadsPerMultiprocessor;
        GroupSize = IsCpu ? accelerator.MaxNumThreadsPerGroup : Math.Min(256, accelerator.MaxNumThreadsPerGroup);
    }

    /// <summary>The accelerator kernels are launched on.</summary>
    public Accelerator Accelerator { get; }

    /// <summary>True on the CPU accelerator, where GPU-only (shared memory, barrier) variants are avoided.</summary>
    public bool IsCpu { get; }

    /// <summary>Threads the accelerator runs at once.</summary>
    public int MaxThreads { get; }

    /// <summary>Threads per group used for GPU launches.</summary>
    public int GroupSize { get; }

    /// <summary>
    /// The number of threads to launch for <paramref name="work"/> independent items: never more
    /// than the items (so tiny launches stay cheap), never more than the device runs at once.
    /// </summary>
    public int Threads(long work)
    {
        if (work <= 0)
        {
            return 1;
        }
        if (IsCpu)
        {
            return (int)Math.Min(work, MaxThreads);
        }
        long rounded = (work + GroupSize - 1) / GroupSize * GroupSize;
        return (int)Math.Min(rounded, MaxThreads);
    }
}
