using ILGPU;

namespace ZeroFL.Kernels;

/// <summary>The selected CSR plan made on the device (the GPU backends' plan).</summary>
public sealed partial class CsrKernels
{
    private readonly Action<Index1D, ArrayView<int>, ArrayView<int>, int, int, int> scanSelectedRows;

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
        int t = launch.Threads(rows);
        countSelectedRows(t, dense, rowPointers, rowTies, rows, cols, selection.ThresholdBits, t);
        int one = launch.Threads(1);
        scanSelectedRows(one, rowPointers, rowTies, rows, selection.TiesToKeep, knownCount >= 0 ? knownCount : int.MaxValue);
        if (knownCount >= 0)
        {
            return knownCount;
        }
        var total = new int[1];
        launch.ReadBack(rowPointers.SubView(rows, 1), total);
        return total[0];
    }

    /// <summary>
    /// One thread: rowPointers[r + 1] holds row r's count above the threshold and rowTies[r] its
    /// count equal to it; gives the first tiesToKeep ties to the earliest rows and writes the
    /// exclusive prefix (row pointers, each at most limit) and the rows' tie shares in place.
    /// </summary>
    [GpuKernel]
    internal static void ScanSelectedRowsKernel(Index1D index, ArrayView<int> rowPointers, ArrayView<int> rowTies, int rows, int tiesToKeep, int limit)
    {
        if (index != 0)
        {
            return;
        }
        int tiesLeft = tiesToKeep;
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
}
