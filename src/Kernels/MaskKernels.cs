using ILGPU;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// Position masks as bitmaps, for the mask-stability analysis (ZeroFL Fig. 3): which entries of a
/// tensor of <c>length</c> elements a top-K keeps, one bit per entry (flat index i is bit i % 32 of
/// word i / 32, bits at or past the length 0; the layout of <see cref="SparseFormatKernels"/>'
/// bitmap), and how many positions two such masks share.
/// <list type="bullet">
/// <item><see cref="Mark"/>: the bitmap of a list of kept indices (a top-K compress's index list);
/// an index outside [0, length) is skipped, so a bad list gives a wrong mask, never a bad access.</item>
/// <item><see cref="CountCommon"/>: popcount(a AND b) over the words, one partial count per thread
/// read back and summed on the host (one sync).</item>
/// </list>
/// Both serve every backend as plain grid-stride kernels. CPU reference: <see cref="Reference.MaskReference"/>.
/// </summary>
public sealed class MaskKernels
{
    private readonly KernelLaunch launch;
    private readonly Action<Index1D, ArrayView<int>, ArrayView<int>, int, long, int> mark;
    private readonly Action<Index1D, ArrayView<int>, ArrayView<int>, ArrayView<long>, int, int> countCommon;
    private readonly MemoryBuffer1D<long, Stride1D.Dense> partialCounts;
    private readonly long[] hostCounts;

    /// <summary>Loads the kernels once for the accelerator of <paramref name="launch"/>.</summary>
    public MaskKernels(KernelLaunch launch)
    {
        this.launch = launch;
        mark = launch.Load<ArrayView<int>, ArrayView<int>, int, long, int>(MarkKernel);
        countCommon = launch.Load<ArrayView<int>, ArrayView<int>, ArrayView<long>, int, int>(CountCommonKernel);
        partialCounts = launch.Accelerator.Allocate1D<long>(launch.MaxThreads);
        hostCounts = new long[launch.MaxThreads];
    }

    /// <summary>Ints of the bitmap of a tensor of <paramref name="length"/> entries: ceil(length / 32).</summary>
    public static int Words(long length) => SparseFormatKernels.BitmapWords(length);

    /// <summary>
    /// Writes into <paramref name="bitmap"/> (at least <see cref="Words"/>(length) ints; those are
    /// zeroed first) the bits of <paramref name="indices"/>[0, count), positions in a tensor of
    /// <paramref name="length"/> entries. No host traffic.
    /// </summary>
    public void Mark(ArrayView<int> indices, int count, long length, ArrayView<int> bitmap)
    {
        HostCheck.Count(length, "mark bitmap");
        if (count < 0)
        {
            throw new ArgumentException($"mark bitmap: count {count} is negative");
        }
        HostCheck.Length(indices, count, "mark bitmap indices");
        int words = Words(length);
        HostCheck.Length(bitmap, words, "mark bitmap bitmap");
        if (words == 0)
        {
            return;
        }
        var target = bitmap.SubView(0, words);
        launch.Zero(target);
        if (count == 0)
        {
            return;
        }
        int t = launch.Threads(count);
        mark(t, indices, target, count, length, t);
    }

    /// <summary>How many bits the first <see cref="Words"/>(length) words of <paramref name="a"/> and <paramref name="b"/> both have set (one sync).</summary>
    public long CountCommon(ArrayView<int> a, ArrayView<int> b, long length)
    {
        HostCheck.Count(length, "count common bits");
        int words = Words(length);
        HostCheck.Length(a, words, "count common bits a");
        HostCheck.Length(b, words, "count common bits b");
        if (words == 0)
        {
            return 0;
        }
        int t = launch.Threads(words);
        countCommon(t, a, b, partialCounts.View, words, t);
        launch.ReadBack(partialCounts.View.BaseView.SubView(0, t), hostCounts.AsSpan(0, t));
        long total = 0;
        for (int i = 0; i < t; i++)
        {
            total += hostCounts[i];
        }
        return total;
    }

    /// <summary>Sets the bit of each index in [0, length) (atomic OR: indices may share a word).</summary>
    [GpuKernel]
    internal static void MarkKernel(Index1D index, ArrayView<int> indices, ArrayView<int> bitmap, int count, long length, int stride)
    {
        for (int i = index; i < count; i += stride)
        {
            int position = indices[i];
            if (position >= 0 && position < length)
            {
                Atomic.Or(ref bitmap[position >> 5], 1 << (position & 31));
            }
        }
    }

    /// <summary>partial[thread] = set bits of a AND b over the thread's words.</summary>
    [GpuKernel]
    internal static void CountCommonKernel(Index1D index, ArrayView<int> a, ArrayView<int> b, ArrayView<long> partial, int words, int stride)
    {
        long count = 0;
        for (int w = index; w < words; w += stride)
        {
            count += IntrinsicMath.PopCount(a[w] & b[w]);
        }
        partial[index] = count;
    }
}
