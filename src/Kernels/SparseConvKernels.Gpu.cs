using ILGPU;

namespace ZeroFL.Kernels;

/// <summary>
/// The GPU backends' sparse convolutions: every pass is a gather, so no output is written by two
/// threads and no float is added atomically; results do not depend on scheduling.
/// <list type="bullet">
/// <item>Forward: one thread per output element, a sparse dot product over its output channel's
/// CSR row (neighbouring threads share the row, so its entries are read once per warp).</item>
/// <item>Backward input: the kept weights are first transposed on the device to per-input-column
/// lists (CSC: integer counts, a device scan, a fill, and a sort of each column by output channel
/// so that sums run in a fixed order), then one thread per dx element sums dy over the kept
/// weights of its kernel taps.</item>
/// <item>Backward weight: a binary search gives, for each (image, input channel) plane, where its
/// kept activations start in the sorted list, then one thread per dw element sums x * dy over the
/// kept activations of its input channel.</item>
/// </list>
/// Scratch (floats, ints stored in place): the transposed weights for backward input
/// (2 * columns + 1 ints, then as many row ints and values as the weight has elements, an upper
/// bound of the kept count), or the plane starts for backward weight. Index arrays are read
/// clamp-protected as in the CPU engine. These kernels also run on the CPU accelerator through the
/// test hook, so CI checks them there as well as on OpenCL.
/// </summary>
public sealed partial class SparseConvKernels
{
    private Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, SparseConvPlan, int>? gatherForward;
    private Action<Index1D, ArrayView<int>, ArrayView<int>, ArrayView<int>, int, int, int>? countColumns;
    private Action<Index1D, ArrayView<int>, int>? scanColumns;
    private Action<Index1D, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<float>, int, int, int>? fillColumns;
    private Action<Index1D, ArrayView<int>, ArrayView<int>, ArrayView<float>, int, int>? sortColumns;
    private Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, SparseConvPlan, int, int>? gatherBackwardInput;
    private Action<Index1D, ArrayView<int>, ArrayView<int>, int, int, int, int>? planeStarts;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, SparseConvPlan, int>? gatherBackwardWeight;

    private void LoadGather()
    {
        gatherForward = launch.Load<ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, SparseConvPlan, int>(GatherForwardKernel);
        countColumns = launch.Load<ArrayView<int>, ArrayView<int>, ArrayView<int>, int, int, int>(CountColumnsKernel);
        scanColumns = launch.Load<ArrayView<int>, int>(ScanColumnsKernel);
        fillColumns = launch.Load<ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<float>, int, int, int>(FillColumnsKernel);
        sortColumns = launch.Load<ArrayView<int>, ArrayView<int>, ArrayView<float>, int, int>(SortColumnsKernel);
        gatherBackwardInput = launch.Load<ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, SparseConvPlan, int, int>(GatherBackwardInputKernel);
        planeStarts = launch.Load<ArrayView<int>, ArrayView<int>, int, int, int, int>(PlaneStartsKernel);
        gatherBackwardWeight = launch.Load<ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, SparseConvPlan, int>(GatherBackwardWeightKernel);
    }

    /// <summary>Floats of scratch the gather passes need for <paramref name="g"/>.</summary>
    private static long GatherScratchLength(ConvGeometry g)
    {
        long transposed = 2L * g.GemmK + 1 + 2L * g.WeightLength;
        long starts = (long)g.Batch * g.InChannels + 1;
        return Math.Max(transposed, starts);
    }

    private void GatherForward(ConvGeometry g, ArrayView<float> x, ArrayView<int> rowPointers, ArrayView<int> columns,
        ArrayView<float> values, ArrayView<float> y, SparseConvPlan plan)
    {
        int t = launch.Threads(g.OutputLength);
        gatherForward!(t, x, rowPointers, columns, values, y, plan, t);
    }

    private void GatherBackwardInput(ConvGeometry g, ArrayView<float> dy, ArrayView<int> rowPointers, ArrayView<int> columns,
        ArrayView<float> values, ArrayView<float> dx, ArrayView<float> scratch, SparseConvPlan plan, bool overwrite)
    {
        int k = g.GemmK;
        int capacity = (int)g.WeightLength;
        var ints = scratch.Cast<int>();
        var columnPointers = ints.SubView(0, k + 1L);
        var cursors = ints.SubView(k + 1L, k);
        var rowsOut = ints.SubView(2L * k + 1, capacity);
        var valuesOut = scratch.SubView(2L * k + 1 + capacity, capacity);
        launch.Zero(ints.SubView(0, 2L * k + 1));
        int tr = launch.Threads(g.OutChannels);
        countColumns!(tr, rowPointers, columns, columnPointers, g.OutChannels, k, tr);
        scanColumns!(launch.Threads(1), columnPointers, k);
        fillColumns!(tr, rowPointers, columns, values, columnPointers, cursors, rowsOut, valuesOut, g.OutChannels, k, tr);
        int tk = launch.Threads(k);
        sortColumns!(tk, columnPointers, rowsOut, valuesOut, k, tk);
        int t = launch.Threads(g.InputLength);
        gatherBackwardInput!(t, dy, columnPointers, rowsOut, valuesOut, dx, plan, overwrite ? 1 : 0, t);
    }

    private void GatherBackwardWeight(ConvGeometry g, ArrayView<float> dy, ArrayView<float> xValues, ArrayView<int> xIndices,
        int xCount, ArrayView<float> dw, ArrayView<float> scratch, SparseConvPlan plan)
    {
        int planes = g.Batch * g.InChannels;
        var starts = scratch.Cast<int>().SubView(0, planes + 1L);
        int ts = launch.Threads(planes + 1L);
        planeStarts!(ts, xIndices, starts, xCount, planes, g.InHeight * g.InWidth, ts);
        int t = launch.Threads(g.WeightLength);
        gatherBackwardWeight!(t, dy, xValues, xIndices, starts, dw, plan, t);
    }

    /// <summary>y[b, co, oh, ow] = sum over the kept weights of row co of w * x (one output per iteration).</summary>
    [GpuKernel]
    internal static void GatherForwardKernel(Index1D index, ArrayView<float> x, ArrayView<int> rowPointers, ArrayView<int> columns,
        ArrayView<float> values, ArrayView<float> y, SparseConvPlan p, int stride)
    {
        int capacity = (int)Math.Min(columns.Length, values.Length);
        int k = p.WeightColumns;
        int area = p.KernelArea;
        int total = p.Batch * p.OutChannels * p.OutHeight * p.OutWidth;
        for (int e = index; e < total; e += stride)
        {
            int ow = e % p.OutWidth;
            int t = e / p.OutWidth;
            int oh = t % p.OutHeight;
            t /= p.OutHeight;
            int co = t % p.OutChannels;
            int b = t / p.OutChannels;
            int start = CsrKernels.ClampIndex(rowPointers[co], 0, capacity);
            int end = CsrKernels.ClampIndex(rowPointers[co + 1], start, capacity);
            float sum = 0f;
            for (int i = start; i < end; i++)
            {
                int col = columns[i];
                if ((uint)col >= (uint)k)
                {
                    continue;
                }
                int ci = col / area;
                int r = col - ci * area;
                int kh = r / p.KernelWidth;
                int kw = r - kh * p.KernelWidth;
                int ih = oh * p.Stride - p.Padding + kh;
                int iw = ow * p.Stride - p.Padding + kw;
                if ((uint)ih < (uint)p.InHeight && (uint)iw < (uint)p.InWidth)
                {
                    sum += values[i] * x[(((long)b * p.InChannels + ci) * p.InHeight + ih) * p.InWidth + iw];
                }
            }
            y[e] = sum;
        }
    }

    /// <summary>Row r: columnPointers[c + 1] += its entries in column c (valid columns only; integer atomics, a setup pass).</summary>
    [GpuKernel]
    internal static void CountColumnsKernel(Index1D index, ArrayView<int> rowPointers, ArrayView<int> columns,
        ArrayView<int> columnPointers, int rows, int k, int stride)
    {
        int capacity = (int)columns.Length;
        for (int r = index; r < rows; r += stride)
        {
            int start = CsrKernels.ClampIndex(rowPointers[r], 0, capacity);
            int end = CsrKernels.ClampIndex(rowPointers[r + 1], start, capacity);
            for (int i = start; i < end; i++)
            {
                int col = columns[i];
                if ((uint)col < (uint)k)
                {
                    Atomic.Add(ref columnPointers[col + 1], 1);
                }
            }
        }
    }

    /// <summary>One thread: the column counts in columnPointers[1..k] become their inclusive prefix (the column starts).</summary>
    [GpuKernel]
    internal static void ScanColumnsKernel(Index1D index, ArrayView<int> columnPointers, int k)
    {
        if (index != 0)
        {
            return;
        }
        int total = 0;
        columnPointers[0] = 0;
        for (int c = 1; c <= k; c++)
        {
            total += columnPointers[c];
            columnPointers[c] = total;
        }
    }

    /// <summary>
    /// Row r: appends (r, value) of each of its valid entries to its column's list, at the column
    /// start plus an atomic cursor (the order inside a column is fixed afterwards by the sort);
    /// never past the transposed arrays.
    /// </summary>
    [GpuKernel]
    internal static void FillColumnsKernel(Index1D index, ArrayView<int> rowPointers, ArrayView<int> columns, ArrayView<float> values,
        ArrayView<int> columnPointers, ArrayView<int> cursors, ArrayView<int> rowsOut, ArrayView<float> valuesOut, int rows, int k, int stride)
    {
        int capacity = (int)Math.Min(columns.Length, values.Length);
        int outCapacity = (int)Math.Min(rowsOut.Length, valuesOut.Length);
        for (int r = index; r < rows; r += stride)
        {
            int start = CsrKernels.ClampIndex(rowPointers[r], 0, capacity);
            int end = CsrKernels.ClampIndex(rowPointers[r + 1], start, capacity);
            for (int i = start; i < end; i++)
            {
                int col = columns[i];
                if ((uint)col >= (uint)k)
                {
                    continue;
                }
                int position = columnPointers[col] + Atomic.Add(ref cursors[col], 1);
                if ((uint)position < (uint)outCapacity)
                {
                    rowsOut[position] = r;
                    valuesOut[position] = values[i];
                }
            }
        }
    }

    /// <summary>Column c: sorts its (row, value) list by row (insertion sort: lists hold about density x rows entries).</summary>
    [GpuKernel]
    internal static void SortColumnsKernel(Index1D index, ArrayView<int> columnPointers, ArrayView<int> rowsOut, ArrayView<float> valuesOut, int k, int stride)
    {
        int capacity = (int)Math.Min(rowsOut.Length, valuesOut.Length);
        for (int c = index; c < k; c += stride)
        {
            int start = CsrKernels.ClampIndex(columnPointers[c], 0, capacity);
            int end = CsrKernels.ClampIndex(columnPointers[c + 1], start, capacity);
            for (int i = start + 1; i < end; i++)
            {
                int row = rowsOut[i];
                float value = valuesOut[i];
                int j = i - 1;
                while (j >= start && rowsOut[j] > row)
                {
                    rowsOut[j + 1] = rowsOut[j];
                    valuesOut[j + 1] = valuesOut[j];
                    j--;
                }
                rowsOut[j + 1] = row;
                valuesOut[j + 1] = value;
            }
        }
    }

    /// <summary>
    /// dx[b, ci, ih, iw] (+)= sum over the taps (kh, kw) that reach an output position and over the
    /// kept weights of column (ci, kh, kw) of w * dy[b, co, oh, ow] (one dx element per iteration;
    /// overwrite != 0 stores instead of adding).
    /// </summary>
    [GpuKernel]
    internal static void GatherBackwardInputKernel(Index1D index, ArrayView<float> dy, ArrayView<int> columnPointers,
        ArrayView<int> rowsOut, ArrayView<float> valuesOut, ArrayView<float> dx, SparseConvPlan p, int overwrite, int stride)
    {
        int capacity = (int)Math.Min(rowsOut.Length, valuesOut.Length);
        int total = p.Batch * p.InChannels * p.InHeight * p.InWidth;
        for (int e = index; e < total; e += stride)
        {
            int iw = e % p.InWidth;
            int t = e / p.InWidth;
            int ih = t % p.InHeight;
            t /= p.InHeight;
            int ci = t % p.InChannels;
            int b = t / p.InChannels;
            float sum = 0f;
            for (int kh = 0; kh < p.KernelHeight; kh++)
            {
                int oh = OutputOf(ih, kh, p.Padding, p.Stride, p.OutHeight);
                if (oh < 0)
                {
                    continue;
                }
                for (int kw = 0; kw < p.KernelWidth; kw++)
                {
                    int ow = OutputOf(iw, kw, p.Padding, p.Stride, p.OutWidth);
                    if (ow < 0)
                    {
                        continue;
                    }
                    int col = (ci * p.KernelHeight + kh) * p.KernelWidth + kw;
                    int start = CsrKernels.ClampIndex(columnPointers[col], 0, capacity);
                    int end = CsrKernels.ClampIndex(columnPointers[col + 1], start, capacity);
                    for (int j = start; j < end; j++)
                    {
                        int co = rowsOut[j];
                        sum += valuesOut[j] * dy[(((long)b * p.OutChannels + co) * p.OutHeight + oh) * p.OutWidth + ow];
                    }
                }
            }
            dx[e] = overwrite != 0 ? sum : dx[e] + sum;
        }
    }

    /// <summary>
    /// starts[s] = the first position of the sorted kept-activation indices at or after plane s
    /// (s * plane), for s in [0, planes]: binary search, one plane per iteration.
    /// </summary>
    [GpuKernel]
    internal static void PlaneStartsKernel(Index1D index, ArrayView<int> xIndices, ArrayView<int> starts, int count, int planes, int plane, int stride)
    {
        for (int s = index; s <= planes; s += stride)
        {
            starts[s] = IndexPackKernels.LowerBound(xIndices, count, (long)s * plane);
        }
    }

    /// <summary>
    /// dw[co, ci, kh, kw] += sum over the images and the kept activations of plane (b, ci) that tap
    /// (kh, kw) reaches of x * dy[b, co, oh, ow] (one dw element per iteration). An index outside
    /// its plane (unsorted input) is skipped.
    /// </summary>
    [GpuKernel]
    internal static void GatherBackwardWeightKernel(Index1D index, ArrayView<float> dy, ArrayView<float> xValues, ArrayView<int> xIndices,
        ArrayView<int> starts, ArrayView<float> dw, SparseConvPlan p, int stride)
    {
        int plane = p.InHeight * p.InWidth;
        int total = p.OutChannels * p.InChannels * p.KernelHeight * p.KernelWidth;
        for (int e = index; e < total; e += stride)
        {
            int kw = e % p.KernelWidth;
            int t = e / p.KernelWidth;
            int kh = t % p.KernelHeight;
            t /= p.KernelHeight;
            int ci = t % p.InChannels;
            int co = t / p.InChannels;
            float sum = 0f;
            for (int b = 0; b < p.Batch; b++)
            {
                int s = b * p.InChannels + ci;
                long first = (long)s * plane;
                int end = starts[s + 1];
                for (int j = starts[s]; j < end; j++)
                {
                    long local = xIndices[j] - first;
                    if (local < 0 || local >= plane)
                    {
                        continue;
                    }
                    int ih = (int)local / p.InWidth;
                    int iw = (int)local - ih * p.InWidth;
                    int oh = OutputOf(ih, kh, p.Padding, p.Stride, p.OutHeight);
                    int ow = OutputOf(iw, kw, p.Padding, p.Stride, p.OutWidth);
                    if (oh >= 0 && ow >= 0)
                    {
                        sum += xValues[j] * dy[(((long)b * p.OutChannels + co) * p.OutHeight + oh) * p.OutWidth + ow];
                    }
                }
            }
            dw[e] += sum;
        }
    }

    /// <summary>
    /// The output row (or column) whose tap <paramref name="tap"/> reads input row
    /// <paramref name="input"/>, or -1 when no output in [0, <paramref name="outputs"/>) does.
    /// </summary>
    private static int OutputOf(int input, int tap, int padding, int stride, int outputs)
    {
        int t = input + padding - tap;
        return t < 0 || t % stride != 0 || t / stride >= outputs ? -1 : t / stride;
    }
}
