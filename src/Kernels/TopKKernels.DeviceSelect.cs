using ILGPU;

namespace ZeroFL.Kernels;

/// <summary>
/// The GPU strategy's selection, planned on the device: each radix pass counts into replicated
/// atomic histograms, sums them on the device, and one thread scans the merged histogram from the
/// top to pick the digit, carrying the prefix found so far and the count still to take in a small
/// device state that the next pass reads. The host reads the state once, at the end: one sync and
/// 16 bytes per selection instead of one histogram per pass.
/// </summary>
public sealed partial class TopKKernels
{
    /// <summary>Ints of the selection state after the histograms: prefix, remaining, tied, error.</summary>
    private const int SelectStateInts = 4;

    private readonly Action<Index1D, ArrayView<int>, int> startSelect;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<int>, ThreadRanges, ArrayView<int>, int, int, int, int> matchedHistogram;
    private readonly Action<Index1D, ArrayView<int>, ArrayView<int>, int, int> selectDigit;

    private TopKSelection SelectOnDevice(ArrayView<float> x, int n, int k, ArrayView<int> scratch)
    {
        int replicas = histogramReplicas;
        var histograms = scratch.SubView(0, (long)replicas * MaxBuckets);
        var state = scratch.SubView((long)replicas * MaxBuckets, SelectStateInts);
        int one = launch.Threads(1);
        startSelect(one, state, k);
        int t = launch.Threads(n);
        var ranges = ThreadRanges.For(n, t, strategy.ContiguousRanges);
        int matchShift = 31;
        foreach (var (shift, bits) in Passes)
        {
            int buckets = 1 << bits;
            launch.Zero(histograms.SubView(0, (long)replicas * buckets));
            matchedHistogram(t, x, histograms, ranges, state, matchShift, shift, buckets - 1, replicas);
            int tm = launch.Threads(buckets);
            mergeReplicas(tm, histograms, buckets, replicas, tm);
            selectDigit(one, histograms, state, buckets, bits);
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
