using ILGPU;

namespace ZeroFL.Kernels;

/// <summary>
/// The GPU backends' top-K, planned on the device. The selection: each radix pass counts into
/// replicated atomic histograms, sums them on the device, and one thread scans the merged histogram
/// from the top to pick the digit, carrying the prefix found so far and the count still to take in
/// a device state that the next pass reads; the final state is the selection (threshold bits, ties
/// to keep, tied, error flag), which every apply kernel here reads from the device. The chunk plan:
/// per-chunk counts, then one group of <see cref="ScanGroupSize"/> threads scans them into output
/// offsets and tie shares in place (shared memory and barriers). Plain scalar kernels, executed by
/// the tests on OpenCL (rusticl).
/// </summary>
public sealed partial class TopKKernels
{
    /// <summary>Threads of the group that scans a compress plan.</summary>
    internal const int ScanGroupSize = 256;

    private Action<Index1D, ArrayView<int>, int>? startSelect;
    private Action<Index1D, ArrayView<float>, ArrayView<int>, ThreadRanges, ArrayView<int>, int, int, int, int>? matchedHistogram;
    private Action<Index1D, ArrayView<int>, int, int, int>? mergeReplicas;
    private Action<Index1D, ArrayView<int>, ArrayView<int>, int, int>? selectDigit;
    private Action<KernelConfig, ArrayView<int>, int, ArrayView<int>, int>? scanChunks;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int>? deviceMask;
    private Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<int>, int, int, int, int>? deviceChunkCount;
    private Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<int>, int, int, int, int>? deviceTrimTies;
    private Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<int>, ArrayView<int>, int, int, int, int, int>? deviceScatter;

    private void LoadDeviceSelect()
    {
        mergeReplicas = launch.Load<ArrayView<int>, int, int, int>(MergeReplicasKernel);
        startSelect = launch.Load<ArrayView<int>, int>(StartSelectKernel);
        matchedHistogram = launch.Load<ArrayView<float>, ArrayView<int>, ThreadRanges, ArrayView<int>, int, int, int, int>(MatchedHistogramKernel);
        selectDigit = launch.Load<ArrayView<int>, ArrayView<int>, int, int>(SelectDigitKernel);
    }

    private void LoadDeviceApply()
    {
        if (launch.Accelerator.MaxNumThreadsPerGroup < ScanGroupSize)
        {
            throw new ArgumentException($"the compress plan scan needs {ScanGroupSize} threads per group; {launch.Accelerator.Name} allows {launch.Accelerator.MaxNumThreadsPerGroup}");
        }
        scanChunks = launch.LoadGrouped<ArrayView<int>, int, ArrayView<int>, int>(ScanChunksKernel);
        deviceMask = launch.Load<ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int>(DeviceMaskKernel);
        deviceChunkCount = launch.Load<ArrayView<float>, ArrayView<int>, ArrayView<int>, int, int, int, int>(DeviceChunkCountKernel);
        deviceTrimTies = launch.Load<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<int>, int, int, int, int>(DeviceTrimTiesKernel);
        deviceScatter = launch.Load<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<int>, ArrayView<int>, int, int, int, int, int>(DeviceScatterKernel);
    }

    /// <summary>
    /// The radix select on the device, into <paramref name="target"/> when given (the selection is
    /// then returned <see cref="TopKSelection.OnDeviceOnly"/>, nothing read back), else into the
    /// scratch and read back (one sync, 16 bytes).
    /// </summary>
    private TopKSelection SelectOnDevice(ArrayView<float> x, int n, int k, ArrayView<int> scratch, ArrayView<int> target)
    {
        int replicas = histogramReplicas;
        var histograms = scratch.SubView(0, (long)replicas * MaxBuckets);
        bool keep = target.Length > 0;
        var state = keep ? target.SubView(0, TopKSelection.StateInts) : scratch.SubView((long)replicas * MaxBuckets, TopKSelection.StateInts);
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
        var selection = TopKSelection.DeviceOnly(state, k);
        return keep ? selection : states.OnHost(selection) with { State = default };
    }

    /// <summary>
    /// The compare pass keeping every tie the selection may keep any of, then, unless the host
    /// knows no tie is kept, the chunk plan and a trim to the first TiesToKeep: no read back.
    /// </summary>
    private void MaskOnDevice(ArrayView<float> x, int n, TopKSelection selection, ArrayView<float> output, ArrayView<int> scratch)
    {
        var state = states.OnDevice(selection);
        int t = launch.Threads(n);
        deviceMask!(t, x, output, state, n, t);
        if (!selection.OnDeviceOnly && selection.TiesToKeep == 0)
        {
            return;
        }
        var (chunks, length) = Chunks(n);
        PlanChunksOnDevice(x, n, state, scratch, chunks, length, knownCount: n);
        int tc = launch.Threads(chunks);
        deviceTrimTies!(tc, x, scratch, output, state, n, chunks, length, tc);
    }

    /// <summary>The unstaged compress's write pass over a device plan, up to <paramref name="planned"/> entries.</summary>
    private void ScatterOnDevice(ArrayView<float> x, int n, TopKSelection selection, int planned,
        ArrayView<float> values, ArrayView<int> indices, ArrayView<int> scratch)
    {
        var (chunks, length) = Chunks(n);
        int t = launch.Threads(chunks);
        deviceScatter!(t, x, scratch, values, indices, states.OnDevice(selection), n, planned, chunks, length, t);
    }

    /// <summary>
    /// Counts each chunk's elements above and equal to the threshold, then scans them on the device
    /// into scratch[2c] (output offset, at most the limit) and scratch[2c + 1] (ties to keep), and
    /// the total into scratch[2 * chunks]. Returns <paramref name="knownCount"/> when it is known,
    /// else reads the total back.
    /// </summary>
    private int PlanChunksOnDevice(ArrayView<float> x, int n, ArrayView<int> state, ArrayView<int> scratch, int chunks, int length, int knownCount)
    {
        int t = launch.Threads(chunks);
        var plan = scratch.SubView(0, 2L * chunks + 1);
        deviceChunkCount!(t, x, plan, state, n, chunks, length, t);
        scanChunks!(new KernelConfig(1, ScanGroupSize), plan, chunks, state, knownCount >= 0 ? knownCount : int.MaxValue);
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
    /// them, at most limit) and shares of the first selection[1] ties; the last thread writes the
    /// total to plan[2 * chunks].
    /// </summary>
    [GpuKernel]
    internal static void ScanChunksKernel(ArrayView<int> plan, int chunks, ArrayView<int> selection, int limit)
    {
        var greater = SharedMemory.Allocate<int>(ScanGroupSize);
        var equal = SharedMemory.Allocate<int>(ScanGroupSize);
        int tiesToKeep = selection[1];
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

    /// <summary>Bucket b of replica 0 becomes the sum of bucket b over every replica.</summary>
    [GpuKernel]
    internal static void MergeReplicasKernel(Index1D index, ArrayView<int> histograms, int buckets, int replicas, int stride)
    {
        for (int b = index; b < buckets; b += stride)
        {
            int sum = 0;
            for (int r = 0; r < replicas; r++)
            {
                sum += histograms[(long)r * buckets + b];
            }
            histograms[b] = sum;
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

    /// <summary>output = x where key &gt; selection[0], or == it when selection[1] (ties to keep) &gt; 0; else 0.</summary>
    [GpuKernel]
    internal static void DeviceMaskKernel(Index1D index, ArrayView<float> x, ArrayView<float> output, ArrayView<int> selection, int n, int stride)
    {
        uint threshold = (uint)selection[0];
        bool keepEqual = selection[1] > 0;
        for (int i = index; i < n; i += stride)
        {
            float v = x[i];
            uint key = Interop.FloatAsInt(v) & MagnitudeMask;
            output[i] = key > threshold || (key == threshold && keepEqual) ? v : 0f;
        }
    }

    /// <summary>Per chunk c: counts[2c] = elements with key &gt; selection[0], counts[2c + 1] = key == selection[0].</summary>
    [GpuKernel]
    internal static void DeviceChunkCountKernel(
        Index1D index, ArrayView<float> x, ArrayView<int> counts, ArrayView<int> selection, int n, int chunks, int length, int stride)
    {
        uint threshold = (uint)selection[0];
        for (int c = index; c < chunks; c += stride)
        {
            long begin = (long)c * length;
            long both = TopKLoops.Count(x, begin, Math.Min(n, begin + length), threshold);
            counts[2 * c] = (int)(both >> 32);
            counts[2 * c + 1] = (int)(both & 0xFFFFFFFFL);
        }
    }

    /// <summary>Per chunk c: zeroes output where key == selection[0] past the chunk's first plan[2c + 1] such elements.</summary>
    [GpuKernel]
    internal static void DeviceTrimTiesKernel(
        Index1D index, ArrayView<float> x, ArrayView<int> plan, ArrayView<float> output, ArrayView<int> selection,
        int n, int chunks, int length, int stride)
    {
        uint threshold = (uint)selection[0];
        for (int c = index; c < chunks; c += stride)
        {
            long begin = (long)c * length;
            TopKLoops.TrimTies(x, output, begin, Math.Min(n, begin + length), threshold, plan[2 * c + 1]);
        }
    }

    /// <summary>
    /// Per chunk c: writes kept (value, index) pairs in index order from plan[2c] on, never at or
    /// past the next chunk's offset (the last chunk: total): every key &gt; selection[0] and the
    /// first plan[2c + 1] keys equal to it.
    /// </summary>
    [GpuKernel]
    internal static void DeviceScatterKernel(
        Index1D index, ArrayView<float> x, ArrayView<int> plan, ArrayView<float> values, ArrayView<int> indices, ArrayView<int> selection,
        int n, int total, int chunks, int length, int stride)
    {
        uint threshold = (uint)selection[0];
        for (int c = index; c < chunks; c += stride)
        {
            long begin = (long)c * length;
            int limit = Math.Min(total, c + 1 < chunks ? plan[2 * c + 2] : total);
            TopKLoops.Scatter(x, values, indices, begin, Math.Min(n, begin + length), threshold, plan[2 * c], limit, plan[2 * c + 1]);
        }
    }
}
