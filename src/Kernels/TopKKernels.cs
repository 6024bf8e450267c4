using System.Buffers;
using System.Globalization;
using ILGPU;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// What an exact magnitude top-K keeps: every element whose magnitude key (the bit pattern of |x|,
/// see <see cref="TopKKernels"/>) is greater than <see cref="ThresholdBits"/>, and of the elements
/// whose key equals it, the first <see cref="TiesToKeep"/> in increasing index order.
/// <see cref="TopKKernels.Select"/> makes one; <see cref="TopKKernels.Mask"/>,
/// <see cref="TopKKernels.Compress"/> and <see cref="TopKKernels.CountKept"/> apply one, to the same
/// tensor or (threshold reuse) to a changed one.
/// </summary>
/// <param name="ThresholdBits">
/// Magnitude key of the K-th largest element: <c>bits(x) &amp; 0x7FFFFFFF</c>. A value above
/// <c>0x7FFFFFFF</c> (as in <see cref="None"/>) keeps nothing.
/// </param>
/// <param name="TiesToKeep">How many elements with key == <see cref="ThresholdBits"/> are kept, lowest index first (at least 0).</param>
/// <param name="Kept">K: how many elements the selection kept on the tensor it was selected from.</param>
/// <param name="Tied">How many elements of that tensor had key == <see cref="ThresholdBits"/> (at least <see cref="TiesToKeep"/>).</param>
public readonly record struct TopKSelection(uint ThresholdBits, int TiesToKeep, int Kept, int Tied)
{
    /// <summary>The selection that keeps nothing (K = 0).</summary>
    public static TopKSelection None => new(uint.MaxValue, 0, 0, 0);

    /// <summary>True when no tensor has an element this selection keeps.</summary>
    public bool KeepsNothing => ThresholdBits > TopKKernels.MagnitudeMask;

    /// <summary>The threshold magnitude |x| as a float (NaN for <see cref="None"/>); for logging.</summary>
    public float Threshold => KeepsNothing ? float.NaN : BitConverter.UInt32BitsToSingle(ThresholdBits);
}

/// <summary>
/// Exact magnitude top-K of a flat float tensor: keep the K entries of largest |x|, ties in |x|
/// broken by lower index first. Used by every SWAT sparse layer (weights and activations) and by
/// the sparse uplink.
/// <para>
/// Magnitude order: the key of x is its bit pattern with the sign cleared, read as an unsigned
/// int. It is monotone in |x| for every non-NaN value (so -0.0 and +0.0 tie, denormals sit below
/// normals, +-infinity above every finite value), and it puts NaN above infinity (NaNs order among
/// themselves by their payload bits). A NaN is therefore kept before anything else; nothing crashes.
/// </para>
/// <para>
/// Method (no sort): radix select over the 31-bit key in three histogram passes (11, 10 and 10
/// bits), each counting only the elements whose higher bits match the digits found so far; a scan
/// of each small histogram from the top finds the digit holding the K-th element. The result is the
/// exact K-th key T and the number r of elements equal to T to keep. On the CPU accelerator each
/// launched thread fills a private histogram (no contention) and the host merges and scans them
/// (a read is free there); on GPUs threads add atomically into a few replicated histograms, which
/// are summed and scanned on the device, and the host reads the result once (see
/// <c>TopKKernels.DevicePlan.cs</c>). Applying a selection is one compare pass; only when more
/// elements equal T than r may be kept does an index-ordered pass run (contiguous chunks, per-chunk
/// counts, exclusive prefix on the host, on the device for GPUs). Compress always takes that
/// chunked path so its output is in increasing index order. On the CPU accelerator every thread
/// works on one contiguous block through the Vector256 loops of <see cref="TopKRanges"/>; GPU
/// backends compile their scalar twins (the chunked GPU passes are correct but not tuned:
/// one thread walks each chunk of at least 256 elements).
/// </para>
/// <para>
/// Every method takes a scratch view of at least <see cref="ScratchLength"/> ints (contents
/// ignored and overwritten). Methods read small results back to the host, so they are synchronous.
/// CPU reference: <see cref="Reference.TopKReference"/>.
/// </para>
/// </summary>
public sealed partial class TopKKernels
{
    /// <summary>Mask that clears the sign bit: the magnitude key of a float.</summary>
    public const uint MagnitudeMask = 0x7FFFFFFF;

    /// <summary>The radix-select passes: (lowest bit of the digit, digit width). 11 + 10 + 10 = 31 key bits.</summary>
    private static readonly (int Shift, int Bits)[] Passes = [(20, 11), (10, 10), (0, 10)];

    private const int MaxBuckets = 1 << 11;
    private const int GpuHistogramReplicas = 32;

    private readonly KernelLaunch launch;
    private readonly TopKStrategy strategy;
    private readonly int histogramReplicas;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<int>, ThreadRanges, int, uint, int, int>? privateHistogram;
    private readonly Action<Index1D, ArrayView<int>, int, int, int>? mergeReplicas;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, ThreadRanges, uint, int> mask;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<int>, int, int, int, uint, int> chunkCount;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int, int, uint, int> trimTies;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<int>, int, int, int, int, uint, int> scatter;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, int, int, int, int, uint, int>? chunkStage;
    private readonly Action<Index1D, ArrayView<int>, ArrayView<int>, ArrayView<float>, int, ArrayView<float>, ArrayView<int>, int, int, uint, int>? chunkCopy;

    /// <summary>Loads the kernels once for the accelerator of <paramref name="launch"/>.</summary>
    public TopKKernels(KernelLaunch launch)
        : this(launch, TopKStrategy.For(launch))
    {
    }

    /// <summary>
    /// Loads the kernels with an explicit strategy, so tests can run the GPU strategy (atomic
    /// histograms, grid-stride loops, many short chunks) on the CPU accelerator.
    /// </summary>
    internal TopKKernels(KernelLaunch launch, TopKStrategy strategy)
    {
        this.launch = launch;
        this.strategy = strategy;
        histogramReplicas = strategy.AtomicHistograms ? GpuHistogramReplicas : launch.MaxThreads;
        // Private histograms merged on the host (the CPU strategy), or atomic ones selected on the device (GPUs).
        if (!strategy.AtomicHistograms)
        {
            privateHistogram = launch.Load<ArrayView<float>, ArrayView<int>, ThreadRanges, int, uint, int, int>(PrivateHistogramKernel);
        }
        else
        {
            mergeReplicas = launch.Load<ArrayView<int>, int, int, int>(MergeReplicasKernel);
            startSelect = launch.Load<ArrayView<int>, int>(StartSelectKernel);
            matchedHistogram = launch.Load<ArrayView<float>, ArrayView<int>, ThreadRanges, ArrayView<int>, int, int, int, int>(MatchedHistogramKernel);
            selectDigit = launch.Load<ArrayView<int>, ArrayView<int>, int, int>(SelectDigitKernel);
        }
        if (!launch.IsCpu)
        {
            if (launch.Accelerator.MaxNumThreadsPerGroup < ScanGroupSize)
            {
                throw new ArgumentException($"the compress plan scan needs {ScanGroupSize} threads per group; {launch.Accelerator.Name} allows {launch.Accelerator.MaxNumThreadsPerGroup}");
            }
            scanChunks = launch.LoadGrouped<ArrayView<int>, int, int, int>(ScanChunksKernel);
        }
        mask = launch.Load<ArrayView<float>, ArrayView<float>, ArrayView<int>, ThreadRanges, uint, int>(MaskKernel);
        chunkCount = launch.Load<ArrayView<float>, ArrayView<int>, int, int, int, uint, int>(ChunkCountKernel);
        trimTies = launch.Load<ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int, int, uint, int>(TrimTiesKernel);
        scatter = launch.Load<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<int>, int, int, int, int, uint, int>(ScatterKernel);
        // Staged (one-pass) compress is a CPU technique; GPU backends plan on the device.
        if (launch.IsCpu)
        {
            chunkStage = launch.Load<ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, int, int, int, int, uint, int>(ChunkStageKernel);
            chunkCopy = launch.Load<ArrayView<int>, ArrayView<int>, ArrayView<float>, int, ArrayView<float>, ArrayView<int>, int, int, uint, int>(ChunkCopyKernel);
        }
    }

    /// <summary>
    /// K = ceil(fraction * n), clamped to [0, n]: fraction 0 keeps none, 1 keeps all, any positive
    /// fraction of a non-empty tensor keeps at least one. The fraction is read as the shortest
    /// decimal that round-trips to the float (what was typed: 0.1f means 0.1, so 10% of 10 is
    /// exactly 1) and the product is exact decimal arithmetic, so no float rounding moves K.
    /// Throws <see cref="ArgumentException"/> for a fraction outside [0, 1] (or NaN) or n outside
    /// [0, int.MaxValue].
    /// </summary>
    public static int CountFor(long n, float fraction)
    {
        if (n < 0 || n > int.MaxValue)
        {
            throw new ArgumentException($"top-k count: element count {n} is outside [0, {int.MaxValue}]");
        }
        if (!(fraction >= 0f && fraction <= 1f))
        {
            throw new ArgumentException($"top-k count: fraction {fraction} is outside [0, 1]");
        }
        if (n == 0 || fraction == 0f)
        {
            return 0;
        }
        if (fraction == 1f)
        {
            return (int)n;
        }
        Span<char> text = stackalloc char[32];
        fraction.TryFormat(text, out int written, "R", CultureInfo.InvariantCulture);
        // Fractions below 1e-28 parse as 0 here; ceil of any positive product below 1 is 1 anyway.
        decimal exact = decimal.Parse(text[..written], NumberStyles.Float, CultureInfo.InvariantCulture);
        decimal k = decimal.Ceiling(exact * n);
        return (int)Math.Clamp(k, 1m, n);
    }

    /// <summary>Ints of scratch every method needs for a tensor of <paramref name="n"/> elements.</summary>
    public long ScratchLength(long n)
    {
        int count = HostCheck.Count(n, "top-k scratch length");
        return Math.Max((long)histogramReplicas * MaxBuckets + SelectStateInts, 2L * Chunks(count).Count + 1);
    }

    /// <summary>
    /// Finds the exact top-K of <paramref name="x"/> (flat, n elements) by magnitude: the K-th
    /// largest key and how many elements equal to it are kept. <paramref name="k"/> is in [0, n]
    /// (see <see cref="CountFor"/>); k = 0 returns <see cref="TopKSelection.None"/>. Reads x only.
    /// </summary>
    public TopKSelection Select(ArrayView<float> x, int k, ArrayView<int> scratch)
    {
        int n = HostCheck.Count(x.Length, "top-k select");
        if (k < 0 || k > n)
        {
            throw new ArgumentException($"top-k select: k = {k} is outside [0, {n}]");
        }
        HostCheck.Length(scratch, ScratchLength(n), "top-k select scratch");
        if (k == 0)
        {
            return TopKSelection.None;
        }
        if (strategy.AtomicHistograms)
        {
            return SelectOnDevice(x, n, k, scratch);
        }
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
    /// output[i] = x[i] where <paramref name="selection"/> keeps element i, 0 elsewhere. output has
    /// x's length and may be x itself (in place). The selection may come from another tensor of any
    /// length (threshold reuse): then every element with key &gt; T is kept and, of those with key
    /// == T, the first TiesToKeep in index order, so the kept count is whatever passes.
    /// </summary>
    public void Mask(ArrayView<float> x, TopKSelection selection, ArrayView<float> output, ArrayView<int> scratch)
    {
        HostCheck.SameLength(x, output, "top-k mask");
        int n = HostCheck.Count(x.Length, "top-k mask");
        CheckSelection(selection, "top-k mask");
        HostCheck.Length(scratch, ScratchLength(n), "top-k mask scratch");
        if (n == 0)
        {
            return;
        }
        int t = launch.Threads(n);
        bool keepEqual = selection.TiesToKeep > 0;
        var equalCount = scratch.SubView(0, 1);
        if (keepEqual)
        {
            launch.Zero(equalCount);
        }
        mask(t, x, output, equalCount, ThreadRanges.For(n, t, strategy.ContiguousRanges), selection.ThresholdBits, keepEqual ? 1 : 0);
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
        PlanChunks(x, n, selection, scratch, chunks, length);
        trimTies(launch.Threads(chunks), x, scratch, output, n, chunks, length, selection.ThresholdBits, launch.Threads(chunks));
    }

    /// <summary>
    /// How many elements of <paramref name="x"/> <paramref name="selection"/> keeps (K for the
    /// tensor it was selected from; anything in [0, n] for another one). Sizes the lists of
    /// <see cref="Compress"/> under threshold reuse.
    /// </summary>
    public int CountKept(ArrayView<float> x, TopKSelection selection, ArrayView<int> scratch)
    {
        int n = HostCheck.Count(x.Length, "top-k count kept");
        CheckSelection(selection, "top-k count kept");
        HostCheck.Length(scratch, ScratchLength(n), "top-k count kept scratch");
        if (n == 0 || selection.KeepsNothing)
        {
            return 0;
        }
        var (chunks, length) = Chunks(n);
        return PlanChunks(x, n, selection, scratch, chunks, length);
    }

    /// <summary>
    /// Writes the entries <paramref name="selection"/> keeps as (value, index) pairs in increasing
    /// index order into <paramref name="values"/> and <paramref name="indices"/>, which need at
    /// least that many elements (K for a fresh selection; see <see cref="CountKept"/> under reuse;
    /// entries past the count are left alone). Returns the count. Threshold reuse as in
    /// <see cref="Mask"/>.
    /// </summary>
    public int Compress(ArrayView<float> x, TopKSelection selection, ArrayView<float> values, ArrayView<int> indices, ArrayView<int> scratch)
    {
        int kept = PlanCompress(x, selection, scratch);
        CompressPlanned(x, selection, kept, values, indices, scratch);
        return kept;
    }

    /// <summary>
    /// First half of <see cref="Compress"/>: counts what <paramref name="selection"/> keeps of
    /// <paramref name="x"/> and leaves the plan (each chunk's output offset and share of the ties)
    /// in <paramref name="scratch"/>. Returns the count, so the caller can size the lists and then
    /// call <see cref="CompressPlanned"/> with the same tensor, selection and scratch: one counting
    /// pass instead of <see cref="CountKept"/> followed by <see cref="Compress"/>.
    /// </summary>
    public int PlanCompress(ArrayView<float> x, TopKSelection selection, ArrayView<int> scratch)
    {
        int n = HostCheck.Count(x.Length, "top-k compress");
        CheckSelection(selection, "top-k compress");
        HostCheck.Length(scratch, ScratchLength(n), "top-k compress scratch");
        if (n == 0 || selection.KeepsNothing)
        {
            return 0;
        }
        var (chunks, length) = Chunks(n);
        return PlanChunks(x, n, selection, scratch, chunks, length);
    }

    /// <summary>
    /// Second half of <see cref="Compress"/>: writes the <paramref name="planned"/> (value, index)
    /// pairs that <see cref="PlanCompress"/> counted, in increasing index order.
    /// </summary>
    public void CompressPlanned(ArrayView<float> x, TopKSelection selection, int planned,
        ArrayView<float> values, ArrayView<int> indices, ArrayView<int> scratch)
    {
        int n = CheckPlanned(x, selection, planned, values, indices, scratch);
        if (planned == 0 || selection.KeepsNothing)
        {
            return;
        }
        var (chunks, length) = Chunks(n);
        int t = launch.Threads(chunks);
        scatter(t, x, scratch, values, indices, n, planned, chunks, length, selection.ThresholdBits, t);
    }

    /// <summary>The index-ordered chunks a compress of <paramref name="n"/> elements runs in (the segments of its staging).</summary>
    public (int Count, int Length) CompressChunks(long n) => Chunks(HostCheck.Count(n, "top-k compress"));

    /// <summary>
    /// <see cref="PlanCompress(ArrayView{float}, TopKSelection, ArrayView{int})"/> that also stages:
    /// the counting pass writes each chunk's elements with key &gt;= threshold (at most
    /// <see cref="EntryStaging.Slot"/>; <see cref="CompressChunks"/> segments) into its slot, so that
    /// <see cref="CompressPlanned(ArrayView{float}, TopKSelection, SelectedPlan, EntryStaging, ArrayView{float}, ArrayView{int}, ArrayView{int})"/>
    /// copies the kept ones instead of reading <paramref name="x"/> again. A chunk longer than the
    /// slot leaves the plan unstaged (the compress then reads x).
    /// </summary>
    /// <remarks>
    /// Staging is a CPU technique: on a GPU backend the plan is made on the device instead (counts,
    /// then a one-group scan), the staging is not used and the plan is unstaged. With
    /// <paramref name="knownCount"/> (the selection's <see cref="TopKSelection.Kept"/> when it was
    /// selected on this very x) nothing is read back; with -1 the total is (one int, one sync).
    /// </remarks>
    public SelectedPlan PlanCompress(ArrayView<float> x, TopKSelection selection, ArrayView<int> scratch, EntryStaging staging, int knownCount = -1)
    {
        int n = HostCheck.Count(x.Length, "top-k compress");
        CheckSelection(selection, "top-k compress");
        HostCheck.Length(scratch, ScratchLength(n), "top-k compress scratch");
        var (chunks, length) = Chunks(n);
        staging.Check(chunks, length, "top-k compress");
        if (knownCount < -1 || knownCount > n)
        {
            throw new ArgumentException($"top-k compress: known count {knownCount} is outside [-1, {n}]");
        }
        if (n == 0 || selection.KeepsNothing)
        {
            return new SelectedPlan(0, true, 0);
        }
        if (!launch.IsCpu)
        {
            return new SelectedPlan(PlanChunksOnDevice(x, n, selection, scratch, chunks, length, knownCount), false, 0);
        }
        int t = launch.Threads(chunks);
        var plan = scratch.SubView(0, 2L * chunks);
        chunkStage!(t, x, plan, staging.Indices, staging.Values, staging.Slot, n, chunks, length, selection.ThresholdBits, t);
        var (total, longest) = ScanChunks(plan, chunks, selection.TiesToKeep);
        return new SelectedPlan(total, longest <= staging.Slot, longest);
    }

    /// <summary>
    /// Second half of a staged plan (the staging <see cref="PlanCompress(ArrayView{float}, TopKSelection, ArrayView{int}, EntryStaging)"/>
    /// called just before with the same tensor, selection, scratch and staging): the same (value,
    /// index) pairs as the unstaged compress, copied from the staging when the plan is staged.
    /// </summary>
    public void CompressPlanned(ArrayView<float> x, TopKSelection selection, SelectedPlan plan, EntryStaging staging,
        ArrayView<float> values, ArrayView<int> indices, ArrayView<int> scratch)
    {
        if (!plan.Staged)
        {
            CompressPlanned(x, selection, plan.Count, values, indices, scratch);
            return;
        }
        int n = CheckPlanned(x, selection, plan.Count, values, indices, scratch);
        var (chunks, length) = Chunks(n);
        staging.Check(chunks, length, "top-k compress");
        if (plan.Count == 0 || selection.KeepsNothing)
        {
            return;
        }
        int t = launch.Threads(chunks);
        chunkCopy!(t, scratch, staging.Indices, staging.Values, staging.Slot, values, indices, plan.Count, chunks, selection.ThresholdBits, t);
    }

    /// <summary>The checks of a compress's second half; returns the element count.</summary>
    private int CheckPlanned(ArrayView<float> x, TopKSelection selection, int planned,
        ArrayView<float> values, ArrayView<int> indices, ArrayView<int> scratch)
    {
        int n = HostCheck.Count(x.Length, "top-k compress");
        CheckSelection(selection, "top-k compress");
        HostCheck.Length(scratch, ScratchLength(n), "top-k compress scratch");
        if (planned < 0 || planned > n)
        {
            throw new ArgumentException($"top-k compress: planned count {planned} is outside [0, {n}]");
        }
        HostCheck.Length(values, planned, "top-k compress values");
        HostCheck.Length(indices, planned, "top-k compress indices");
        return n;
    }

    private static void CheckSelection(TopKSelection selection, string what)
    {
        if (selection.TiesToKeep < 0)
        {
            throw new ArgumentException($"{what}: selection keeps {selection.TiesToKeep} ties (must be at least 0)");
        }
    }

    /// <summary>Contiguous index chunks: count and length (the last may be shorter).</summary>
    private (int Count, int Length) Chunks(int n)
    {
        if (n == 0)
        {
            return (0, 1);
        }
        long most = Math.Max(1, strategy.MaxChunks);
        long length = Math.Max(Math.Max(1, strategy.MinChunkLength), (n + most - 1) / most);
        return ((int)((n + length - 1) / length), (int)length);
    }

    /// <summary>
    /// Counts, per chunk, the elements above and equal to the threshold; turns them into each
    /// chunk's output offset and share of the ties (first TiesToKeep in index order) in
    /// scratch[2c] (offset) and scratch[2c + 1] (ties to keep), on the host (CPU) or on the device
    /// (GPU backends); returns the total kept.
    /// </summary>
    private int PlanChunks(ArrayView<float> x, int n, TopKSelection selection, ArrayView<int> scratch, int chunks, int length)
    {
        if (!launch.IsCpu)
        {
            return PlanChunksOnDevice(x, n, selection, scratch, chunks, length, knownCount: -1);
        }
        int t = launch.Threads(chunks);
        var plan = scratch.SubView(0, 2L * chunks);
        chunkCount(t, x, plan, n, chunks, length, selection.ThresholdBits, t);
        return ScanChunks(plan, chunks, selection.TiesToKeep).Total;
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
    [GpuKernel]
    internal static void PrivateHistogramKernel(
        Index1D index, ArrayView<float> x, ArrayView<int> histograms,
        ThreadRanges ranges, int matchShift, uint match, int shift, int digitMask)
    {
        var own = histograms.SubView((long)index.X * (digitMask + 1), digitMask + 1);
        TopKRanges.Histogram(x, own, ranges.Begin(index), ranges.End(index), ranges.Step, matchShift, match, shift, digitMask);
    }

    /// <summary>Bucket b of replica 0 becomes the sum of bucket b over every replica (GPU).</summary>
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
    /// output = x where key &gt; threshold (or == threshold when keepEqual != 0), else 0; adds the
    /// number of elements equal to the threshold to equalCount[0] (one atomic per thread).
    /// </summary>
    [GpuKernel]
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
    [GpuKernel]
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
    [GpuKernel]
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
    [GpuKernel]
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
    [GpuKernel]
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
    [GpuKernel]
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

/// <summary>
/// How <see cref="TopKKernels"/> lays work out. The CPU accelerator: private histograms per thread,
/// one contiguous range per thread, one chunk per thread. GPUs: atomic histograms, grid-stride
/// loops, chunks of at least 256 elements (one per thread, at most the threads the device runs).
/// </summary>
/// <param name="AtomicHistograms">Atomic adds into replicated histograms instead of private ones.</param>
/// <param name="ContiguousRanges">One contiguous block per thread instead of a grid stride.</param>
/// <param name="MinChunkLength">Shortest index-ordered chunk (Compress, tie trimming).</param>
/// <param name="MaxChunks">Most chunks.</param>
internal readonly record struct TopKStrategy(bool AtomicHistograms, bool ContiguousRanges, int MinChunkLength, int MaxChunks)
{
    /// <summary>The strategy for the accelerator of <paramref name="launch"/>.</summary>
    public static TopKStrategy For(KernelLaunch launch) => launch.IsCpu
        ? new TopKStrategy(AtomicHistograms: false, ContiguousRanges: true, MinChunkLength: 1, MaxChunks: launch.MaxThreads)
        : new TopKStrategy(AtomicHistograms: true, ContiguousRanges: false, MinChunkLength: 256, MaxChunks: launch.MaxThreads);
}
