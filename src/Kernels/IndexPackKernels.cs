using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.IR.Intrinsics;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// 16-bit block-local form of a strictly increasing list of flat indices into a tensor of n
/// elements (the positions a top-K compress writes): the low 16 bits of each index, two per int
/// (entry 2i in the low half of word i, entry 2i + 1 in the high half), plus a block table of
/// <see cref="TableLength"/>(n) ints where table[b] is the number of entries with index &lt;
/// b * <see cref="BlockLength"/>, so block b's entries are [table[b], table[b + 1]). Entry i then
/// is b * BlockLength + low16(i) for the block b that holds i. About 2 bytes per entry instead of 4.
/// CPU reference: <see cref="Reference.IndexPackReference"/>. On the CPU accelerator each thread
/// takes one contiguous range and runs <see cref="PackRange"/> and <see cref="ExpandRange"/> as
/// plain .NET loops over pointers (one block search per range, not per entry); GPU backends get
/// the per-entry grid-stride fallbacks.
/// </summary>
public sealed unsafe class IndexPackKernels
{
    /// <summary>Indices per block: the range the low 16 bits cover.</summary>
    public const int BlockLength = 1 << 16;

    private const int BlockShift = 16;

    private readonly KernelLaunch launch;
    private readonly Action<Index1D, ArrayView<int>, ArrayView<int>, int, ThreadRanges> pack;
    private readonly Action<Index1D, ArrayView<int>, ArrayView<int>, int, int, int> table;
    private readonly Action<Index1D, ArrayView<int>, ArrayView<int>, ArrayView<int>, int, ThreadRanges> expand;

    /// <summary>Loads the kernels once for the accelerator of <paramref name="launch"/>.</summary>
    public IndexPackKernels(KernelLaunch launch)
    {
        this.launch = launch;
        pack = launch.Load<ArrayView<int>, ArrayView<int>, int, ThreadRanges>(PackKernel);
        table = launch.Load<ArrayView<int>, ArrayView<int>, int, int, int>(TableKernel);
        expand = launch.Load<ArrayView<int>, ArrayView<int>, ArrayView<int>, int, ThreadRanges>(ExpandKernel);
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
            pack(tp, indices, packed, count, ThreadRanges.For(words, tp, launch.IsCpu));
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
        expand(t, packed, blockTable, indices, blocks, ThreadRanges.For(count, t, launch.IsCpu));
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

    /// <summary>Packs this thread's output words (see <see cref="PackRange"/>).</summary>
    [GpuKernel]
    internal static void PackKernel(Index1D index, ArrayView<int> indices, ArrayView<int> packed, int count, ThreadRanges words)
        => PackRange(indices, packed, count, words.Begin(index), words.End(index), words.Step);

    /// <summary>
    /// Output words w in [begin, end) by step: the low 16 bits of entries 2w (low half) and 2w + 1
    /// (high half, 0 past the end). The CPU version walks the range with pointers.
    /// </summary>
    [SimdHelper(nameof(PackRangeScalar))]
    [IntrinsicImplementation]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void PackRange(ArrayView<int> indices, ArrayView<int> packed, int count, long begin, long end, int step)
    {
        if (step != 1)
        {
            PackRangeScalar(indices, packed, count, begin, end, step);
            return;
        }
        int* from = (int*)indices.LoadEffectiveAddressAsPtr();
        int* to = (int*)packed.LoadEffectiveAddressAsPtr();
        long full = Math.Min(end, count / 2);
        long w = begin;
        for (; w < full; w++)
        {
            to[w] = (from[2 * w] & 0xFFFF) | (from[2 * w + 1] << BlockShift);
        }
        for (; w < end; w++)
        {
            to[w] = from[2 * w] & 0xFFFF;
        }
    }

    /// <summary>Scalar <see cref="PackRange"/> (GPU backends).</summary>
    internal static void PackRangeScalar(ArrayView<int> indices, ArrayView<int> packed, int count, long begin, long end, int step)
    {
        for (long w = begin; w < end; w += step)
        {
            long first = 2 * w;
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
            blockTable[b] = LowerBound(indices, count, (long)b << BlockShift);
        }
    }

    /// <summary>The number of the first <paramref name="count"/> sorted indices below <paramref name="value"/> (binary search).</summary>
    internal static int LowerBound(ArrayView<int> sorted, int count, long value)
    {
        int lo = 0, hi = count;
        while (lo < hi)
        {
            int mid = lo + ((hi - lo) >> 1);
            if (sorted[mid] < value)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }
        return lo;
    }

    /// <summary>Expands this thread's entries (see <see cref="ExpandRange"/>).</summary>
    [GpuKernel]
    internal static void ExpandKernel(Index1D index, ArrayView<int> packed, ArrayView<int> blockTable, ArrayView<int> indices, int blocks, ThreadRanges entries)
        => ExpandRange(packed, blockTable, indices, blocks, entries.Begin(index), entries.End(index), entries.Step);

    /// <summary>
    /// Entries i in [begin, end) by step: index = b * 65536 + low16(i) for the last block b &lt;
    /// <paramref name="blocks"/> with table[b] &lt;= i. The CPU version searches the block of
    /// <paramref name="begin"/> once and then walks the blocks forward with the entries.
    /// </summary>
    [SimdHelper(nameof(ExpandRangeScalar))]
    [IntrinsicImplementation]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void ExpandRange(ArrayView<int> packed, ArrayView<int> blockTable, ArrayView<int> indices, int blocks, long begin, long end, int step)
    {
        if (step != 1 || begin >= end)
        {
            ExpandRangeScalar(packed, blockTable, indices, blocks, begin, end, step);
            return;
        }
        int* words = (int*)packed.LoadEffectiveAddressAsPtr();
        int* table = (int*)blockTable.LoadEffectiveAddressAsPtr();
        int* to = (int*)indices.LoadEffectiveAddressAsPtr();
        var halves = (ushort*)words;
        int b = BlockOf(blockTable, blocks, begin);
        long i = begin;
        while (i < end)
        {
            // Entries of block b run to table[b + 1] (the last block takes the rest); a table that
            // is not increasing only shortens a run, so every entry is still written once.
            long stop = b + 1 < blocks ? Math.Clamp(table[b + 1], i, end) : end;
            int high = b << BlockShift;
            for (; i < stop; i++)
            {
                to[i] = high | halves[i];
            }
            if (b + 1 < blocks)
            {
                b++;
            }
        }
    }

    /// <summary>Scalar <see cref="ExpandRange"/> (GPU backends): one block search per entry.</summary>
    internal static void ExpandRangeScalar(ArrayView<int> packed, ArrayView<int> blockTable, ArrayView<int> indices, int blocks, long begin, long end, int step)
    {
        for (long i = begin; i < end; i += step)
        {
            int word = packed[i >> 1];
            int low = (i & 1) == 0 ? word & 0xFFFF : (word >> BlockShift) & 0xFFFF;
            indices[i] = (BlockOf(blockTable, blocks, i) << BlockShift) | low;
        }
    }

    /// <summary>The last block b in [0, blocks) with table[b] &lt;= i (0 when none), by binary search.</summary>
    private static int BlockOf(ArrayView<int> blockTable, int blocks, long i)
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
        return lo;
    }
}
