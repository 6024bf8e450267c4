using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// Zeroing device memory. The CPU accelerator clears memory directly; GPU backends run a grid-stride
/// store kernel instead of the driver's fill, which Mesa rusticl 22.3 gets wrong for views that do
/// not start at a buffer's beginning (CL_INVALID_VALUE).
/// </summary>
public sealed partial class KernelLaunch
{
    private Action<Index1D, ArrayView<int>, long, int>? zeroKernel;

    /// <summary>Sets every element of <paramref name="view"/> to 0 (elements of a whole number of 32-bit words).</summary>
    public void Zero<T>(ArrayView<T> view)
        where T : unmanaged
    {
        if (view.Length == 0)
        {
            return;
        }
        if (IsCpu)
        {
            ClearOnHost(view);
            return;
        }
        if (Interop.SizeOf<T>() % sizeof(int) != 0)
        {
            throw new ArgumentException($"zeroing on {Accelerator.Name} needs elements of whole 32-bit words, not {typeof(T).Name}");
        }
        var words = view.Cast<int>();
        zeroKernel ??= Load<ArrayView<int>, long, int>(ZeroKernel);
        int threads = Threads(words.Length);
        zeroKernel(threads, words, words.Length, threads);
    }

    /// <summary>
    /// The CPU accelerator's clear: a large view (a model's gradients, 45 MB for ResNet-18) in one
    /// contiguous block per lane of <see cref="HostWorkers"/>, a small one on the caller.
    /// </summary>
    private static unsafe void ClearOnHost<T>(ArrayView<T> view)
        where T : unmanaged
    {
        const long ParallelBytes = 1 << 20;
        long bytes = view.LengthInBytes;
        var pool = HostWorkers.Shared;
        if (bytes < ParallelBytes || pool.Lanes == 1)
        {
            view.MemSetToZero();
            return;
        }
        byte* start = (byte*)view.LoadEffectiveAddressAsPtr();
        int lanes = pool.Lanes;
        long block = (bytes / lanes + 63) & ~63L;
        pool.Run(lanes, lane =>
        {
            long begin = Math.Min(bytes, lane * block);
            long end = Math.Min(bytes, begin + block);
            NativeMemory.Clear(start + begin, (nuint)(end - begin));
        });
    }

    [GpuKernel]
    private static void ZeroKernel(Index1D index, ArrayView<int> words, long length, int stride)
    {
        for (long i = index; i < length; i += stride)
        {
            words[i] = 0;
        }
    }
}
