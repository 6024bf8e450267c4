using ILGPU;

namespace ZeroFL.Kernels;

/// <summary>
/// What GPU backends plan on the device. The selection: each radix pass counts into replicated
/// atomic histograms, sums them on the device, and one thread scans the merged histogram from the
/// top to pick the digit, carrying the prefix found so far and the count still to take in a small
/// device state that the next pass reads; the host reads the state once, at the end (one sync and
/// 16 bytes per selection instead of one histogram per pass). The compress plan: per-chunk counts,
/// then one group of <see cref="ScanGroupSize"/> threads scans them into output offsets and tie
/// shares in place (shared memory and barriers: GPU backends only).
/// </summary>
public sealed partial class TopKKernels
{
    /// <summary>Ints of the selection state after the histograms: prefix, remaining, tied, error.</summary>
    private const int SelectStateInts = 4;

    private readonly Action<Index1D, ArrayView<int>, int>? startSelect;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<int>, ThreadRanges, ArrayView<int>, int, int, int, int>? matchedHistogram;
    private readonly Action<Index1D, ArrayView<int>, ArrayView<int>, int, int>? selectDigit;
    private readonly Action<KernelConfig, ArrayView<int>, int, int, int>? scanChunks;

    /// <summary>Threads of the group that scans a compress plan.</summary>
    internal const int ScanGroupSize = 256;

    /// <summary>
    /// Counts each chunk's elements above and equal to the threshold, then scans them on the device
    /// into scratch[2c] (output offset, at most the limit) and scratch[2c + 1] (ties to keep), and
    /// the total into scratch[2 * chunks]. Returns <paramref name="knownCount"/> when it is known,
    /// else reads the total back.
    /// </summary>
    private int PlanChunksOnDevice(ArrayView<float> x, int n, TopKSelection selection, ArrayView<int> scratch, int chunks, int length, int knownCount)
    {
        int t = launch.Threads(chunks);
        var plan = scratch.SubView(0, 2L * chunks + 1);
        chunkCount(t, x, plan, n, chunks, length, selection.ThresholdBits, t);
        scanChunks!(new KernelConfig(1, ScanGroupSize), plan, chunks, selection.TiesToKeep, knownCount >= 0 ? knownCount : int.MaxValue);
        if (knownCount >= 0)
        {
            return knownCount;
        }
        var total = new int[1];
        launch.ReadBack(plan.SubView(2L * chunks, 1), total);
        return total[0];
    }

    /// <summary>
    /// One group: plan[2c] and plan[2c + 1] hold chunk c's counts above and equal to the threshold.
    /// Each thread sums a run of chunks, the group scans the sums in shared memory, and each thread
    /// writes its chunks' output offsets (elements above before them plus the ties kept before
    /// them, at most limit) and shares of the first tiesToKeep ties; the last thread writes the
    /// total to plan[2 * chunks].
    /// </summary>
    [GpuKernel]
    internal static void ScanChunksKernel(ArrayView<int> plan, int chunks, int tiesToKeep, int limit)
    {
        var greater = SharedMemory.Allocate<int>(ScanGroupSize);
        var equal = SharedMemory.Allocate<int>(ScanGroupSize);
        int thread = Group.IdxX;
        int size = Group.DimX;
        int per = (chunks + size - 1) / size;
        int begin = Math.Min(thread * per, chunks);
        int end = Math.Min(begin + per, chunks);
        int above = 0, ties = 0;
        for (int c = begin; c < end; c++)
        {
            above += plan[2 * c];
            ties += plan[2 * c + 1];
        }
        greater[thread] = above;
        equal[thread] = ties;
        Group.Barrier();
        for (int offset = 1; offset < size; offset <<= 1)
        {
            int addAbove = thread >= offset ? greater[thread - offset] : 0;
            int addTies = thread >= offset ? equal[thread - offset] : 0;
            Group.Barrier();
            greater[thread] += addAbove;
            equal[thread] += addTies;
            Group.Barrier();
        }
        int aboveBefore = greater[thread] - above;
        int tiesBefore = equal[thread] - ties;
        for (int c = begin; c < end; c++)
        {
            int chunkAbove = plan[2 * c];
            int chunkTies = plan[2 * c + 1];
            int start = aboveBefore + Math.Min(tiesBefore, tiesToKeep);
            plan[2 * c] = Math.Min(start, limit);
            plan[2 * c + 1] = Math.Max(0, Math.Min(tiesToKeep - tiesBefore, chunkTies));
            aboveBefore += chunkAbove;
            tiesBefore += chunkTies;
        }
        if (thread == size - 1)
        {
            plan[2 * chunks] = Math.Min(aboveBefore + Math.Min(tiesBefore, tiesToKeep), limit);
        }
    }

    private TopKSelection SelectOnDevice(ArrayView<float> x, int n, int k, ArrayView<int> scratch)
    {
        int replicas = histogramReplicas;
        var histograms = scratch.SubView(0, (long)replicas * MaxBuckets);
        var state = scratch.SubView((long)replicas * MaxBuckets, SelectStateInts);
        int one = launch.Threads(1);
        startSelect!(one, state, k);
        int t = launch.Threads(n);
        var ranges = ThreadRanges.For(n, t, strategy.ContiguousRanges);
        int matchShift = 31;
        foreach (var (shift, bits) in Passes)
        {
            int buckets = 1 << bits;
            launch.Zero(histograms.SubView(0, (long)replicas * buckets));
            matchedHistogram!(t, x, histograms, ranges, state, matchShift, shift, buckets - 1, replicas);
            int tm = launch.Threads(buckets);
            mergeReplicas!(tm, histograms, buckets, replicas, tm);
            selectDigit!(one, histograms, state, buckets, bits);
            matchShift = shift;
        }
        var host = new int[SelectStateInts];
        launch.ReadBack(state, host);
        if (host[3] != 0)
        {
            throw new InvalidOperationException("top-k select: histogram counts do not add up (was x modified during the call?)");
        }
        return new TopKSelection((uint)host[0], host[1], k, host[2]);
    }

    /// <summary>state = (prefix 0, remaining k, tied 0, no error); one thread.</summary>
    [GpuKernel]
    internal static void StartSelectKernel(Index1D index, ArrayView<int> state, int k)
    {
        if (index == 0)
        {
            state[0] = 0;
            state[1] = k;
            state[2] = 0;
            state[3] = 0;
        }
    }

    /// <summary>
    /// Atomic histogram of digit (key &gt;&gt; shift) &amp; digitMask over the elements whose
    /// key &gt;&gt; matchShift equals the prefix in state[0], into replica (i mod replicas).
    /// </summary>
    [GpuKernel]
    internal static void MatchedHistogramKernel(
        Index1D index, ArrayView<float> x, ArrayView<int> histograms, ThreadRanges ranges, ArrayView<int> state,
        int matchShift, int shift, int digitMask, int replicas)
    {
        uint match = (uint)state[0];
        int offset = index % replicas * (digitMask + 1);
        long end = ranges.End(index);
        for (long i = ranges.Begin(index); i < end; i += ranges.Step)
        {
            uint key = Interop.FloatAsInt(x[i]) & MagnitudeMask;
            if (key >> matchShift == match)
            {
                Atomic.Add(ref histograms[offset + (int)((key >> shift) & (uint)digitMask)], 1);
            }
        }
    }

    /// <summary>
    /// One thread: from the top bucket of the merged histogram down, skips whole buckets while they
    /// hold fewer than the remaining count; the digit found extends the prefix, the rest of the
    /// count is what to take inside it, its bucket count the ties. No digit sets the error flag.
    /// </summary>
    [GpuKernel]
    internal static void SelectDigitKernel(Index1D index, ArrayView<int> histogram, ArrayView<int> state, int buckets, int bits)
    {
        if (index != 0)
        {
            return;
        }
        int remaining = state[1];
        int digit = buckets - 1;
        while (digit >= 0 && histogram[digit] < remaining)
        {
            remaining -= histogram[digit];
            digit--;
        }
        if (digit < 0)
        {
            state[3] = 1;
            digit = 0;
        }
        state[2] = histogram[digit];
        state[0] = (int)(((uint)state[0] << bits) | (uint)digit);
        state[1] = remaining;
    }
}
