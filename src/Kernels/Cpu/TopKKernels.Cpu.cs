using System.Buffers;
using System.Runtime.InteropServices;
using ILGPU;

namespace ZeroFL.Kernels;

/// <summary>
/// The CPU accelerator's top-K: a selection on a host copy of a small tensor's keys, or bracketed
/// by a sample and one filtering pass (private histograms per thread, merged on the host, where the
/// bracket misses); applying a selection runs the Vector256 loops of
/// <see cref="TopKRanges"/> over contiguous blocks and chunks, planned on the host (reads are free
/// there), and a compress may stage its entries in one pass. These kernels are
/// <see cref="CpuKernelAttribute"/>: never compiled for a GPU backend.
/// </summary>
public sealed partial class TopKKernels
{
    private Action<Index1D, ArrayView<float>, ArrayView<int>, ThreadRanges, int, uint, int, int>? privateHistogram;
    private Action<Index1D, ArrayView<float>, ArrayView<int>, ThreadRanges, uint, uint, int>? bracket;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, ThreadRanges, uint, int>? mask;
    private Action<Index1D, ArrayView<float>, ArrayView<int>, int, int, int, uint, int>? chunkCount;
    private Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int, int, uint, int>? trimTies;
    private Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<int>, int, int, int, int, uint, int>? scatter;
    private Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, int, int, int, int, uint, int>? chunkStage;
    private Action<Index1D, ArrayView<int>, ArrayView<int>, ArrayView<float>, int, ArrayView<float>, ArrayView<int>, int, int, uint, int>? chunkCopy;

    private void LoadHostSelect()
    {
        privateHistogram = launch.Load<ArrayView<float>, ArrayView<int>, ThreadRanges, int, uint, int, int>(PrivateHistogramKernel);
        bracket = launch.Load<ArrayView<float>, ArrayView<int>, ThreadRanges, uint, uint, int>(BracketKernel);
    }

    /// <summary>Tensors of at most this many elements are selected on a host copy of their keys (no launch).</summary>
    internal const int CopiedSelectMax = 1 << 16;

    /// <summary>About how many keys a bracketed selection samples.</summary>
    internal const int SampleTarget = 1 << 14;

    /// <summary>Ints before the candidates in the scratch of a bracketed selection: (above, candidates) per thread.</summary>
    private const int BracketHeader = 64;

    /// <summary>Distance between the sampled elements of a bracketed selection of n elements (element j * stride is sampled).</summary>
    internal static int SampleStride(int n) => Math.Max(1, n / SampleTarget);

    /// <summary>Candidate keys one thread of a bracketed selection of n elements may write (an eighth of its share, and some).</summary>
    private static int CandidateCapacity(int n, int threads) => (int)((n + 8L * threads - 1) / (8L * threads)) + 256;

    /// <summary>
    /// Scratch ints of the CPU strategy's selection of n elements, increasing with n: none for a
    /// copied selection; for a bracketed one the header and every thread's candidates.
    /// </summary>
    private long BracketScratchLength(int n)
    {
        if (n <= CopiedSelectMax)
        {
            return 0;
        }
        int threads = Math.Max(1, launch.MaxThreads);
        return BracketHeader + (long)threads * CandidateCapacity(n, threads);
    }

    /// <summary>
    /// The exact selection of the CPU strategy: a small tensor on a host copy of its keys; a large
    /// one bracketed (<see cref="SelectBracketed"/>), or, where the bracket misses, by the radix passes.
    /// </summary>
    private TopKSelection SelectOnHost(ArrayView<float> x, int n, int k, ArrayView<int> scratch)
    {
        if (n <= CopiedSelectMax)
        {
            return SelectCopied(x, n, k);
        }
        return SelectBracketed(x, n, k, scratch) ?? SelectByRadix(x, n, k, scratch);
    }

    /// <summary>The selection from a host copy of all n keys.</summary>
    private TopKSelection SelectCopied(ArrayView<float> x, int n, int k)
    {
        float[] rented = ArrayPool<float>.Shared.Rent(n);
        try
        {
            var values = rented.AsSpan(0, n);
            launch.ReadBack(x.SubView(0, n), values);
            var keys = MemoryMarshal.Cast<float, uint>(values);
            for (int i = 0; i < keys.Length; i++)
            {
                keys[i] &= MagnitudeMask;
            }
            var (threshold, greater, equal) = KeySelection.Largest(keys, k);
            return new TopKSelection(threshold, k - greater, k, equal);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// One pass over x instead of three: a sample of about <see cref="SampleTarget"/> keys (every
    /// <see cref="SampleStride"/>-th element) gives a key range [low, high] that very likely holds
    /// the K-th largest key (the sample's ranks K/n of it, widened by four standard deviations);
    /// the pass counts the keys above high and collects those inside, and the host selects among
    /// them. Exact whenever it returns: it checks that fewer than k keys lie above the range and at
    /// least k at or above its bottom, and that every candidate fitted its slot. Returns null
    /// (the caller runs the radix passes) when the check fails or the sample shows the range would
    /// hold too many keys (heavy ties).
    /// </summary>
    private TopKSelection? SelectBracketed(ArrayView<float> x, int n, int k, ArrayView<int> scratch)
    {
        int stride = SampleStride(n);
        int samples = (n + stride - 1) / stride;
        int threads = launch.Threads(n);
        int capacity = CandidateCapacity(n, threads);
        int[] rented = ArrayPool<int>.Shared.Rent(Math.Max(2 * samples, 2 * threads + threads * capacity));
        try
        {
            // The sample is read on the calling thread: a launch costs more than its few thousand reads.
            var sample = rented.AsSpan(0, samples);
            launch.Synchronize();
            TopKRanges.Sample(x, sample, stride);
            var copy = rented.AsSpan(samples, samples);
            sample.CopyTo(copy);

            // The sample's ranks (1 = largest) around its expected rank of the K-th key.
            double fraction = (double)k / n;
            double expected = fraction * samples;
            double margin = 4 * Math.Sqrt(expected * (1 - fraction)) + 16;
            long upperRank = (long)Math.Floor(expected - margin);
            long lowerRank = (long)Math.Ceiling(expected + margin);
            uint high = MagnitudeMask;
            int sampleAbove = 0;
            if (upperRank >= 1)
            {
                // Keys above the range: those strictly above the sample's upperRank-th key.
                (high, sampleAbove, _) = KeySelection.Largest(MemoryMarshal.Cast<int, uint>(sample), (int)upperRank);
            }
            uint low = 0;
            int sampleAtOrAboveLow = samples;
            if (lowerRank <= samples)
            {
                var (key, greater, equal) = KeySelection.Largest(MemoryMarshal.Cast<int, uint>(copy), (int)lowerRank);
                low = key;
                sampleAtOrAboveLow = greater + equal;
            }
            if (low > high)
            {
                return null;
            }
            // Sample keys in [low, high], scaled to the tensor: too many for the slots means heavy ties.
            long estimate = (long)(sampleAtOrAboveLow - sampleAbove) * stride;
            if (estimate > (long)threads * capacity / 2)
            {
                return null;
            }

            var ranges = ThreadRanges.For(n, threads, contiguous: true);
            bracket!(threads, x, scratch, ranges, low, high, capacity);
            var header = rented.AsSpan(0, 2 * threads);
            launch.ReadBack(scratch.SubView(0, 2 * threads), header);
            long above = 0, inside = 0;
            for (int t = 0; t < threads; t++)
            {
                if (header[2 * t + 1] > capacity)
                {
                    return null;
                }
                above += header[2 * t];
                inside += header[2 * t + 1];
            }
            if (above >= k || above + inside < k)
            {
                return null;
            }
            // The candidates of every thread, packed together on the host.
            var candidates = rented.AsSpan(2 * threads, (int)inside);
            int at = 0;
            for (int t = 0; t < threads; t++)
            {
                int count = header[2 * t + 1];
                if (count > 0)
                {
                    launch.ReadBack(scratch.SubView(BracketHeader + (long)t * capacity, count), candidates.Slice(at, count));
                }
                at += count;
            }
            int rank = k - (int)above;
            var (threshold, greaterInside, equalInside) = KeySelection.Largest(MemoryMarshal.Cast<int, uint>(candidates), rank, low, high);
            return new TopKSelection(threshold, rank - greaterInside, k, equalInside);
        }
        finally
        {
            ArrayPool<int>.Shared.Return(rented);
        }
    }

    private void LoadHostApply()
    {
        mask = launch.Load<ArrayView<float>, ArrayView<float>, ArrayView<int>, ThreadRanges, uint, int>(MaskKernel);
        chunkCount = launch.Load<ArrayView<float>, ArrayView<int>, int, int, int, uint, int>(ChunkCountKernel);
        trimTies = launch.Load<ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int, int, uint, int>(TrimTiesKernel);
        scatter = launch.Load<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<int>, int, int, int, int, uint, int>(ScatterKernel);
        chunkStage = launch.Load<ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, int, int, int, int, uint, int>(ChunkStageKernel);
        chunkCopy = launch.Load<ArrayView<int>, ArrayView<int>, ArrayView<float>, int, ArrayView<float>, ArrayView<int>, int, int, uint, int>(ChunkCopyKernel);
    }

    /// <summary>The radix select with private histograms merged and scanned on the host (three passes over x).</summary>
    private TopKSelection SelectByRadix(ArrayView<float> x, int n, int k, ArrayView<int> scratch)
    {
        int[] rented = ArrayPool<int>.Shared.Rent(histogramReplicas * MaxBuckets);
        try
        {
            uint prefix = 0;
            int matchShift = 31;
            int remaining = k;
            int tied = 0;
            foreach (var (shift, bits) in Passes)
            {
                int buckets = 1 << bits;
                var histogram = Histogram(x, n, scratch, matchShift, prefix, shift, buckets, rented);
                int digit = buckets - 1;
                while (digit >= 0 && histogram[digit] < remaining)
                {
                    remaining -= histogram[digit];
                    digit--;
                }
                if (digit < 0)
                {
                    throw new InvalidOperationException("top-k select: histogram counts do not add up (was x modified during the call?)");
                }
                tied = histogram[digit];
                prefix = (prefix << bits) | (uint)digit;
                matchShift = shift;
            }
            return new TopKSelection(prefix, remaining, k, tied);
        }
        finally
        {
            ArrayPool<int>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// The compare pass, keeping every tie; only when more elements equal the threshold than may be
    /// kept (counted by the pass, read back) a chunk plan and a trim keep the first TiesToKeep.
    /// </summary>
    private void MaskOnHostPlan(ArrayView<float> x, int n, TopKSelection selection, ArrayView<float> output, ArrayView<int> scratch)
    {
        int t = launch.Threads(n);
        bool keepEqual = selection.TiesToKeep > 0;
        var equalCount = scratch.SubView(0, 1);
        if (keepEqual)
        {
            launch.Zero(equalCount);
        }
        mask!(t, x, output, equalCount, ThreadRanges.For(n, t, strategy.ContiguousRanges), selection.ThresholdBits, keepEqual ? 1 : 0);
        if (!keepEqual)
        {
            return;
        }
        int[] total = ArrayPool<int>.Shared.Rent(1);
        try
        {
            launch.ReadBack(equalCount, total.AsSpan(0, 1));
            if (total[0] <= selection.TiesToKeep)
            {
                return;
            }
        }
        finally
        {
            ArrayPool<int>.Shared.Return(total);
        }
        // More elements equal the threshold than may be kept: keep only the first TiesToKeep.
        // The compare pass left them all in output; x still holds them at the same places even in
        // place (only elements below the threshold were zeroed, and those never equal it).
        var (chunks, length) = Chunks(n);
        PlanChunksOnHost(x, n, selection, scratch, chunks, length);
        int tc = launch.Threads(chunks);
        trimTies!(tc, x, scratch, output, n, chunks, length, selection.ThresholdBits, tc);
    }

    /// <summary>Per-chunk counts, scanned on the host into offsets and tie shares; returns the total.</summary>
    private int PlanChunksOnHost(ArrayView<float> x, int n, TopKSelection selection, ArrayView<int> scratch, int chunks, int length)
    {
        int t = launch.Threads(chunks);
        var plan = scratch.SubView(0, 2L * chunks);
        chunkCount!(t, x, plan, n, chunks, length, selection.ThresholdBits, t);
        return ScanChunks(plan, chunks, selection.TiesToKeep).Total;
    }

    /// <summary>The unstaged compress's write pass over a host plan.</summary>
    private void ScatterOnHostPlan(ArrayView<float> x, int n, TopKSelection selection, int planned,
        ArrayView<float> values, ArrayView<int> indices, ArrayView<int> scratch)
    {
        var (chunks, length) = Chunks(n);
        int t = launch.Threads(chunks);
        scatter!(t, x, scratch, values, indices, n, planned, chunks, length, selection.ThresholdBits, t);
    }

    /// <summary>The staged compress plan: one pass counts each chunk and stages its entries at or above the threshold.</summary>
    private SelectedPlan PlanStagedOnHost(ArrayView<float> x, int n, TopKSelection selection, ArrayView<int> scratch,
        EntryStaging staging, int chunks, int length)
    {
        int t = launch.Threads(chunks);
        var plan = scratch.SubView(0, 2L * chunks);
        chunkStage!(t, x, plan, staging.Indices, staging.Values, staging.Slot, n, chunks, length, selection.ThresholdBits, t);
        var (total, longest) = ScanChunks(plan, chunks, selection.TiesToKeep);
        return new SelectedPlan(total, longest <= staging.Slot, longest);
    }

    /// <summary>The staged compress's copy pass.</summary>
    private void CopyStagedOnHost(TopKSelection selection, SelectedPlan plan, EntryStaging staging,
        ArrayView<float> values, ArrayView<int> indices, ArrayView<int> scratch, int chunks)
    {
        int t = launch.Threads(chunks);
        chunkCopy!(t, scratch, staging.Indices, staging.Values, staging.Slot, values, indices, plan.Count, chunks, selection.ThresholdBits, t);
    }

    /// <summary>
    /// Host half of a compress plan: turns the per-chunk counts (above, equal) in
    /// <paramref name="plan"/> into (output offset, ties to keep) and uploads them; returns the total
    /// kept and the longest chunk's count of elements with key &gt;= threshold.
    /// </summary>
    private (int Total, int Longest) ScanChunks(ArrayView<int> plan, int chunks, int tiesToKeep)
    {
        int[] rented = ArrayPool<int>.Shared.Rent(2 * chunks);
        try
        {
            var host = rented.AsSpan(0, 2 * chunks);
            launch.ReadBack(plan, host);
            int ties = tiesToKeep;
            int offset = 0;
            int longest = 0;
            for (int c = 0; c < chunks; c++)
            {
                int greater = host[2 * c];
                longest = Math.Max(longest, greater + host[2 * c + 1]);
                int share = Math.Min(host[2 * c + 1], ties);
                ties -= share;
                host[2 * c] = offset;
                host[2 * c + 1] = share;
                offset += greater + share;
            }
            launch.Upload((ReadOnlySpan<int>)host, plan);
            return (offset, longest);
        }
        finally
        {
            ArrayPool<int>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// Histogram of digit (key &gt;&gt; shift) &amp; (buckets - 1) over elements with
    /// key &gt;&gt; matchShift == match from the threads' private histograms, merged on the host into
    /// the first buckets of <paramref name="host"/> (the CPU strategy, where a read is free).
    /// </summary>
    private Span<int> Histogram(ArrayView<float> x, int n, ArrayView<int> scratch, int matchShift, uint match, int shift, int buckets, int[] host)
    {
        int t = launch.Threads(n);
        int replicas = t;
        privateHistogram!(t, x, scratch, ThreadRanges.For(n, t, strategy.ContiguousRanges), matchShift, match, shift, buckets - 1);
        var all = host.AsSpan(0, replicas * buckets);
        launch.ReadBack(scratch.SubView(0, (long)replicas * buckets), all);
        var merged = all[..buckets];
        for (int r = 1; r < replicas; r++)
        {
            var replica = all.Slice(r * buckets, buckets);
            for (int b = 0; b < buckets; b++)
            {
                merged[b] += replica[b];
            }
        }
        return merged;
    }


    /// <summary>Thread i zeroes and fills its own histogram at histograms[i * buckets]: no contention (CPU).</summary>
    [CpuKernel]
    internal static void PrivateHistogramKernel(
        Index1D index, ArrayView<float> x, ArrayView<int> histograms,
        ThreadRanges ranges, int matchShift, uint match, int shift, int digitMask)
    {
        var own = histograms.SubView((long)index.X * (digitMask + 1), digitMask + 1);
        TopKRanges.Histogram(x, own, ranges.Begin(index), ranges.End(index), ranges.Step, matchShift, match, shift, digitMask);
    }

    /// <summary>
    /// Thread i over its range of x: the count of keys above high in scratch[2i], of keys in [low,
    /// high] in scratch[2i + 1], and those keys (the first capacity of them) from
    /// scratch[BracketHeader + i * capacity].
    /// </summary>
    [CpuKernel]
    internal static void BracketKernel(Index1D index, ArrayView<float> x, ArrayView<int> scratch, ThreadRanges ranges, uint low, uint high, int capacity)
    {
        long both = TopKRanges.Bracket(x, scratch, ranges.Begin(index), ranges.End(index), low, high, BracketHeader + index.X * capacity, capacity);
        scratch[2 * index.X] = (int)(both >> 32);
        scratch[2 * index.X + 1] = (int)Math.Min(int.MaxValue, both & 0xFFFFFFFFL);
    }

    /// <summary>
    /// output = x where key &gt; threshold (or == threshold when keepEqual != 0), else 0; adds the
    /// number of elements equal to the threshold to equalCount[0] (one atomic per thread).
    /// </summary>
    [CpuKernel]
    internal static void MaskKernel(
        Index1D index, ArrayView<float> x, ArrayView<float> output, ArrayView<int> equalCount,
        ThreadRanges ranges, uint threshold, int keepEqual)
    {
        int equal = TopKRanges.Mask(x, output, ranges.Begin(index), ranges.End(index), ranges.Step, threshold, keepEqual);
        if (equal > 0)
        {
            Atomic.Add(ref equalCount[0], equal);
        }
    }

    /// <summary>Per chunk c: counts[2c] = elements with key &gt; threshold, counts[2c + 1] = key == threshold.</summary>
    [CpuKernel]
    internal static void ChunkCountKernel(
        Index1D index, ArrayView<float> x, ArrayView<int> counts,
        int n, int chunks, int length, uint threshold, int stride)
    {
        for (int c = index; c < chunks; c += stride)
        {
            long begin = (long)c * length;
            long both = TopKRanges.Count(x, begin, Math.Min(n, begin + length), threshold);
            counts[2 * c] = (int)(both >> 32);
            counts[2 * c + 1] = (int)(both & 0xFFFFFFFFL);
        }
    }

    /// <summary>
    /// Per chunk c: counts[2c] = elements with key &gt; threshold, counts[2c + 1] = key == threshold,
    /// and the chunk's elements with key &gt;= threshold (value, index) written to its staging slot.
    /// </summary>
    [CpuKernel]
    internal static void ChunkStageKernel(
        Index1D index, ArrayView<float> x, ArrayView<int> counts, ArrayView<int> stagedIndices, ArrayView<float> stagedValues, int slot,
        int n, int chunks, int length, uint threshold, int stride)
    {
        for (int c = index; c < chunks; c += stride)
        {
            long begin = (long)c * length;
            long both = TopKRanges.Stage(x, stagedValues, stagedIndices, begin, Math.Min(n, begin + length), threshold,
                c * slot, slot);
            counts[2 * c] = (int)(both >> 32);
            counts[2 * c + 1] = (int)(both & 0xFFFFFFFFL);
        }
    }

    /// <summary>
    /// Per chunk c of a staged plan: copies from its slot the kept (value, index) pairs to positions
    /// [plan[2c], plan[2c + 2]) (the last chunk up to total); of those equal to the threshold the
    /// first plan[2c + 1].
    /// </summary>
    [CpuKernel]
    internal static void ChunkCopyKernel(
        Index1D index, ArrayView<int> plan, ArrayView<int> stagedIndices, ArrayView<float> stagedValues, int slot, ArrayView<float> values, ArrayView<int> indices,
        int total, int chunks, uint threshold, int stride)
    {
        for (int c = index; c < chunks; c += stride)
        {
            int limit = c + 1 < chunks ? plan[2 * c + 2] : total;
            long first = (long)c * slot;
            TopKRanges.CopyKept(stagedValues, stagedIndices, first, first + slot, threshold, values, indices,
                plan[2 * c], limit, plan[2 * c + 1]);
        }
    }

    /// <summary>Per chunk c: zeroes output where key == threshold past the chunk's first plan[2c + 1] such elements.</summary>
    [CpuKernel]
    internal static void TrimTiesKernel(
        Index1D index, ArrayView<float> x, ArrayView<int> plan, ArrayView<float> output,
        int n, int chunks, int length, uint threshold, int stride)
    {
        for (int c = index; c < chunks; c += stride)
        {
            long begin = (long)c * length;
            TopKRanges.TrimTies(x, output, begin, Math.Min(n, begin + length), threshold, plan[2 * c + 1]);
        }
    }

    /// <summary>
    /// Per chunk c: writes kept (value, index) pairs in index order to positions
    /// [plan[2c], plan[2c + 2]) (the last chunk up to total); of the elements equal to the threshold
    /// the first plan[2c + 1] are kept.
    /// </summary>
    [CpuKernel]
    internal static void ScatterKernel(
        Index1D index, ArrayView<float> x, ArrayView<int> plan, ArrayView<float> values, ArrayView<int> indices,
        int n, int total, int chunks, int length, uint threshold, int stride)
    {
        for (int c = index; c < chunks; c += stride)
        {
            long begin = (long)c * length;
            int limit = c + 1 < chunks ? plan[2 * c + 2] : total;
            TopKRanges.Scatter(x, values, indices, begin, Math.Min(n, begin + length), threshold, plan[2 * c], limit, plan[2 * c + 1]);
        }
    }
}
