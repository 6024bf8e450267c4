using ILGPU;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// Compressed sparse row (CSR) matrices on the device: encode a dense row-major matrix, decode it
/// back, and scatter-add it into a dense matrix (FedAvg over sparse uploads). A matrix
/// <c>[rows, cols]</c> is held as <c>rowPointers</c> int[rows + 1] (row r owns entries
/// <c>rowPointers[r] .. rowPointers[r + 1] - 1</c>), <c>columns</c> int[nnz] (increasing within a row
/// when made by <see cref="Encode"/>) and <c>values</c> float[nnz]. A layer's weight
/// <c>[out, in, kh, kw]</c> is the matrix <c>[out, in * kh * kw]</c>.
/// <para>
/// Safety: <see cref="Decode"/> and <see cref="ScatterAdd"/> read device index arrays that may
/// come from untrusted uploads, so their kernels clamp-protect every index they read: a row's range
/// is clamped to <c>[0, capacity]</c> (capacity = the shorter of <c>columns</c> and <c>values</c>),
/// a range that ends before it starts is empty, and an entry whose column lies outside
/// <c>[0, cols)</c> is skipped. Malformed CSR thus gives a wrong matrix, never an out-of-bounds
/// access. <see cref="Encode"/> builds its own row pointers and checks the capacity of
/// <c>columns</c>/<c>values</c> on the host before it writes them.
/// </para>
/// Not thread-safe (it keeps one host buffer for the row counts). CPU reference:
/// <see cref="Reference.CsrReference"/>.
/// </summary>
public sealed partial class CsrKernels
{
    private readonly KernelLaunch launch;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<int>, int, int, int> countRows;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, int, int, int> scatterRows;
    private readonly Action<Index1D, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, int, int> decodeRows;
    private readonly Action<Index1D, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, float, int, int, int> scatterAddRows;
    private readonly Action<Index1D, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, int, int> gatherRows;
    private readonly SelectionStates states;
    private int[] hostRowPointers = [];

    /// <summary>Loads the kernels once for the accelerator of <paramref name="launch"/>.</summary>
    public CsrKernels(KernelLaunch launch)
    {
        this.launch = launch;
        countRows = launch.Load<ArrayView<float>, ArrayView<int>, int, int, int>(CountRowsKernel);
        scatterRows = launch.Load<ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<float>, int, int, int>(ScatterRowsKernel);
        decodeRows = launch.Load<ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, int, int>(DecodeRowsKernel);
        scatterAddRows = launch.Load<ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, float, int, int, int>(ScatterAddRowsKernel);
        gatherRows = launch.Load<ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, int, int>(GatherRowsKernel);
        states = new SelectionStates(launch);
        // Encoding a top-K selection: planned on the host with the CPU engine's kernels, or on the device (loaded everywhere: tested on the CPU too).
        if (launch.IsCpu)
        {
            LoadHostSelected();
        }
        LoadDeviceSelected();
    }

    /// <summary>
    /// Bytes of a CSR matrix as uploaded: 4 B per value and 4 B per column index for each non-zero,
    /// plus 4 B for each of the <paramref name="rows"/> + 1 row pointers.
    /// </summary>
    public static long ByteSize(int rows, long nonZeros)
    {
        if (rows < 0 || nonZeros < 0)
        {
            throw new ArgumentException($"CSR byte size: rows ({rows}) and non-zeros ({nonZeros}) must not be negative");
        }
        return 8L * nonZeros + 4L * (rows + 1);
    }

    /// <summary>
    /// Encodes the non-zero entries (<c>v != 0</c>; NaN counts as non-zero) of the dense row-major
    /// matrix <paramref name="dense"/> [rows, cols] as CSR, columns increasing within each row, and
    /// returns the number of non-zeros. Three steps: a count kernel per row, an exclusive scan of
    /// the counts (on the CPU accelerator on the host: one download and one upload of rows + 1
    /// ints; on GPU backends on the device, reading back only the total), a scatter kernel.
    /// Throws <see cref="ArgumentException"/> before the scatter (nothing written to
    /// <paramref name="columns"/> or <paramref name="values"/>) when they hold fewer than the
    /// non-zero count; <paramref name="rowPointers"/> is then already written.
    /// </summary>
    public int Encode(ArrayView<float> dense, int rows, int cols,
        ArrayView<int> rowPointers, ArrayView<int> columns, ArrayView<float> values)
    {
        CheckShape(rows, cols, "csr encode");
        HostCheck.Length(dense, (long)rows * cols, "csr encode dense matrix");
        HostCheck.Length(rowPointers, rows + 1L, "csr encode row pointers");
        int t = launch.Threads(rows);
        countRows(t, dense, rowPointers, rows, cols, t);
        int nonZeros;
        if (launch.IsCpu)
        {
            nonZeros = ScanCountsOnHost(rowPointers, rows);
        }
        else
        {
            // GPU backends scan on the device and read only the total (one sync, 4 bytes).
            scanCounts!(launch.Threads(1), rowPointers, rows);
            var total = new int[1];
            launch.ReadBack(rowPointers.SubView(rows, 1), total);
            nonZeros = total[0];
        }
        if (columns.Length < nonZeros || values.Length < nonZeros)
        {
            throw new ArgumentException(
                $"csr encode: the matrix has {nonZeros} non-zeros but columns holds {columns.Length} and values {values.Length}");
        }
        if (nonZeros > 0)
        {
            scatterRows(t, dense, rowPointers, columns, values, rows, cols, t);
        }
        return nonZeros;
    }

    /// <summary>The exclusive scan of the row counts on the host (download, scan, upload); returns the total.</summary>
    private int ScanCountsOnHost(ArrayView<int> rowPointers, int rows)
    {
        if (hostRowPointers.Length < rows + 1)
        {
            hostRowPointers = new int[rows + 1];
        }
        var counts = hostRowPointers.AsSpan(0, rows + 1);
        launch.ReadBack(rowPointers.SubView(0, rows + 1), counts);
        long total = 0;
        counts[0] = 0;
        for (int r = 1; r <= rows; r++)
        {
            total += counts[r];
            if (total > int.MaxValue)
            {
                throw new ArgumentException($"csr encode: more than {int.MaxValue} non-zeros");
            }
            counts[r] = (int)total;
        }
        launch.Upload((ReadOnlySpan<int>)counts, rowPointers.SubView(0, rows + 1));
        return (int)total;
    }

    /// <summary>
    /// First half of encoding the entries a top-K <paramref name="selection"/> keeps of the dense
    /// row-major matrix <paramref name="dense"/> [rows, cols] as CSR, without a masked copy: counts
    /// per row the entries with key above the threshold and equal to it, gives the first
    /// TiesToKeep ties in index order (row-major, so earlier rows first) their places, and writes
    /// the row pointers and each row's share of the ties (<paramref name="rowTies"/>, rows ints).
    /// Returns the number of kept entries, which <see cref="EncodeSelected"/> then writes: size
    /// columns and values from it. Exactly what <see cref="TopKKernels.Mask"/> followed by
    /// <see cref="Encode"/> gives, except that a kept entry equal to zero (a threshold of 0) is an
    /// explicit entry here. A selection from another tensor (threshold reuse) keeps whatever passes.
    /// </summary>
    public int PlanSelected(ArrayView<float> dense, TopKSelection selection, int rows, int cols,
        ArrayView<int> rowPointers, ArrayView<int> rowTies)
    {
        if (!launch.IsCpu)
        {
            return PlanSelectedOnDevice(dense, selection, rows, cols, rowPointers, rowTies, knownCount: -1);
        }
        if (!StartPlan(dense, selection, rows, cols, rowPointers, rowTies))
        {
            return 0;
        }
        return PlanSelectedOnHost(dense, states.OnHost(selection), rows, cols, rowPointers, rowTies);
    }

    /// <summary>
    /// <see cref="PlanSelected"/> that also stages: the one pass over <paramref name="dense"/> that
    /// counts each row also writes the row's entries with key &gt;= threshold (at most
    /// <see cref="EntryStaging.Slot"/> of them) into its slot of <paramref name="staging"/>, so that
    /// <see cref="EncodeSelected(ArrayView{float}, TopKSelection, int, int, ArrayView{int}, ArrayView{int}, SelectedPlan, EntryStaging, ArrayView{int}, ArrayView{float})"/>
    /// copies the kept entries from there instead of reading the dense matrix again. A row with more
    /// such entries than the slot makes the plan unstaged (the encode then reads the matrix);
    /// <see cref="SelectedPlan.Longest"/> tells the caller what slot would have held every row.
    /// </summary>
    /// <remarks>
    /// Staging is a CPU technique: on a GPU backend the plan is made on the device instead
    /// (<see cref="PlanSelectedOnDevice"/> with <paramref name="knownCount"/>; the staging is not
    /// used, the plan is unstaged and its <see cref="SelectedPlan.Longest"/> is 0).
    /// </remarks>
    public SelectedPlan PlanSelected(ArrayView<float> dense, TopKSelection selection, int rows, int cols,
        ArrayView<int> rowPointers, ArrayView<int> rowTies, EntryStaging staging, int knownCount = -1)
    {
        staging.Check(rows, cols, "csr encode selected");
        if (!launch.IsCpu)
        {
            return new SelectedPlan(PlanSelectedOnDevice(dense, selection, rows, cols, rowPointers, rowTies, knownCount), false, 0);
        }
        if (!StartPlan(dense, selection, rows, cols, rowPointers, rowTies))
        {
            return new SelectedPlan(0, true, 0);
        }
        return PlanStagedOnHost(dense, states.OnHost(selection), rows, cols, rowPointers, rowTies, staging);
    }

    /// <summary>
    /// Second half of a staged plan (see the staging <see cref="PlanSelected(ArrayView{float}, TopKSelection, int, int, ArrayView{int}, ArrayView{int}, EntryStaging)"/>,
    /// called just before with the same matrix, selection, plan arrays and staging): copies each row's
    /// kept entries from its slot when the plan is staged, else writes them from the dense matrix as
    /// the unstaged encode does. Either way the result equals <see cref="EncodeSelected(ArrayView{float}, TopKSelection, int, int, ArrayView{int}, ArrayView{int}, int, ArrayView{int}, ArrayView{float})"/>.
    /// </summary>
    public void EncodeSelected(ArrayView<float> dense, TopKSelection selection, int rows, int cols,
        ArrayView<int> rowPointers, ArrayView<int> rowTies, SelectedPlan plan, EntryStaging staging,
        ArrayView<int> columns, ArrayView<float> values)
    {
        if (!plan.Staged)
        {
            EncodeSelected(dense, selection, rows, cols, rowPointers, rowTies, plan.Count, columns, values);
            return;
        }
        CheckSelectedPlan(dense, rows, cols, rowPointers, rowTies);
        staging.Check(rows, cols, "csr encode selected");
        CheckPlanned(plan.Count, rows, cols, columns, values);
        if (plan.Count == 0)
        {
            return;
        }
        CopyStagedOnHost(states.OnHost(selection), rows, rowPointers, rowTies, staging, columns, values);
    }

    /// <summary>
    /// The entries <paramref name="selection"/> keeps of the dense row-major matrix
    /// <paramref name="dense"/> [rows, cols], encoded as CSR in one call: the plan, then the
    /// encode, in memory from <paramref name="memory"/> (the result in kept views). The CPU engine
    /// stages the entries in the pass that counts them, in a slot sized from
    /// <paramref name="longestRow"/> (the longest row at or above the threshold last time, updated
    /// here); a GPU backend plans on the device. <paramref name="knownCount"/> is the selection's K
    /// when it was selected on this very matrix (a GPU backend then reads nothing back), else -1.
    /// </summary>
    public CsrMatrix EncodeTopK(ArrayView<float> dense, TopKSelection selection, int rows, int cols, int knownCount,
        IEncodeMemory memory, ref int longestRow)
    {
        CheckShape(rows, cols, "csr encode top-k");
        var rowPointers = memory.KeepInts(rows + 1L);
        var rowTies = memory.KeepInts(rows);
        SelectedPlan plan;
        EntryStaging staging = default;
        if (launch.IsCpu)
        {
            staging = EntryStaging.In(memory, rows, cols, selection.Kept, longestRow);
            plan = PlanSelected(dense, selection, rows, cols, rowPointers, rowTies, staging, knownCount);
            longestRow = plan.Longest;
        }
        else
        {
            plan = new SelectedPlan(PlanSelectedOnDevice(dense, selection, rows, cols, rowPointers, rowTies, knownCount), false, 0);
        }
        var columns = memory.KeepInts(Math.Max(1, plan.Count));
        var values = memory.KeepFloats(Math.Max(1, plan.Count));
        if (plan.Staged)
        {
            EncodeSelected(dense, selection, rows, cols, rowPointers, rowTies, plan, staging, columns, values);
        }
        else
        {
            EncodeSelected(dense, selection, rows, cols, rowPointers, rowTies, plan.Count, columns, values);
        }
        return new CsrMatrix(rowPointers, columns, values, plan.Count);
    }

    /// <summary>
    /// The checks every selected plan starts with; for a selection that keeps nothing also writes
    /// the empty plan (zero row pointers and ties) and returns false: nothing to count.
    /// </summary>
    private bool StartPlan(ArrayView<float> dense, TopKSelection selection, int rows, int cols,
        ArrayView<int> rowPointers, ArrayView<int> rowTies)
    {
        CheckSelectedPlan(dense, rows, cols, rowPointers, rowTies);
        if (selection.TiesToKeep < 0)
        {
            throw new ArgumentException($"csr encode selected: selection keeps {selection.TiesToKeep} ties (must be at least 0)");
        }
        if (selection.KeepsNothing)
        {
            launch.Zero(rowPointers.SubView(0, rows + 1));
            launch.Zero(rowTies.SubView(0, rows));
            return false;
        }
        return true;
    }

    /// <summary>
    /// Second half (see <see cref="PlanSelected"/>, called just before with the same matrix,
    /// selection and plan arrays): writes each row's kept entries, columns increasing, into
    /// <paramref name="columns"/> and <paramref name="values"/>, which hold at least the planned
    /// count (checked on the host against the row pointers' last entry as planned).
    /// </summary>
    public void EncodeSelected(ArrayView<float> dense, TopKSelection selection, int rows, int cols,
        ArrayView<int> rowPointers, ArrayView<int> rowTies, int planned, ArrayView<int> columns, ArrayView<float> values)
    {
        CheckSelectedPlan(dense, rows, cols, rowPointers, rowTies);
        CheckPlanned(planned, rows, cols, columns, values);
        if (planned == 0)
        {
            return;
        }
        if (launch.IsCpu)
        {
            ScatterSelectedOnHostPlan(dense, states.OnHost(selection), rows, cols, rowPointers, rowTies, columns, values);
        }
        else
        {
            ScatterSelectedOnDevice(dense, states.OnDevice(selection), rows, cols, rowPointers, rowTies, columns, values);
        }
    }

    /// <summary>
    /// dense [rows, cols] = the CSR matrix, zeros elsewhere (overwrites every element). A column
    /// that appears twice in a row keeps its last value. Index arrays are clamp-protected (see the
    /// class remarks).
    /// </summary>
    public void Decode(ArrayView<int> rowPointers, ArrayView<int> columns, ArrayView<float> values,
        int rows, int cols, ArrayView<float> dense)
    {
        CheckSparse(rowPointers, columns, values, rows, cols, "csr decode");
        HostCheck.Length(dense, (long)rows * cols, "csr decode dense matrix");
        int t = launch.Threads(rows);
        decodeRows(t, rowPointers, columns, values, dense, rows, cols, t);
    }

    /// <summary>
    /// dense [rows, cols] += <paramref name="weight"/> * the CSR matrix: one client's term of a
    /// FedAvg sum. Entries not present add nothing. Index arrays are clamp-protected (see the
    /// class remarks).
    /// </summary>
    public void ScatterAdd(ArrayView<int> rowPointers, ArrayView<int> columns, ArrayView<float> values,
        float weight, int rows, int cols, ArrayView<float> dense)
    {
        CheckSparse(rowPointers, columns, values, rows, cols, "csr scatter-add");
        HostCheck.Length(dense, (long)rows * cols, "csr scatter-add dense matrix");
        int t = launch.Threads(rows);
        scatterAddRows(t, rowPointers, columns, values, dense, weight, rows, cols, t);
    }

    /// <summary>
    /// values[j] = dense[r, columns[j]] for every entry j of row r: the values of another matrix
    /// [rows, cols] at a CSR matrix's positions (the uplink's Diff on Top-K-Weights sends d where
    /// w's top-K lies). Index arrays are clamp-protected (see the class remarks); values outside
    /// every row's range are left alone.
    /// </summary>
    public void Gather(ArrayView<float> dense, int rows, int cols, ArrayView<int> rowPointers, ArrayView<int> columns,
        ArrayView<float> values)
    {
        CheckSparse(rowPointers, columns, values, rows, cols, "csr gather");
        HostCheck.Length(dense, (long)rows * cols, "csr gather dense matrix");
        int t = launch.Threads(rows);
        gatherRows(t, rowPointers, columns, dense, values, rows, cols, t);
    }

    private static void CheckShape(int rows, int cols, string what)
    {
        HostCheck.Positive(rows, $"{what} rows");
        HostCheck.Positive(cols, $"{what} cols");
        HostCheck.Count((long)rows * cols, what);
        HostCheck.Count(rows + 1L, what);
    }

    private static void CheckSelectedPlan(ArrayView<float> dense, int rows, int cols, ArrayView<int> rowPointers, ArrayView<int> rowTies)
    {
        const string what = "csr encode selected";
        CheckShape(rows, cols, what);
        HostCheck.Length(dense, (long)rows * cols, $"{what} dense matrix");
        HostCheck.Length(rowPointers, rows + 1L, $"{what} row pointers");
        HostCheck.Length(rowTies, rows, $"{what} row ties");
    }

    private static void CheckPlanned(int planned, int rows, int cols, ArrayView<int> columns, ArrayView<float> values)
    {
        if (planned < 0 || planned > (long)rows * cols)
        {
            throw new ArgumentException($"csr encode selected: planned count {planned} is outside [0, {(long)rows * cols}]");
        }
        if (columns.Length < planned || values.Length < planned)
        {
            throw new ArgumentException(
                $"csr encode selected: the plan keeps {planned} entries but columns holds {columns.Length} and values {values.Length}");
        }
    }

    private static void CheckSparse(ArrayView<int> rowPointers, ArrayView<int> columns, ArrayView<float> values,
        int rows, int cols, string what)
    {
        CheckShape(rows, cols, what);
        HostCheck.Length(rowPointers, rows + 1L, $"{what} row pointers");
        HostCheck.Count(columns.Length, $"{what} columns");
        HostCheck.Count(values.Length, $"{what} values");
    }

    /// <summary>rowPointers[r + 1] = number of non-zeros in row r.</summary>
    [GpuKernel]
    internal static void CountRowsKernel(Index1D index, ArrayView<float> dense, ArrayView<int> rowPointers, int rows, int cols, int stride)
    {
        for (int r = index; r < rows; r += stride)
        {
            long offset = (long)r * cols;
            int count = 0;
            for (int c = 0; c < cols; c++)
            {
                if (dense[offset + c] != 0f)
                {
                    count++;
                }
            }
            rowPointers[r + 1] = count;
        }
    }

    /// <summary>
    /// Writes row r's non-zeros from rowPointers[r] on, in column order. The row pointers were made
    /// by the scan of this encode; writes are still clamped to the capacity.
    /// </summary>
    [GpuKernel]
    internal static void ScatterRowsKernel(Index1D index, ArrayView<float> dense, ArrayView<int> rowPointers,
        ArrayView<int> columns, ArrayView<float> values, int rows, int cols, int stride)
    {
        long capacity = Math.Min(columns.Length, values.Length);
        for (int r = index; r < rows; r += stride)
        {
            long offset = (long)r * cols;
            long k = rowPointers[r];
            long end = Math.Min(rowPointers[r + 1], capacity);
            for (int c = 0; c < cols && k < end; c++)
            {
                float v = dense[offset + c];
                if (v != 0f)
                {
                    if (k >= 0)
                    {
                        columns[k] = c;
                        values[k] = v;
                    }
                    k++;
                }
            }
        }
    }

    /// <summary>Zeroes row r of dense, then writes its entries (clamp-protected).</summary>
    [GpuKernel]
    internal static void DecodeRowsKernel(Index1D index, ArrayView<int> rowPointers, ArrayView<int> columns,
        ArrayView<float> values, ArrayView<float> dense, int rows, int cols, int stride)
    {
        int capacity = (int)Math.Min(columns.Length, values.Length);
        for (int r = index; r < rows; r += stride)
        {
            long offset = (long)r * cols;
            for (int c = 0; c < cols; c++)
            {
                dense[offset + c] = 0f;
            }
            int start = ClampIndex(rowPointers[r], 0, capacity);
            int end = ClampIndex(rowPointers[r + 1], start, capacity);
            for (int k = start; k < end; k++)
            {
                int c = columns[k];
                if ((uint)c < (uint)cols)
                {
                    dense[offset + c] = values[k];
                }
            }
        }
    }

    /// <summary>Row r's entries take their values from dense row r (clamp-protected).</summary>
    [GpuKernel]
    internal static void GatherRowsKernel(Index1D index, ArrayView<int> rowPointers, ArrayView<int> columns,
        ArrayView<float> dense, ArrayView<float> values, int rows, int cols, int stride)
    {
        int capacity = (int)Math.Min(columns.Length, values.Length);
        for (int r = index; r < rows; r += stride)
        {
            long offset = (long)r * cols;
            int start = ClampIndex(rowPointers[r], 0, capacity);
            int end = ClampIndex(rowPointers[r + 1], start, capacity);
            for (int k = start; k < end; k++)
            {
                int c = columns[k];
                if ((uint)c < (uint)cols)
                {
                    values[k] = dense[offset + c];
                }
            }
        }
    }

    /// <summary>dense row r += weight * its entries (clamp-protected).</summary>
    [GpuKernel]
    internal static void ScatterAddRowsKernel(Index1D index, ArrayView<int> rowPointers, ArrayView<int> columns,
        ArrayView<float> values, ArrayView<float> dense, float weight, int rows, int cols, int stride)
    {
        int capacity = (int)Math.Min(columns.Length, values.Length);
        for (int r = index; r < rows; r += stride)
        {
            long offset = (long)r * cols;
            int start = ClampIndex(rowPointers[r], 0, capacity);
            int end = ClampIndex(rowPointers[r + 1], start, capacity);
            for (int k = start; k < end; k++)
            {
                int c = columns[k];
                if ((uint)c < (uint)cols)
                {
                    dense[offset + c] += weight * values[k];
                }
            }
        }
    }

    /// <summary>v limited to [lo, hi] (lo &lt;= hi); used by kernels on device index arrays.</summary>
    internal static int ClampIndex(int v, int lo, int hi) => Math.Max(lo, Math.Min(v, hi));
}
