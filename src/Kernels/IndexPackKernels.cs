using ILGPU;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// 16-bit block-local form of a strictly increasing list of flat indices into a tensor of n
/// elements (the positions a top-K compress writes): the low 16 bits of each index, two per int
/// (entry 2i in the low half of word i, entry 2i + 1 in the high half), plus a block table of
/// <see cref="TableLength"/>(n) ints where table[b] is the number of entries with index &lt;
/// b * <see cref="BlockLength"/>, so block b's entries are [table[b], table[b + 1]). Entry i then
/// is b * BlockLength + low16(i) for the block b that holds i. About 2 bytes per entry instead of 4.
/// CPU reference: <see cref="Reference.IndexPackReference"/>.
/// </summary>
public sealed class IndexPackKernels
{
    /// <summary>Indices per block: the range the low 16 bits cover.</summary>
    public const int BlockLength = 1 << 16;

    private const int BlockShift = 16;

    private readonly KernelLaunch launch;
    private readonly Action<Index1D, ArrayView<int>, ArrayView<int>, int, int, int> pack;
    private readonly Action<Index1D, ArrayView<int>, ArrayView<int>, int, int, int> table;
    private readonly Action<Index1D, ArrayView<int>, ArrayView<int>, ArrayView<int>, int, int, int> expand;

    /// <summary>Loads the kernels once for the accelerator of <paramref name="launch"/>.</summary>
    public IndexPackKernels(KernelLaunch launch)
    {
        this.launch = launch;
        var a = launch.Accelerator;
        pack = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, ArrayView<int>, int, int, int>(PackKernel);
        table = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, ArrayView<int>, int, int, int>(TableKernel);
        expand = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, ArrayView<int>, ArrayView<int>, int, int, int>(ExpandKernel);
    }

    /// <summary>Ints of packed low halves for <paramref name="count"/> entries: ceil(count / 2).</summary>
    public static long PackedLength(long count) => (count + 1) / 2;

    /// <summary>Ints of the block table for a tensor of <paramref name="n"/> elements: ceil(n / 65536) + 1.</summary>
    public static long TableLength(long n) => (n + BlockLength - 1) / BlockLength + 1;

    /// <summary>
    /// Packs <paramref name="indices"/>[0, count), strictly increasing and below <paramref name="n"/>,
    /// into <paramref name="packed"/> (at least <see cref="PackedLength"/>(count) ints) and
    /// <paramref name="blockTable"/> (at least <see cref="TableLength"/>(n) ints). The indices live
    /// on the device (written by a top-K compress); the kernels read only inside [0, count) whatever
    /// they hold, and an unsorted list gives a wrong table, never a wrong memory access.
    /// </summary>
    public void Pack(ArrayView<int> indices, int count, long n, ArrayView<int> packed, ArrayView<int> blockTable)
    {
        int blocks = Check(count, n, packed, blockTable, "index pack");
        HostCheck.Length(indices, count, "index pack indices");
        int words = (int)PackedLength(count);
        if (words > 0)
        {
            int tp = launch.Threads(words);
            pack(tp, indices, packed, count, words, tp);
        }
        int tt = launch.Threads(blocks + 1L);
        table(tt, indices, blockTable, count, blocks + 1, tt);
    }

    /// <summary>
    /// The inverse of <see cref="Pack"/>: writes the <paramref name="count"/> full indices into
    /// <paramref name="indices"/>. A table that does not come from <see cref="Pack"/> can give wrong
    /// indices (below ceil(n / 65536) * 65536) but never an access outside the given views.
    /// </summary>
    public void Expand(ArrayView<int> packed, ArrayView<int> blockTable, int count, long n, ArrayView<int> indices)
    {
        int blocks = Check(count, n, packed, blockTable, "index expand");
        HostCheck.Length(indices, count, "index expand indices");
        if (count == 0)
        {
            return;
        }
        int t = launch.Threads(count);
        expand(t, packed, blockTable, indices, count, blocks, t);
    }

    private static int Check(int count, long n, ArrayView<int> packed, ArrayView<int> blockTable, string what)
    {
        HostCheck.Count(n, $"{what} tensor");
        if (count < 0 || count > n)
        {
            throw new ArgumentException($"{what}: entry count {count} is outside [0, {n}]");
        }
        HostCheck.Length(packed, PackedLength(count), $"{what} packed indices");
        HostCheck.Length(blockTable, TableLength(n), $"{what} block table");
        return (int)(TableLength(n) - 1);
    }

    /// <summary>Per output word: the low 16 bits of entries 2w (low half) and 2w + 1 (high half, 0 past the end).</summary>
    [GpuKernel]
    internal static void PackKernel(Index1D index, ArrayView<int> indices, ArrayView<int> packed, int count, int words, int stride)
    {
        for (int w = index; w < words; w += stride)
        {
            int first = 2 * w;
            int low = indices[first] & 0xFFFF;
            int high = first + 1 < count ? indices[first + 1] & 0xFFFF : 0;
            packed[w] = low | (high << BlockShift);
        }
    }

    /// <summary>Per table entry b: the lower bound of b * 65536 in the sorted indices (entries below it).</summary>
    [GpuKernel]
    internal static void TableKernel(Index1D index, ArrayView<int> indices, ArrayView<int> blockTable, int count, int entries, int stride)
    {
        for (int b = index; b < entries; b += stride)
        {
            long start = (long)b << BlockShift;
            int lo = 0, hi = count;
            while (lo < hi)
            {
                int mid = lo + ((hi - lo) >> 1);
                if (indices[mid] < start)
                {
                    lo = mid + 1;
                }
                else
                {
                    hi = mid;
                }
            }
            blockTable[b] = lo;
        }
    }

    /// <summary>Per entry i: the last block b with table[b] &lt;= i, then index = b * 65536 + low16(i).</summary>
    [GpuKernel]
    internal static void ExpandKernel(Index1D index, ArrayView<int> packed, ArrayView<int> blockTable, ArrayView<int> indices, int count, int blocks, int stride)
    {
        for (int i = index; i < count; i += stride)
        {
            int lo = 0, hi = blocks - 1;
            while (lo < hi)
            {
                int mid = lo + ((hi - lo + 1) >> 1);
                if (blockTable[mid] <= i)
                {
                    lo = mid;
                }
                else
                {
                    hi = mid - 1;
                }
            }
            int word = packed[i >> 1];
            int low = (i & 1) == 0 ? word & 0xFFFF : (word >> BlockShift) & 0xFFFF;
            indices[i] = (lo << BlockShift) | low;
        }
    }
}
