namespace ZeroFL.Kernels;

// Partitioning: how threads split rows, channels and kept activations by cost.
internal static unsafe partial class SparseConvCpu
{
    // ------------------------------------------------------------------ partitioning

    private static int Clamp(int v, int lo, int hi) => Math.Max(lo, Math.Min(v, hi));

    /// <summary>First row of thread t: the first row whose cost prefix reaches total * t / threads.</summary>
    private static int RowBoundary(int* rowPtr, int rows, int capacity, long total, int t, int threads)
    {
        if (t <= 0)
        {
            return 0;
        }
        if (t >= threads)
        {
            return rows;
        }
        long target = total * t / threads;
        long prefix = 0;
        for (int r = 0; r < rows; r++)
        {
            if (prefix >= target)
            {
                return r;
            }
            int s = Clamp(rowPtr[r], 0, capacity);
            prefix += Clamp(rowPtr[r + 1], s, capacity) - s + RowCost;
        }
        return rows;
    }

    /// <summary>First input channel of thread t for backward input, balancing kept weights per channel.</summary>
    private static int ChannelBoundary(int* colCount, int area, int channels, long total, int t, int threads)
    {
        if (t <= 0)
        {
            return 0;
        }
        if (t >= threads)
        {
            return channels;
        }
        long target = total * t / threads;
        long prefix = 0;
        for (int c = 0; c < channels; c++)
        {
            if (prefix >= target)
            {
                return c;
            }
            prefix += RowCost;
            for (int a = 0; a < area; a++)
            {
                prefix += colCount[c * area + a];
            }
        }
        return channels;
    }

    /// <summary>
    /// First input channel of thread t for backward weight: the smallest c such that the kept
    /// activations of channels below c (over all batches) reach count * t / threads, found by binary
    /// search on c with binary searches in the increasing indices.
    /// </summary>
    private static int ActivationBoundary(int* idx, int count, int batch, int channels, int plane, int t, int threads)
    {
        if (t <= 0)
        {
            return 0;
        }
        if (t >= threads)
        {
            return channels;
        }
        long target = (long)count * t / threads;
        int lo = 0;
        int hi = channels;
        while (lo < hi)
        {
            int mid = (lo + hi) >> 1;
            long below = 0;
            for (int b = 0; b < batch; b++)
            {
                long first = (long)b * channels * plane;
                below += LowerBound(idx, count, first + (long)mid * plane) - LowerBound(idx, count, first);
            }
            if (below >= target)
            {
                hi = mid;
            }
            else
            {
                lo = mid + 1;
            }
        }
        return lo;
    }

    /// <summary>First j in [0, count) with idx[j] &gt;= value (count if none), for increasing idx.</summary>
    private static int LowerBound(int* idx, int count, long value)
    {
        int lo = 0;
        int hi = count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (idx[mid] < value)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }
        return lo;
    }
}
