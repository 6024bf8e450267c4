using ILGPU;

namespace ZeroFL.Kernels;

/// <summary>
/// The CPU accelerator's encoding of a top-K selection as CSR: per-row counts through the
/// Vector256 loops of <see cref="TopKRanges"/>, scanned on the host (a read is free there), and a
/// one-pass staged encode. These kernels are <see cref="CpuKernelAttribute"/>: never compiled for a
/// GPU backend. Thread i of n takes the i-th contiguous block of rows (interleaved rows made the
/// threads share the cache lines of the row pointers and of adjacent rows' output: FEMNIST fc1's
/// staged plan, 2048 rows of 3136, took 3.8 ms, 2.5 ms in blocks).
/// </summary>
public sealed partial class CsrKernels
{
    private Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<int>, int, int, uint, int>? countSelectedRows;
    private Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<float>, int, int, uint, int>? scatterSelectedRows;
    private Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<float>, int, int, int, uint, int>? stageSelectedRows;
    private Action<Index1D, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<float>, int, ArrayView<int>, ArrayView<float>, int, uint, int>? copyStagedRows;
    private int[] hostRowTies = [];

    private void LoadHostSelected()
    {
        countSelectedRows = launch.Load<ArrayView<float>, ArrayView<int>, ArrayView<int>, int, int, uint, int>(CountSelectedRowsKernel);
        scatterSelectedRows = launch.Load<ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<float>, int, int, uint, int>(ScatterSelectedRowsKernel);
        stageSelectedRows = launch.Load<ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<float>, int, int, int, uint, int>(StageSelectedRowsKernel);
        copyStagedRows = launch.Load<ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<float>, int, ArrayView<int>, ArrayView<float>, int, uint, int>(CopyStagedRowsKernel);
    }

    /// <summary>Per-row counts, scanned on the host; returns the total kept.</summary>
    private int PlanSelectedOnHost(ArrayView<float> dense, TopKSelection selection, int rows, int cols,
        ArrayView<int> rowPointers, ArrayView<int> rowTies)
    {
        int t = launch.Threads(rows);
        countSelectedRows!(t, dense, rowPointers, rowTies, rows, cols, selection.ThresholdBits, t);
        return ScanSelected(rowPointers, rowTies, rows, selection.TiesToKeep).Total;
    }

    /// <summary>The staged plan: one pass counts each row and stages its entries at or above the threshold.</summary>
    private SelectedPlan PlanStagedOnHost(ArrayView<float> dense, TopKSelection selection, int rows, int cols,
        ArrayView<int> rowPointers, ArrayView<int> rowTies, EntryStaging staging)
    {
        int t = launch.Threads(rows);
        stageSelectedRows!(t, dense, rowPointers, rowTies, staging.Indices, staging.Values, staging.Slot, rows, cols, selection.ThresholdBits, t);
        var (total, longest) = ScanSelected(rowPointers, rowTies, rows, selection.TiesToKeep);
        return new SelectedPlan(total, longest <= staging.Slot, longest);
    }

    /// <summary>The staged encode's copy pass.</summary>
    private void CopyStagedOnHost(TopKSelection selection, int rows, ArrayView<int> rowPointers, ArrayView<int> rowTies,
        EntryStaging staging, ArrayView<int> columns, ArrayView<float> values)
    {
        int t = launch.Threads(rows);
        copyStagedRows!(t, rowPointers, rowTies, staging.Indices, staging.Values, staging.Slot, columns, values, rows, selection.ThresholdBits, t);
    }

    /// <summary>The unstaged encode's write pass over a host plan.</summary>
    private void ScatterSelectedOnHostPlan(ArrayView<float> dense, TopKSelection selection, int rows, int cols,
        ArrayView<int> rowPointers, ArrayView<int> rowTies, ArrayView<int> columns, ArrayView<float> values)
    {
        int t = launch.Threads(rows);
        scatterSelectedRows!(t, dense, rowPointers, rowTies, columns, values, rows, cols, selection.ThresholdBits, t);
    }

    /// <summary>
    /// Host half of a plan: turns the downloaded per-row counts (above the threshold in the row
    /// pointers' slots, equal to it in the ties) into row pointers and each row's share of the
    /// first <paramref name="tiesToKeep"/> ties, uploads them, and returns the total kept and the
    /// longest row's count of entries with key &gt;= threshold.
    /// </summary>
    private (int Total, int Longest) ScanSelected(ArrayView<int> rowPointers, ArrayView<int> rowTies, int rows, int tiesToKeep)
    {
        if (hostRowPointers.Length < rows + 1)
        {
            hostRowPointers = new int[rows + 1];
        }
        if (hostRowTies.Length < rows)
        {
            hostRowTies = new int[rows];
        }
        var pointers = hostRowPointers.AsSpan(0, rows + 1);
        var ties = hostRowTies.AsSpan(0, rows);
        launch.ReadBack(rowPointers.SubView(0, rows + 1), pointers);
        launch.ReadBack(rowTies.SubView(0, rows), ties);
        int tiesLeft = tiesToKeep;
        long total = 0;
        int longest = 0;
        pointers[0] = 0;
        for (int r = 0; r < rows; r++)
        {
            longest = Math.Max(longest, pointers[r + 1] + ties[r]);
            int share = Math.Min(ties[r], tiesLeft);
            tiesLeft -= share;
            ties[r] = share;
            total += pointers[r + 1] + share;
            if (total > int.MaxValue)
            {
                throw new ArgumentException($"csr encode selected: more than {int.MaxValue} entries");
            }
            pointers[r + 1] = (int)total;
        }
        launch.Upload((ReadOnlySpan<int>)pointers, rowPointers.SubView(0, rows + 1));
        launch.Upload((ReadOnlySpan<int>)ties, rowTies.SubView(0, rows));
        return ((int)total, longest);
    }

    /// <summary>Row r: rowPointers[r + 1] = entries with key &gt; threshold, rowTies[r] = entries with key == threshold.</summary>
    [CpuKernel]
    internal static void CountSelectedRowsKernel(Index1D index, ArrayView<float> dense, ArrayView<int> rowPointers,
        ArrayView<int> rowTies, int rows, int cols, uint threshold, int stride)
    {
        int block = (rows + stride - 1) / stride;
        int last = Math.Min(rows, (index + 1) * block);
        for (int r = index * block; r < last; r++)
        {
            long offset = (long)r * cols;
            long both = TopKRanges.Count(dense, offset, offset + cols, threshold);
            rowPointers[r + 1] = (int)(both >> 32);
            rowTies[r] = (int)(both & 0xFFFFFFFFL);
        }
    }

    /// <summary>
    /// Row r: writes its entries with key &gt; threshold and its first rowTies[r] with key ==
    /// threshold, columns increasing, to [rowPointers[r], rowPointers[r + 1]). The plan was made by
    /// <see cref="PlanSelected"/> on the same matrix, so every row's range holds exactly its entries.
    /// </summary>
    [CpuKernel]
    internal static void ScatterSelectedRowsKernel(Index1D index, ArrayView<float> dense, ArrayView<int> rowPointers,
        ArrayView<int> rowTies, ArrayView<int> columns, ArrayView<float> values, int rows, int cols, uint threshold, int stride)
    {
        int block = (rows + stride - 1) / stride;
        int last = Math.Min(rows, (index + 1) * block);
        for (int r = index * block; r < last; r++)
        {
            TopKRanges.Scatter(dense.SubView((long)r * cols, cols), values, columns, 0, cols, threshold,
                rowPointers[r], rowPointers[r + 1], rowTies[r]);
        }
    }

    /// <summary>
    /// Row r: counts its entries with key &gt; threshold (into rowPointers[r + 1]) and == threshold
    /// (rowTies[r]) and writes those with key &gt;= threshold, columns increasing, to its slot
    /// [r * slot, (r + 1) * slot) of the staging (the first slot of them).
    /// </summary>
    [CpuKernel]
    internal static void StageSelectedRowsKernel(Index1D index, ArrayView<float> dense, ArrayView<int> rowPointers,
        ArrayView<int> rowTies, ArrayView<int> stagedIndices, ArrayView<float> stagedValues, int slot, int rows, int cols, uint threshold, int stride)
    {
        int block = (rows + stride - 1) / stride;
        int last = Math.Min(rows, (index + 1) * block);
        for (int r = index * block; r < last; r++)
        {
            long both = TopKRanges.Stage(dense.SubView((long)r * cols, cols), stagedValues, stagedIndices, 0, cols, threshold,
                r * slot, slot);
            rowPointers[r + 1] = (int)(both >> 32);
            rowTies[r] = (int)(both & 0xFFFFFFFFL);
        }
    }

    /// <summary>
    /// Row r of a staged plan: copies from its slot the entries with key &gt; threshold and its first
    /// rowTies[r] with key == threshold to [rowPointers[r], rowPointers[r + 1]) (clamped to the capacity).
    /// </summary>
    [CpuKernel]
    internal static void CopyStagedRowsKernel(Index1D index, ArrayView<int> rowPointers, ArrayView<int> rowTies, ArrayView<int> stagedIndices, ArrayView<float> stagedValues, int slot,
        ArrayView<int> columns, ArrayView<float> values, int rows, uint threshold, int stride)
    {
        int capacity = (int)Math.Min(columns.Length, values.Length);
        int block = (rows + stride - 1) / stride;
        int last = Math.Min(rows, (index + 1) * block);
        for (int r = index * block; r < last; r++)
        {
            int start = ClampIndex(rowPointers[r], 0, capacity);
            int end = ClampIndex(rowPointers[r + 1], start, capacity);
            long first = (long)r * slot;
            TopKRanges.CopyKept(stagedValues, stagedIndices, first, first + slot, threshold, values, columns, start, end, rowTies[r]);
        }
    }
}
