using System.Buffers;
using System.Globalization;
using ILGPU;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

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
/// exact K-th key T and the number r of elements equal to T to keep. Applying a selection is one
/// compare pass; where more elements equal T than r may be kept an index-ordered pass runs
/// (contiguous chunks, per-chunk counts, an exclusive prefix). Compress always takes that chunked
/// path so its output is in increasing index order.
/// </para>
/// <para>
/// Two implementations behind this one API, chosen once per accelerator. The CPU accelerator
/// (<c>Cpu/TopKKernels.Cpu.cs</c>) selects the same K-th key another way: a small tensor on a host
/// copy of its keys; a large one from a sample that brackets the K-th key, one pass that counts
/// the keys above the bracket and collects those inside, and the host's radix passes over those
/// few (the three histogram passes above where the bracket misses). Applying a selection walks one
/// contiguous block per thread through the SIMD loops of <see cref="TopKRanges"/>, and the host
/// scans chunk counts (a read is free there). GPU backends (<c>TopKKernels.Gpu.cs</c>): atomic
/// replicated histograms summed and scanned on the device, the selection kept in a device state
/// that the apply kernels read, chunk plans scanned by one group in shared memory: a selection
/// into a caller's state view, a mask and a compress of known size read nothing back.
/// </para>
/// <para>
/// Every method takes a scratch view of at least <see cref="ScratchLength"/> ints (contents
/// ignored and overwritten). Only what the caller asks the host to know is read back (a count under
/// threshold reuse, a selection without a state view on a GPU).
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
    private readonly SelectionStates states;

    /// <summary>Loads the kernels once for the accelerator of <paramref name="launch"/>.</summary>
    public TopKKernels(KernelLaunch launch)
        : this(launch, TopKStrategy.For(launch))
    {
    }

    /// <summary>
    /// Loads the kernels with an explicit strategy, so tests can run the GPU strategy's selection
    /// (atomic histograms selected on the device, grid-stride loops, many short chunks) on the CPU
    /// accelerator. Applying a selection follows the accelerator: host-planned CPU kernels there.
    /// </summary>
    internal TopKKernels(KernelLaunch launch, TopKStrategy strategy)
    {
        this.launch = launch;
        this.strategy = strategy;
        states = new SelectionStates(launch);
        histogramReplicas = strategy.AtomicHistograms ? GpuHistogramReplicas : launch.MaxThreads;
        if (strategy.AtomicHistograms)
        {
            LoadDeviceSelect();
        }
        else
        {
            LoadHostSelect();
        }
        if (launch.IsCpu)
        {
            LoadHostApply();
        }
        else
        {
            LoadDeviceApply();
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
        if (!(fraction >= 0f && fraction <= 1f))
        {
            throw new ArgumentException($"top-k count: fraction {fraction} is outside [0, 1]");
        }
        Span<char> text = stackalloc char[32];
        fraction.TryFormat(text, out int written, "R", CultureInfo.InvariantCulture);
        // Fractions below 1e-28 parse as 0 here; ceil of any positive product below 1 is 1 anyway.
        decimal exact = decimal.Parse(text[..written], NumberStyles.Float, CultureInfo.InvariantCulture);
        return CountFor(n, fraction > 0f && exact == 0m ? 1e-28m : exact);
    }

    /// <summary>
    /// K = ceil(fraction * n) in exact decimal arithmetic, clamped to [0, n] (at least 1 for a
    /// positive fraction of a non-empty tensor): the count for a fraction computed exactly, e.g.
    /// 1 - 0.9 = 0.1 (the float 1f - 0.9f is 0.100000024, one entry too many whenever 0.1 n is whole).
    /// Throws <see cref="ArgumentException"/> for a fraction outside [0, 1] or n outside [0, int.MaxValue].
    /// </summary>
    public static int CountFor(long n, decimal fraction)
    {
        if (n < 0 || n > int.MaxValue)
        {
            throw new ArgumentException($"top-k count: element count {n} is outside [0, {int.MaxValue}]");
        }
        if (fraction < 0m || fraction > 1m)
        {
            throw new ArgumentException($"top-k count: fraction {fraction} is outside [0, 1]");
        }
        if (n == 0 || fraction == 0m)
        {
            return 0;
        }
        return (int)Math.Clamp(decimal.Ceiling(fraction * n), 1m, n);
    }

    /// <summary>Ints of scratch every method needs for a tensor of <paramref name="n"/> elements.</summary>
    public long ScratchLength(long n)
    {
        int count = HostCheck.Count(n, "top-k scratch length");
        long length = Math.Max((long)histogramReplicas * MaxBuckets + TopKSelection.StateInts, 2L * Chunks(count).Count + 1);
        return strategy.AtomicHistograms ? length : Math.Max(length, BracketScratchLength(count));
    }

    /// <summary>
    /// Finds the exact top-K of <paramref name="x"/> (flat, n elements) by magnitude: the K-th
    /// largest key and how many elements equal to it are kept. <paramref name="k"/> is in [0, n]
    /// (see <see cref="CountFor"/>); k = 0 returns <see cref="TopKSelection.None"/>. Reads x only.
    /// With a <paramref name="state"/> view (<see cref="TopKSelection.StateInts"/> ints that outlive
    /// every use of the selection) the selection is also written there; a GPU backend then returns
    /// it <see cref="TopKSelection.OnDeviceOnly"/> and reads nothing back. Without one, a GPU
    /// backend reads the selection back (one sync).
    /// </summary>
    public TopKSelection Select(ArrayView<float> x, int k, ArrayView<int> scratch, ArrayView<int> state = default)
    {
        int n = HostCheck.Count(x.Length, "top-k select");
        if (k < 0 || k > n)
        {
            throw new ArgumentException($"top-k select: k = {k} is outside [0, {n}]");
        }
        HostCheck.Length(scratch, ScratchLength(n), "top-k select scratch");
        bool keepState = state.Length > 0;
        if (keepState)
        {
            HostCheck.Length(state, TopKSelection.StateInts, "top-k select state");
        }
        if (k == 0)
        {
            return TopKSelection.None;
        }
        if (strategy.AtomicHistograms)
        {
            return SelectOnDevice(x, n, k, scratch, keepState ? state : default);
        }
        var selection = SelectOnHost(x, n, k, scratch);
        if (!keepState)
        {
            return selection;
        }
        states.Store(selection, state);
        return selection with { State = state };
    }

    /// <summary>
    /// <paramref name="selection"/> with its threshold and ties on the host: itself, or, for a
    /// selection only the device holds, read from its state (one sync). For tests and logs.
    /// </summary>
    public TopKSelection OnHost(TopKSelection selection) => states.OnHost(selection);

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
        if (launch.IsCpu)
        {
            MaskOnHostPlan(x, n, states.OnHost(selection), output, scratch);
        }
        else
        {
            MaskOnDevice(x, n, selection, output, scratch);
        }
    }

    /// <summary>
    /// How many elements of <paramref name="x"/> <paramref name="selection"/> keeps (K for the
    /// tensor it was selected from; anything in [0, n] for another one). Sizes the lists of
    /// <see cref="Compress"/> under threshold reuse. A GPU backend reads the count back (one sync).
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
        return PlanChunks(x, n, selection, scratch, knownCount: -1);
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
    /// call <see cref="CompressPlanned(ArrayView{float}, TopKSelection, int, ArrayView{float}, ArrayView{int}, ArrayView{int})"/>
    /// with the same tensor, selection and scratch: one counting pass instead of
    /// <see cref="CountKept"/> followed by <see cref="Compress"/>. With <paramref name="knownCount"/>
    /// (the selection's <see cref="TopKSelection.Kept"/> when it was selected on this very x) a GPU
    /// backend reads nothing back and the plan is clamped to it; with -1 it reads the total.
    /// </summary>
    public int PlanCompress(ArrayView<float> x, TopKSelection selection, ArrayView<int> scratch, int knownCount = -1)
    {
        int n = HostCheck.Count(x.Length, "top-k compress");
        CheckSelection(selection, "top-k compress");
        HostCheck.Length(scratch, ScratchLength(n), "top-k compress scratch");
        CheckKnownCount(knownCount, n);
        if (n == 0 || selection.KeepsNothing)
        {
            return 0;
        }
        return PlanChunks(x, n, selection, scratch, knownCount);
    }

    /// <summary>
    /// Second half of <see cref="Compress"/>: writes the <paramref name="planned"/> (value, index)
    /// pairs that <see cref="PlanCompress(ArrayView{float}, TopKSelection, ArrayView{int}, int)"/> counted, in increasing index order.
    /// </summary>
    public void CompressPlanned(ArrayView<float> x, TopKSelection selection, int planned,
        ArrayView<float> values, ArrayView<int> indices, ArrayView<int> scratch)
    {
        int n = CheckPlanned(x, selection, planned, values, indices, scratch);
        if (planned == 0 || selection.KeepsNothing)
        {
            return;
        }
        if (launch.IsCpu)
        {
            ScatterOnHostPlan(x, n, states.OnHost(selection), planned, values, indices, scratch);
        }
        else
        {
            ScatterOnDevice(x, n, selection, planned, values, indices, scratch);
        }
    }

    /// <summary>The index-ordered chunks a compress of <paramref name="n"/> elements runs in (the segments of its staging).</summary>
    public (int Count, int Length) CompressChunks(long n) => Chunks(HostCheck.Count(n, "top-k compress"));

    /// <summary>
    /// <see cref="PlanCompress(ArrayView{float}, TopKSelection, ArrayView{int}, int)"/> that also stages:
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
        CheckKnownCount(knownCount, n);
        if (n == 0 || selection.KeepsNothing)
        {
            return new SelectedPlan(0, true, 0);
        }
        if (!launch.IsCpu)
        {
            return new SelectedPlan(PlanChunksOnDevice(x, n, states.OnDevice(selection), scratch, chunks, length, knownCount), false, 0);
        }
        return PlanStagedOnHost(x, n, states.OnHost(selection), scratch, staging, chunks, length);
    }

    /// <summary>
    /// Second half of a staged plan (the staging <see cref="PlanCompress(ArrayView{float}, TopKSelection, ArrayView{int}, EntryStaging, int)"/>
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
        CopyStagedOnHost(states.OnHost(selection), plan, staging, values, indices, scratch, chunks);
    }

    /// <summary>
    /// The entries <paramref name="selection"/> keeps of <paramref name="x"/>, compressed in one
    /// call (plan, then compress): the values in a kept view of <paramref name="memory"/>, the full
    /// indices in its reusable index view. The CPU engine stages the entries in the counting pass,
    /// in a slot sized from <paramref name="longestChunk"/> (updated here); a GPU backend plans on
    /// the device. <paramref name="knownCount"/> as in <see cref="PlanCompress(ArrayView{float}, TopKSelection, ArrayView{int}, int)"/>.
    /// </summary>
    public CompressedEntries CompressTopK(ArrayView<float> x, TopKSelection selection, int knownCount, ArrayView<int> scratch,
        IEncodeMemory memory, ref int longestChunk)
    {
        var (chunks, length) = CompressChunks(x.Length);
        SelectedPlan plan;
        EntryStaging staging = default;
        if (launch.IsCpu)
        {
            staging = EntryStaging.In(memory, chunks, length, selection.Kept, longestChunk);
            plan = PlanCompress(x, selection, scratch, staging, knownCount);
            longestChunk = plan.Longest;
        }
        else
        {
            plan = new SelectedPlan(PlanCompress(x, selection, scratch, knownCount), false, 0);
        }
        var values = memory.KeepFloats(Math.Max(1, plan.Count));
        var indices = memory.Indices(Math.Max(1, plan.Count));
        if (plan.Staged)
        {
            CompressPlanned(x, selection, plan, staging, values, indices, scratch);
        }
        else
        {
            CompressPlanned(x, selection, plan.Count, values, indices, scratch);
        }
        return new CompressedEntries(values, indices, plan.Count);
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

    private static void CheckKnownCount(int knownCount, int n)
    {
        if (knownCount < -1 || knownCount > n)
        {
            throw new ArgumentException($"top-k compress: known count {knownCount} is outside [-1, {n}]");
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
    /// (GPU backends, clamped to <paramref name="knownCount"/> when it is known); returns the total kept.
    /// </summary>
    private int PlanChunks(ArrayView<float> x, int n, TopKSelection selection, ArrayView<int> scratch, int knownCount)
    {
        var (chunks, length) = Chunks(n);
        return launch.IsCpu
            ? PlanChunksOnHost(x, n, states.OnHost(selection), scratch, chunks, length)
            : PlanChunksOnDevice(x, n, states.OnDevice(selection), scratch, chunks, length, knownCount);
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
