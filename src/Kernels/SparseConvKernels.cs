using ILGPU;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// SWAT's sparse convolutions over NCHW tensors (zero padding, any stride and kernel size, no
/// bias), with cost proportional to the kept entries. Shapes as in <see cref="Conv2dKernels"/>:
/// x [Batch, InChannels, InHeight, InWidth], y [Batch, OutChannels, OutHeight, OutWidth], weights
/// [OutChannels, InChannels, KernelHeight, KernelWidth]. A linear layer is the geometry
/// (batch, in, 1, 1, out, 1, 1, 1, 0) with x [batch, in] and y [batch, out].
/// <list type="bullet">
/// <item>Sparse weights: CSR over the weight matrix [OutChannels, InChannels * KH * KW] (see
/// <see cref="CsrKernels"/>); any column order within a row works.</item>
/// <item>Sparse activations: <c>xValues</c> float[count] and <c>xIndices</c> int[count], flat
/// NCHW indices into x, strictly increasing (the order of the top-K that produces them).</item>
/// </list>
/// <list type="bullet">
/// <item><see cref="Forward"/>: y = conv(x, W_sparse). Cost: nnz(W) x Batch x OutHeight x OutWidth FMAs.</item>
/// <item><see cref="BackwardInput"/>: dx += dL/dx from dy and W_sparse. Cost: nnz(W) x Batch x OutHeight x OutWidth.</item>
/// <item><see cref="BackwardWeight"/>: dw += dL/dw (dense) from dy and the kept activations.
/// Cost: count x OutChannels x KH x KW.</item>
/// </list>
/// On the CPU accelerator the SIMD engine of <see cref="SparseConvCpu"/> runs (a packing launch,
/// then one compute launch with one thread per core, threads owning disjoint output rows; or,
/// where one image's operand fits L2, an image-major launch whose threads pack and compute disjoint
/// images, see <see cref="SparseConvPlan.Images"/>; backward weight then sums the threads' dw
/// copies in a second launch). These are <see cref="CpuKernelAttribute"/> kernels. On GPUs the
/// three passes are gathers without float atomics (<c>SparseConvKernels.Gpu.cs</c>).
/// <para>
/// Safety: the host checks every view length; device index arrays (row pointers, columns,
/// activation indices) are read clamp-protected inside the kernels: a row range is clamped to
/// <c>[0, capacity]</c> (capacity = the shorter of columns and values), a column outside
/// <c>[0, InChannels * KH * KW)</c> or an activation index outside x is skipped. Malformed
/// sparse data gives wrong numbers, never an out-of-bounds access. On the CPU, activation indices
/// that are not increasing may be missed (not misread).
/// </para>
/// CPU reference: <see cref="Reference.SparseConvReference"/> (the dense reference on the densified tensors).
/// </summary>
public sealed partial class SparseConvKernels
{
    private readonly KernelLaunch launch;
    private readonly bool packed;
    private readonly int batchInner;
    private readonly bool? byImage;
    private readonly Dictionary<ConvGeometry, Plans> plans = [];
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, SparseConvPlan, int>? pack;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, SparseConvPlan, int>? packTransposed;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, SparseConvPlan, int>? forward;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, SparseConvPlan, int>? backwardInput;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, ArrayView<float>, SparseConvPlan, int>? backwardWeight;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, SparseConvPlan, int>? reduceCopies;

    /// <summary>Loads the kernels suited to the accelerator of <paramref name="launch"/>.</summary>
    public SparseConvKernels(KernelLaunch launch)
        : this(launch, gather: false, batchInner: 0)
    {
    }

    /// <summary>
    /// Test hooks: <paramref name="gather"/> runs the GPU (gather) kernels even on the CPU
    /// accelerator, so that CI checks the algorithms GPUs run there too; <paramref name="batchInner"/>
    /// (1 or 8; 0 = by estimated cost) fixes the batch blocking of the packed layout.
    /// </summary>
    internal SparseConvKernels(KernelLaunch launch, bool gather, int batchInner, bool? byImage = null)
    {
        ArgumentNullException.ThrowIfNull(launch);
        if (batchInner is not (0 or 1 or 8))
        {
            throw new ArgumentException($"batch blocking must be 0 (by cost), 1 or 8, got {batchInner}");
        }
        this.launch = launch;
        this.batchInner = batchInner;
        this.byImage = byImage;
        packed = launch.IsCpu && !gather;
        // The CPU engine (packing, SIMD gathers, copy reduction): never compiled for GPU backends.
        if (packed)
        {
            pack = launch.Load<ArrayView<float>, ArrayView<float>, SparseConvPlan, int>(PackKernel);
            packTransposed = launch.Load<ArrayView<float>, ArrayView<float>, SparseConvPlan, int>(PackTransposedKernel);
            reduceCopies = launch.Load<ArrayView<float>, ArrayView<float>, SparseConvPlan, int>(ReduceCopiesKernel);
            forward = launch.Load<ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, SparseConvPlan, int>(ForwardPackedKernel);
            backwardInput = launch.Load<ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, SparseConvPlan, int>(BackwardInputPackedKernel);
            backwardWeight = launch.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, ArrayView<float>, SparseConvPlan, int>(BackwardWeightPackedKernel);
        }
        else
        {
            LoadGather();
        }
    }

    /// <summary>
    /// Floats of device scratch that <see cref="Forward"/>, <see cref="BackwardInput"/> and
    /// <see cref="BackwardWeight"/> need for <paramref name="g"/> (one buffer serves all three; its
    /// contents need not be kept between calls). On the CPU accelerator this is about the size of x
    /// or dy plus padding (it holds the packed operand); on GPUs it holds the transposed kept weights
    /// (about two weight tensors) or the plane starts of the kept activations.
    /// </summary>
    public long ScratchLength(ConvGeometry g)
    {
        g.Validate();
        if (!packed)
        {
            return GatherScratchLength(g);
        }
        var p = PlansOf(g);
        return Math.Max(Math.Max(p.Forward.ScratchLength, p.BackwardInput.ScratchLength), p.BackwardWeight.ScratchLength);
    }

    /// <summary>
    /// y = conv(x, W) with W given as CSR over [OutChannels, InChannels * KH * KW]; overwrites y.
    /// x [B, Cin, H, W], y [B, Cout, Ho, Wo]; rowPointers int[Cout + 1]; columns and values hold
    /// the kept weights.
    /// </summary>
    public void Forward(ConvGeometry g, ArrayView<float> x, ArrayView<int> rowPointers, ArrayView<int> columns,
        ArrayView<float> values, ArrayView<float> y, ArrayView<float> scratch)
    {
        const string what = "sparse conv forward";
        CheckWeights(g, rowPointers, columns, values, what);
        HostCheck.Length(x, g.InputLength, $"{what} input x");
        HostCheck.Length(y, g.OutputLength, $"{what} output y");
        HostCheck.Length(scratch, ScratchLength(g), $"{what} scratch");
        var plan = PlansOf(g).Forward;
        if (!packed)
        {
            GatherForward(g, x, rowPointers, columns, values, y, plan);
        }
        else if (plan.Images > 0)
        {
            ResetWorkCounter(scratch);
            int t = launch.Threads(g.OutputLength);
            forward!(t, x, scratch, rowPointers, columns, values, y, plan, t);
        }
        else
        {
            int tp = launch.Threads((long)plan.SourceChannels * plan.Phases * plan.Phases);
            pack!(tp, x, scratch, plan, tp);
            int t = launch.Threads(g.OutChannels);
            forward!(t, x, scratch, rowPointers, columns, values, y, plan, t);
        }
    }

    /// <summary>
    /// dx += dL/dx for dy = dL/dy [B, Cout, Ho, Wo] and the CSR weights; dx is [B, Cin, H, W]. With
    /// <paramref name="overwrite"/>, dx = dL/dx instead and dx's old contents (garbage allowed) are
    /// never read: the CPU gathers store every element, the other paths zero dx first.
    /// </summary>
    public void BackwardInput(ConvGeometry g, ArrayView<float> dy, ArrayView<int> rowPointers, ArrayView<int> columns,
        ArrayView<float> values, ArrayView<float> dx, ArrayView<float> scratch, bool overwrite = false)
    {
        const string what = "sparse conv backward input";
        CheckWeights(g, rowPointers, columns, values, what);
        HostCheck.Length(dy, g.OutputLength, $"{what} output gradient dy");
        HostCheck.Length(dx, g.InputLength, $"{what} input gradient dx");
        HostCheck.Length(scratch, ScratchLength(g), $"{what} scratch");
        var plan = PlansOf(g).BackwardInput;
        if (!packed)
        {
            GatherBackwardInput(g, dy, rowPointers, columns, values, dx, scratch, plan, overwrite);
            return;
        }
        if (overwrite && plan.PrivateCopies == 0)
        {
            plan = plan with { Overwrite = 1 };
        }
        else if (overwrite)
        {
            launch.Zero(dx.SubView(0, g.InputLength));
        }
        if (plan.Images > 0)
        {
            ResetWorkCounter(scratch);
            int t = launch.Threads(g.InputLength);
            backwardInput!(t, dy, scratch, rowPointers, columns, values, dx, plan, t);
            return;
        }
        int tp = launch.Threads((long)plan.SourceChannels * plan.Phases * plan.Phases);
        pack!(tp, dy, scratch, plan, tp);
        if (plan.PrivateCopies > 0)
        {
            backwardInput!(plan.PrivateCopies, dy, scratch, rowPointers, columns, values, dx, plan, plan.PrivateCopies);
            int tr = launch.Threads(g.InChannels);
            reduceCopies!(tr, scratch, dx, plan, tr);
            return;
        }
        int ti = launch.Threads(g.InChannels);
        backwardInput!(ti, dy, scratch, rowPointers, columns, values, dx, plan, ti);
    }

    /// <summary>
    /// dw += dL/dw (dense, [Cout, Cin, KH, KW]) for dy = dL/dy [B, Cout, Ho, Wo] and the kept
    /// activations of x: <paramref name="xValues"/>[0, xCount) at the flat NCHW indices
    /// <paramref name="xIndices"/>[0, xCount) (strictly increasing); every other x counts as zero.
    /// </summary>
    public void BackwardWeight(ConvGeometry g, ArrayView<float> dy, ArrayView<float> xValues, ArrayView<int> xIndices,
        int xCount, ArrayView<float> dw, ArrayView<float> scratch)
    {
        const string what = "sparse conv backward weight";
        g.Validate();
        HostCheck.Length(dy, g.OutputLength, $"{what} output gradient dy");
        HostCheck.Length(dw, g.WeightLength, $"{what} weight gradient dw");
        if (xCount < 0)
        {
            throw new ArgumentException($"{what}: activation count {xCount} is negative");
        }
        HostCheck.Length(xValues, xCount, $"{what} activation values");
        HostCheck.Length(xIndices, xCount, $"{what} activation indices");
        HostCheck.Length(scratch, ScratchLength(g), $"{what} scratch");
        if (xCount == 0)
        {
            return;
        }
        var plan = PlansOf(g).BackwardWeight;
        if (!packed)
        {
            GatherBackwardWeight(g, dy, xValues, xIndices, xCount, dw, scratch, plan);
        }
        else if (plan.Images > 0)
        {
            backwardWeight!(plan.PrivateCopies, dy, scratch, xValues, xIndices, xCount, dw, plan, plan.PrivateCopies);
            int tr = launch.Threads(g.GemmK);
            reduceCopies!(tr, scratch, dw, plan, tr);
        }
        else
        {
            int tp = launch.Threads((long)g.Batch * g.OutHeight * g.OutWidth);
            packTransposed!(tp, dy, scratch, plan, tp);
            int t = launch.Threads(g.InChannels);
            backwardWeight!(t, dy, scratch, xValues, xIndices, xCount, dw, plan, t);
        }
    }

    /// <summary>
    /// Zeroes the work counter of an image-major gather (the first float of its scratch, which the
    /// pass does not otherwise use): the launched threads take work units from it.
    /// </summary>
    private void ResetWorkCounter(ArrayView<float> scratch) => launch.Zero(scratch.SubView(0, 1));

    private static void CheckWeights(ConvGeometry g, ArrayView<int> rowPointers, ArrayView<int> columns, ArrayView<float> values, string what)
    {
        g.Validate();
        HostCheck.Length(rowPointers, g.OutChannels + 1L, $"{what} row pointers");
        HostCheck.Count(columns.Length, $"{what} columns");
        HostCheck.Count(values.Length, $"{what} values");
    }

    /// <summary>Test and benchmark hook: the forward, backward-input and backward-weight plans used for <paramref name="g"/>.</summary>
    internal (SparseConvPlan Forward, SparseConvPlan BackwardInput, SparseConvPlan BackwardWeight) PlansFor(ConvGeometry g)
    {
        var p = PlansOf(g);
        return (p.Forward, p.BackwardInput, p.BackwardWeight);
    }

    /// <summary>The plans of <paramref name="g"/>, choosing the batch blocking of each gather pass by estimated cost (cached).</summary>
    private Plans PlansOf(ConvGeometry g)
    {
        if (plans.TryGetValue(g, out var found))
        {
            return found;
        }
        var chosen = packed && batchInner > 0
            ? new Plans(SparseConvPlan.Forward(g, batchInner), SparseConvPlan.BackwardInput(g, batchInner), SparseConvPlan.BackwardWeight(g))
            : packed
            ? new Plans(
                SparseConvPlan.Forward(g, 1).IsLinear
                    ? SparseConvPlan.Forward(g, 8)
                    : Cheapest(SparseConvPlan.Forward(g, 1), SparseConvPlan.Forward(g, 8), g.OutChannels, 0.1 * g.GemmK),
                SparseConvPlan.Forward(g, 1).IsLinear
                    ? SparseConvPlan.BackwardInputLinear(g, launch.Threads(g.OutChannels))
                    : Cheapest(SparseConvPlan.BackwardInput(g, 1), SparseConvPlan.BackwardInput(g, 8), g.InChannels, 0.1 * g.OutChannels * g.KernelHeight * g.KernelWidth),
                SparseConvPlan.BackwardWeight(g))
            : new Plans(SparseConvPlan.Forward(g, 1), SparseConvPlan.BackwardInput(g, 1), SparseConvPlan.BackwardWeight(g));
        var result = packed
            ? new Plans(ByImage(g, chosen.Forward), ByImage(g, chosen.BackwardInput), WeightByImage(g, chosen.BackwardWeight))
            : chosen;
        plans[g] = result;
        return result;
    }

    /// <summary>
    /// The image-major form of a gather plan along image rows (<see cref="SparseConvPlan.Images"/>)
    /// when one image's packed operand fits <see cref="ImagePackMaxFloats"/> (or as the test hook
    /// says); else the plan itself. Image-major keeps the gathered operand in L2 instead of packing
    /// the whole batch to memory and reading it back with every row's scattered taps.
    /// </summary>
    private SparseConvPlan ByImage(ConvGeometry g, SparseConvPlan plan)
    {
        if (plan.BatchInner != 1 || plan.PrivateCopies > 0 || plan.IsLinear || byImage == false)
        {
            return plan;
        }
        var image = SparseConvPlan.ByImage(g, plan.Pass, g.Batch);
        return byImage == true || image.PackedLength <= ImagePackMaxFloats ? image : plan;
    }

    /// <summary>
    /// The image-major backward weight (<see cref="SparseConvPlan.Images"/>) when one image's
    /// transposed dy and a private dw copy fit <see cref="ImagePackMaxFloats"/> together (or as the
    /// test hook says); else the plan itself. Image-major replaces the batch-sized transposed dy
    /// (written to memory, then read by every thread) with per-thread transposes of one image in L2.
    /// Threads own whole images here, so it also needs at least 4 images per thread (at most a
    /// quarter of idle time on the last one); fewer images keep the threads' channel split.
    /// </summary>
    private SparseConvPlan WeightByImage(ConvGeometry g, SparseConvPlan plan)
    {
        if (plan.IsLinear || byImage == false)
        {
            return plan;
        }
        var image = SparseConvPlan.BackwardWeightByImage(g, launch.Threads(g.Batch));
        bool fits = (long)image.PackedLength + image.PrivateLength <= ImagePackMaxFloats;
        bool enoughImages = g.Batch >= 4L * launch.MaxThreads;
        return byImage == true || (fits && enoughImages) ? image : plan;
    }

    /// <summary>
    /// Largest one-image working set of an image-major pass: the packed operand of a gather, or a
    /// backward weight's transposed dy plus its dw copy. 128 K floats (512 KB, a core's L2 on the
    /// machines measured; ResNet-18 on CIFAR needs at most 106 K).
    /// </summary>
    private const int ImagePackMaxFloats = 128 * 1024;

    /// <summary>
    /// The plan with the lower estimated cost: output rows x their run cost (at about 10% kept
    /// weights) plus packing (a gather across batches costs more per float than a row copy).
    /// </summary>
    private static SparseConvPlan Cheapest(SparseConvPlan rowRuns, SparseConvPlan batchRuns, int rows, double tapsPerRow)
    {
        double taps = Math.Max(8, tapsPerRow);
        double rowCost = rows * SparseConvStrips.Build(rowRuns).Cost(taps) + 0.5 * rowRuns.PackedLength;
        double batchCost = rows * SparseConvStrips.Build(batchRuns).Cost(taps) + 2.0 * batchRuns.PackedLength;
        return batchCost < rowCost ? batchRuns : rowRuns;
    }

    private readonly record struct Plans(SparseConvPlan Forward, SparseConvPlan BackwardInput, SparseConvPlan BackwardWeight);

    /// <summary>CPU: packs x (forward) or dy (backward input) for the gather engine.</summary>
    [CpuKernel]
    internal static void PackKernel(Index1D index, ArrayView<float> source, ArrayView<float> packedView, SparseConvPlan p, int stride)
        => SparseConvCpu.Pack(index, stride, source, packedView, p);

    /// <summary>CPU: transposes dy to [B * Ho * Wo, RowPitch] for backward weight.</summary>
    [CpuKernel]
    internal static void PackTransposedKernel(Index1D index, ArrayView<float> source, ArrayView<float> packedView, SparseConvPlan p, int stride)
        => SparseConvCpu.PackTransposed(index, stride, source, packedView, p);

    /// <summary>CPU, linear backward input or image-major backward weight: dx (dw) += the sum of the threads' private copies.</summary>
    [CpuKernel]
    internal static void ReduceCopiesKernel(Index1D index, ArrayView<float> scratch, ArrayView<float> dx, SparseConvPlan p, int stride)
        => SparseConvCpu.ReduceCopies(index, stride, scratch, dx, p);

    /// <summary>CPU: thread index of stride computes its output channels of the forward pass.</summary>
    [CpuKernel]
    internal static void ForwardPackedKernel(Index1D index, ArrayView<float> x, ArrayView<float> packedView,
        ArrayView<int> rowPointers, ArrayView<int> columns, ArrayView<float> values, ArrayView<float> y, SparseConvPlan p, int stride)
        => SparseConvCpu.Forward(index, stride, x, packedView, rowPointers, columns, values, y, p);

    /// <summary>CPU: thread index of stride computes its input channels of the input gradient.</summary>
    [CpuKernel]
    internal static void BackwardInputPackedKernel(Index1D index, ArrayView<float> dy, ArrayView<float> packedView,
        ArrayView<int> rowPointers, ArrayView<int> columns, ArrayView<float> values, ArrayView<float> dx, SparseConvPlan p, int stride)
        => SparseConvCpu.BackwardInput(index, stride, dy, packedView, rowPointers, columns, values, dx, p);

    /// <summary>CPU: thread index of stride computes the weight gradient of its input channels.</summary>
    [CpuKernel]
    internal static void BackwardWeightPackedKernel(Index1D index, ArrayView<float> dy, ArrayView<float> packedView,
        ArrayView<float> xValues, ArrayView<int> xIndices, int count, ArrayView<float> dw, SparseConvPlan p, int stride)
        => SparseConvCpu.BackwardWeight(index, stride, dy, packedView, xValues, xIndices, count, dw, p);
}
