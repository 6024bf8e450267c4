using ILGPU;

namespace ZeroFL.Kernels;

/// <summary>
/// Encoding a top-K selection as CSR on the device (the GPU backends' path): per-row counts read
/// the threshold from the selection's device state, one thread scans them into row pointers and
/// tie shares, and the write pass fills each row. Plain scalar kernels; they also load on the CPU
/// accelerator, where <see cref="PlanSelectedOnDevice"/> is tested beside the host plan.
/// </summary>
public sealed partial class CsrKernels
{
    private Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<int>, int, int, int>? deviceCountSelectedRows;
    private Action<Index1D, ArrayView<int>, ArrayView<int>, ArrayView<int>, int, int>? scanSelectedRows;
    private Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<int>, int, int, int>? deviceScatterSelectedRows;
    private Action<Index1D, ArrayView<int>, int>? scanCounts;

    private void LoadDeviceSelected()
    {
        deviceCountSelectedRows = launch.Load<ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<int>, int, int, int>(DeviceCountSelectedRowsKernel);
        scanSelectedRows = launch.Load<ArrayView<int>, ArrayView<int>, ArrayView<int>, int, int>(ScanSelectedRowsKernel);
        scanCounts = launch.Load<ArrayView<int>, int>(ScanCountsKernel);
        deviceScatterSelectedRows = launch.Load<ArrayView<float>, ArrayView<int>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<int>, int, int, int>(DeviceScatterSelectedRowsKernel);
    }

    /// <summary>
    /// <see cref="PlanSelected(ArrayView{float}, TopKSelection, int, int, ArrayView{int}, ArrayView{int})"/>
    /// made on the device: the per-row counts, then one thread turns them into row pointers and each
    /// row's share of the ties. With <paramref name="knownCount"/> &gt;= 0 (the selection's
    /// <see cref="TopKSelection.Kept"/> when it was selected on this very matrix, which then keeps
    /// exactly that many) the host reads nothing and the row pointers are clamped to it, so an
    /// encode into arrays of that size never writes past them; with -1 (a reused threshold) the
    /// total is read back: one int, one sync. Runs on every accelerator.
    /// </summary>
    public int PlanSelectedOnDevice(ArrayView<float> dense, TopKSelection selection, int rows, int cols,
        ArrayView<int> rowPointers, ArrayView<int> rowTies, int knownCount)
    {
        if (knownCount < -1 || knownCount > (long)rows * cols)
        {
            throw new ArgumentException($"csr encode selected: known count {knownCount} is outside [-1, {(long)rows * cols}]");
        }
        if (!StartPlan(dense, selection, rows, cols, rowPointers, rowTies))
        {
            return 0;
        }
        var state = states.OnDevice(selection);
        int t = launch.Threads(rows);
        deviceCountSelectedRows!(t, dense, rowPointers, rowTies, state, rows, cols, t);
        int one = launch.Threads(1);
        scanSelectedRows!(one, rowPointers, rowTies, state, rows, knownCount >= 0 ? knownCount : int.MaxValue);
        if (knownCount >= 0)
        {
            return knownCount;
        }
        var total = new int[1];
        launch.ReadBack(rowPointers.SubView(rows, 1), total);
        return total[0];
    }

    /// <summary>The unstaged encode's write pass over a device plan.</summary>
    private void ScatterSelectedOnDevice(ArrayView<float> dense, ArrayView<int> state, int rows, int cols,
        ArrayView<int> rowPointers, ArrayView<int> rowTies, ArrayView<int> columns, ArrayView<float> values)
    {
        int t = launch.Threads(rows);
        deviceScatterSelectedRows!(t, dense, rowPointers, rowTies, columns, values, state, rows, cols, t);
    }

    /// <summary>Row r: rowPointers[r + 1] = entries with key &gt; selection[0], rowTies[r] = entries with key == selection[0].</summary>
    [GpuKernel]
    internal static void DeviceCountSelectedRowsKernel(Index1D index, ArrayView<float> dense, ArrayView<int> rowPointers,
        ArrayView<int> rowTies, ArrayView<int> selection, int rows, int cols, int stride)
    {
        uint threshold = (uint)selection[0];
        for (int r = index; r < rows; r += stride)
        {
            long offset = (long)r * cols;
            long both = TopKLoops.Count(dense, offset, offset + cols, threshold);
            rowPointers[r + 1] = (int)(both >> 32);
            rowTies[r] = (int)(both & 0xFFFFFFFFL);
        }
    }

    /// <summary>
    /// One thread: rowPointers[r + 1] holds row r's count above the threshold and rowTies[r] its
    /// count equal to it; gives the first selection[1] ties to the earliest rows and writes the
    /// exclusive prefix (row pointers, each at most limit) and the rows' tie shares in place.
    /// </summary>
    [GpuKernel]
    internal static void ScanSelectedRowsKernel(Index1D index, ArrayView<int> rowPointers, ArrayView<int> rowTies, ArrayView<int> selection, int rows, int limit)
    {
        if (index != 0)
        {
            return;
        }
        int tiesLeft = selection[1];
        long total = 0;
        rowPointers[0] = 0;
        for (int r = 0; r < rows; r++)
        {
            int ties = rowTies[r];
            int share = ties < tiesLeft ? ties : tiesLeft;
            tiesLeft -= share;
            rowTies[r] = share;
            total += rowPointers[r + 1] + share;
            rowPointers[r + 1] = (int)(total < limit ? total : limit);
        }
    }

    /// <summary>
    /// Row r: writes its entries with key &gt; selection[0] and its first rowTies[r] with key equal
    /// to it, columns increasing, to [rowPointers[r], rowPointers[r + 1]) and never past that range
    /// or the arrays' capacity.
    /// </summary>
    [GpuKernel]
    internal static void DeviceScatterSelectedRowsKernel(Index1D index, ArrayView<float> dense, ArrayView<int> rowPointers,
        ArrayView<int> rowTies, ArrayView<int> columns, ArrayView<float> values, ArrayView<int> selection, int rows, int cols, int stride)
    {
        uint threshold = (uint)selection[0];
        int capacity = (int)Math.Min(columns.Length, values.Length);
        for (int r = index; r < rows; r += stride)
        {
            int position = ClampIndex(rowPointers[r], 0, capacity);
            int end = ClampIndex(rowPointers[r + 1], position, capacity);
            // On the row's own view the index written is the column.
            TopKLoops.Scatter(dense.SubView((long)r * cols, cols), values, columns, 0, cols, threshold, position, end, rowTies[r]);
        }
    }

    /// <summary>
    /// One thread: rowPointers[r + 1] holds row r's non-zero count; writes the exclusive prefix in
    /// place (row pointers, rowPointers[0] = 0), each clamped to int.MaxValue.
    /// </summary>
    [GpuKernel]
    internal static void ScanCountsKernel(Index1D index, ArrayView<int> rowPointers, int rows)
    {
        if (index != 0)
        {
            return;
        }
        long total = 0;
        rowPointers[0] = 0;
        for (int r = 0; r < rows; r++)
        {
            total += rowPointers[r + 1];
            rowPointers[r + 1] = (int)(total < int.MaxValue ? total : int.MaxValue);
        }
    }
}
