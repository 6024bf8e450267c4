using ILGPU;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// Small kernels the federation needs around top-K and CSR: count non-zeros (the non-zero ratio
/// after aggregation) and scale in place (FedAvg's 1/n). CPU reference: <see cref="Reference.UplinkReference"/>.
/// </summary>
public sealed class UplinkKernels
{
    private readonly KernelLaunch launch;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<long>, int, int> countNonZero;
    private readonly Action<Index1D, ArrayView<float>, float, int, int> scale;
    private readonly MemoryBuffer1D<long, Stride1D.Dense> partialCounts;
    private readonly long[] hostCounts;

    /// <summary>Loads the kernels once for the accelerator of <paramref name="launch"/>.</summary>
    public UplinkKernels(KernelLaunch launch)
    {
        this.launch = launch;
        var a = launch.Accelerator;
        countNonZero = launch.Load<ArrayView<float>, ArrayView<long>, int, int>(CountNonZeroKernel);
        scale = launch.Load<ArrayView<float>, float, int, int>(ScaleKernel);
        partialCounts = a.Allocate1D<long>(launch.MaxThreads);
        hostCounts = new long[launch.MaxThreads];
    }

    /// <summary>The number of entries of <paramref name="x"/> that are not zero (NaN counts).</summary>
    public long CountNonZero(ArrayView<float> x)
    {
        int n = HostCheck.Count(x.Length, "count non-zero");
        int t = launch.Threads(n);
        countNonZero(t, x, partialCounts.View, n, t);
        launch.ReadBack(partialCounts.View.BaseView.SubView(0, t), hostCounts.AsSpan(0, t));
        long total = 0;
        for (int i = 0; i < t; i++)
        {
            total += hostCounts[i];
        }
        return total;
    }

    /// <summary>x *= factor.</summary>
    public void Scale(ArrayView<float> x, float factor)
    {
        int n = HostCheck.Count(x.Length, "scale");
        int t = launch.Threads(n);
        scale(t, x, factor, n, t);
    }

    [GpuKernel]
    internal static void CountNonZeroKernel(Index1D index, ArrayView<float> x, ArrayView<long> partial, int n, int stride)
    {
        long count = 0;
        for (int i = index; i < n; i += stride)
        {
            if (x[i] != 0f)
            {
                count++;
            }
        }
        partial[index] = count;
    }

    [GpuKernel]
    internal static void ScaleKernel(Index1D index, ArrayView<float> x, float factor, int n, int stride)
    {
        for (int i = index; i < n; i += stride)
        {
            x[i] *= factor;
        }
    }
}
