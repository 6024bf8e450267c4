using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ZeroFL.Kernels;

// The gather engine: runs of packed memory summed over (shift, weight) lists into 8-wide
// register tiles (Dot8, Dot4), channel-window blocking, and the stores of the results.
internal static unsafe partial class SparseConvCpu
{
    // ------------------------------------------------------------------ engine

    /// <summary>
    /// A gather's (shift, weight) lists: rows [R0, R1), the phase lists of row r at
    /// <c>Starts[(r - R0) * phases + phase]</c> .. next into <see cref="Offsets"/> and <see cref="Weights"/>,
    /// and their channel-window starts (<see cref="WindowStarts"/>; null when unblocked).
    /// </summary>
    private readonly struct GatherLists(int r0, int r1, int* starts, int* offsets, float* weights, int* windowStart)
    {
        public int R0 { get; } = r0;

        public int R1 { get; } = r1;

        public int* Starts { get; } = starts;

        public int* Offsets { get; } = offsets;

        public float* Weights { get; } = weights;

        public int* WindowStart { get; } = windowStart;
    }

    /// <summary>
    /// For each pair of runs in [firstRun, endRun) (firstRun even) and each row of the lists: for
    /// each output phase, the row's list of that phase summed over the runs, then stored into
    /// out + row * rowStride (overwrite or accumulate). Overwrite writes zeros for empty lists.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunGather(GatherTables tables, Workspace ws, float* packed, float* output, GatherLists lists,
        int rowStride, bool accumulate, int firstRun, int endRun)
    {
        int phases = tables.PhaseCount;
        int runs = endRun;
        int r0 = lists.R0, r1 = lists.R1;
        int* starts = lists.Starts;
        int* offsets = lists.Offsets;
        float* weights = lists.Weights;
        int* stripStart = Ptr(tables.StripStart);
        float* tile = ws.Tiles(phases);
        int windows = tables.Windows;
        int* windowStart = lists.WindowStart;
        bool blocked = windowStart != null;
        int blockRows = Math.Max(1, BlockRows / phases);
        float* block = blocked ? ws.Floats(ref ws.BlockTile, blockRows * phases * 64) : null;
        for (int s = firstRun; s < runs; s += 2)
        {
            bool two = s + 1 < runs;
            float* src = packed + stripStart[s];
            int second = two ? stripStart[s + 1] - stripStart[s] : 0;
            if (blocked && two)
            {
                RunPairBlocked(tables, src, second, s, output, r0, r1, blockRows, offsets, weights, rowStride, accumulate, windowStart, windows, block);
                continue;
            }
            for (int r = r0; r < r1; r++)
            {
                int* bucket = starts + (r - r0) * phases;
                bool any = false;
                for (int phase = 0; phase < phases; phase++)
                {
                    int first = bucket[phase];
                    int n = bucket[phase + 1] - first;
                    float* t = tile + phase * 64;
                    if (n == 0)
                    {
                        if (!accumulate || phases > 1)
                        {
                            Clear(t, 64);
                        }
                        continue;
                    }
                    any = true;
                    if (two)
                    {
                        Dot8(src, second, offsets + first, weights + first, n, t);
                    }
                    else
                    {
                        Dot4(src, offsets + first, weights + first, n, t);
                    }
                }
                if (!any && accumulate)
                {
                    continue;
                }
                float* row = output + (long)r * rowStride;
                StoreRuns(tables, tile, s, row, accumulate);
                if (two)
                {
                    StoreRuns(tables, tile + 32, s + 1, row, accumulate);
                }
            }
        }
    }

    /// <summary>
    /// List r's entries of source-channel window w: <c>result[r * (windows + 1) + w]</c> .. next (a
    /// list is a row's, or for backward input a (row, phase) bucket's). Each list is ordered by
    /// source channel (CSR columns increase; backward input fills its buckets in output-channel
    /// order), and an entry's channel is its offset / ChannelStride. Null when the gather has one
    /// window (unblocked).
    /// </summary>
    private static int* WindowStarts(GatherTables tables, Workspace ws, int rows, int* starts, int* offsets)
    {
        int windows = tables.Windows;
        if (windows <= 1)
        {
            return null;
        }
        int perWindow = tables.WindowChannels;
        int channelStride = tables.ChannelStride;
        var result = ws.Ints(ref ws.WindowStart, rows * (windows + 1));
        long span = (long)channelStride * perWindow;
        for (int r = 0; r < rows; r++)
        {
            int* rowWindows = result + r * (windows + 1);
            int window = 0;
            long next = span;
            int end = starts[r + 1];
            rowWindows[0] = starts[r];
            for (int i = starts[r]; i < end; i++)
            {
                // Window of an entry: offset / span (offsets are not negative), found by comparisons
                // rather than a division per entry; an entry below the current window (never, for
                // ordered lists) stays in it, and the last window takes everything above.
                int offset = offsets[i];
                while (offset >= next && window < windows - 1)
                {
                    rowWindows[++window] = i;
                    next += span;
                }
            }
            while (window < windows)
            {
                rowWindows[++window] = end;
            }
        }
        return result;
    }

    /// <summary>
    /// One pair of runs of a gather, blocked so that the packed operand stays in L1: rows in blocks of
    /// <paramref name="blockRows"/> (<see cref="BlockRows"/> / phases; the 64 sums of each of their
    /// phase lists in <paramref name="block"/>, phase p of a row at 64 p as <see cref="StoreRuns"/>
    /// reads them), and for each block the source channels in windows of
    /// <see cref="GatherTables.WindowChannels"/>, whose slice of the runs' operand every list of the
    /// block reads before the next window.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunPairBlocked(GatherTables tables, float* src, int second, int s, float* output, int r0, int r1, int blockRows,
        int* offsets, float* weights, int rowStride, bool accumulate, int* windowStart, int windows, float* block)
    {
        int phases = tables.PhaseCount;
        for (int b0 = r0; b0 < r1; b0 += blockRows)
        {
            int lists = (Math.Min(b0 + blockRows, r1) - b0) * phases;
            int firstList = (b0 - r0) * phases;
            Clear(block, lists * 64);
            for (int w = 0; w < windows; w++)
            {
                for (int u = 0; u < lists; u++)
                {
                    int* listWindows = windowStart + (firstList + u) * (windows + 1);
                    int first = listWindows[w];
                    int n = listWindows[w + 1] - first;
                    if (n > 0)
                    {
                        Dot8Add(src, second, offsets + first, weights + first, n, block + u * 64);
                    }
                }
            }
            for (int u = 0; u < lists; u += phases)
            {
                float* row = output + (long)(b0 + u / phases) * rowStride;
                StoreRuns(tables, block + u * 64, s, row, accumulate);
                StoreRuns(tables, block + u * 64 + 32, s + 1, row, accumulate);
            }
        }
    }

    /// <summary>Writes (or adds) the 32 lanes of every phase of one run (phase p's lanes at tile + 64 p).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRuns(GatherTables tables, float* tile, int run, float* row, bool accumulate)
    {
        int phases = tables.PhaseCount;
        int phaseRows = tables.PhaseRows;
        int phaseCols = phases / phaseRows;
        int* outputs = Ptr(tables.StripOutput) + (long)run * phases * SparseConvStrips.Length;
        byte* contiguous = Ptr(tables.Contiguous) + (long)run * phases * 4;
        byte* paired = Ptr(tables.Paired) + (long)run * phaseRows * 4;
        for (int ph = 0; ph < phaseRows; ph++)
        {
            for (int c = 0; c < 4; c++)
            {
                if (paired[ph * 4 + c] != 0 && Avx.IsSupported)
                {
                    // Stride 2: lanes of phases (ph, 0) and (ph, 1) are columns 2j and 2j + 1 of one row.
                    var even = Vector256.Load(tile + ph * 2 * 64 + c * 8);
                    var odd = Vector256.Load(tile + (ph * 2 + 1) * 64 + c * 8);
                    var lo = Avx.UnpackLow(even, odd);
                    var hi = Avx.UnpackHigh(even, odd);
                    float* d = row + outputs[ph * 2 * SparseConvStrips.Length + c * 8];
                    var first = Avx.Permute2x128(lo, hi, 0x20);
                    var second = Avx.Permute2x128(lo, hi, 0x31);
                    if (accumulate)
                    {
                        first += Vector256.Load(d);
                        second += Vector256.Load(d + 8);
                    }
                    Vector256.Store(first, d);
                    Vector256.Store(second, d + 8);
                    continue;
                }
                for (int pw = 0; pw < phaseCols; pw++)
                {
                    int phase = ph * phaseCols + pw;
                    StoreChunk(tile + phase * 64 + c * 8, outputs + phase * SparseConvStrips.Length + c * 8,
                        contiguous[phase * 4 + c] != 0, row, accumulate);
                }
            }
        }
    }

    /// <summary>Writes (or adds) 8 lanes: one vector when they are consecutive outputs, else lane by lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreChunk(float* t, int* o, bool contiguous, float* row, bool accumulate)
    {
        if (contiguous)
        {
            float* d = row + o[0];
            var v = Vector256.Load(t);
            if (accumulate)
            {
                v += Vector256.Load(d);
            }
            Vector256.Store(v, d);
            return;
        }
        for (int lane = 0; lane < 8; lane++)
        {
            int at = o[lane];
            if (at >= 0)
            {
                row[at] = accumulate ? row[at] + t[lane] : t[lane];
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Madd(Vector256<float> a, Vector256<float> b, Vector256<float> c)
        => Fma.IsSupported ? Fma.MultiplyAdd(a, b, c) : a * b + c;

    /// <summary>
    /// tile[0..32) = sum_k w[k] * src[off[k] + 0..32), tile[32..64) = sum_k w[k] * src[off[k] + second + 0..32):
    /// 8 accumulators in registers, 8 loads and 8 FMAs per kept entry.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot8(float* src, int second, int* offsets, float* weights, int n, float* tile)
    {
        Clear(tile, 64);
        Dot8Add(src, second, offsets, weights, n, tile);
    }

    /// <summary>tile[0..64) += the sums of <see cref="Dot8"/>: 8 accumulators in registers, 8 loads and 8 FMAs per kept entry.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot8Add(float* src, int second, int* offsets, float* weights, int n, float* tile)
    {
        if (Vector512.IsHardwareAccelerated)
        {
            Dot8Add512(src, second, offsets, weights, n, tile);
            return;
        }
        var a0 = Vector256.Load(tile);
        var a1 = Vector256.Load(tile + 8);
        var a2 = Vector256.Load(tile + 16);
        var a3 = Vector256.Load(tile + 24);
        var a4 = Vector256.Load(tile + 32);
        var a5 = Vector256.Load(tile + 40);
        var a6 = Vector256.Load(tile + 48);
        var a7 = Vector256.Load(tile + 56);
        for (int k = 0; k < n; k++)
        {
            float* p = src + offsets[k];
            float* q = p + second;
            var w = Vector256.Create(weights[k]);
            a0 = Madd(Vector256.Load(p), w, a0);
            a1 = Madd(Vector256.Load(p + 8), w, a1);
            a2 = Madd(Vector256.Load(p + 16), w, a2);
            a3 = Madd(Vector256.Load(p + 24), w, a3);
            a4 = Madd(Vector256.Load(q), w, a4);
            a5 = Madd(Vector256.Load(q + 8), w, a5);
            a6 = Madd(Vector256.Load(q + 16), w, a6);
            a7 = Madd(Vector256.Load(q + 24), w, a7);
        }
        Vector256.Store(a0, tile);
        Vector256.Store(a1, tile + 8);
        Vector256.Store(a2, tile + 16);
        Vector256.Store(a3, tile + 24);
        Vector256.Store(a4, tile + 32);
        Vector256.Store(a5, tile + 40);
        Vector256.Store(a6, tile + 48);
        Vector256.Store(a7, tile + 56);
    }

    /// <summary><see cref="Dot8Add"/> with four Vector512 accumulators (AVX-512 hosts): the same fused multiply-adds per lane in the same order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot8Add512(float* src, int second, int* offsets, float* weights, int n, float* tile)
    {
        var a0 = Vector512.Load(tile);
        var a1 = Vector512.Load(tile + 16);
        var a2 = Vector512.Load(tile + 32);
        var a3 = Vector512.Load(tile + 48);
        for (int k = 0; k < n; k++)
        {
            float* p = src + offsets[k];
            float* q = p + second;
            var w = Vector512.Create(weights[k]);
            a0 = Vector512.FusedMultiplyAdd(Vector512.Load(p), w, a0);
            a1 = Vector512.FusedMultiplyAdd(Vector512.Load(p + 16), w, a1);
            a2 = Vector512.FusedMultiplyAdd(Vector512.Load(q), w, a2);
            a3 = Vector512.FusedMultiplyAdd(Vector512.Load(q + 16), w, a3);
        }
        Vector512.Store(a0, tile);
        Vector512.Store(a1, tile + 16);
        Vector512.Store(a2, tile + 32);
        Vector512.Store(a3, tile + 48);
    }

    /// <summary>tile[0..32) = sum_k w[k] * src[off[k] + 0..32) (a single run).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4(float* src, int* offsets, float* weights, int n, float* tile)
    {
        if (Vector512.IsHardwareAccelerated)
        {
            Dot4With512(src, offsets, weights, n, tile);
            return;
        }
        var a0 = Vector256<float>.Zero;
        var a1 = Vector256<float>.Zero;
        var a2 = Vector256<float>.Zero;
        var a3 = Vector256<float>.Zero;
        var b0 = Vector256<float>.Zero;
        var b1 = Vector256<float>.Zero;
        var b2 = Vector256<float>.Zero;
        var b3 = Vector256<float>.Zero;
        int k = 0;
        for (; k + 2 <= n; k += 2)
        {
            float* p = src + offsets[k];
            float* q = src + offsets[k + 1];
            var w = Vector256.Create(weights[k]);
            var v = Vector256.Create(weights[k + 1]);
            a0 = Madd(Vector256.Load(p), w, a0);
            a1 = Madd(Vector256.Load(p + 8), w, a1);
            a2 = Madd(Vector256.Load(p + 16), w, a2);
            a3 = Madd(Vector256.Load(p + 24), w, a3);
            b0 = Madd(Vector256.Load(q), v, b0);
            b1 = Madd(Vector256.Load(q + 8), v, b1);
            b2 = Madd(Vector256.Load(q + 16), v, b2);
            b3 = Madd(Vector256.Load(q + 24), v, b3);
        }
        if (k < n)
        {
            float* p = src + offsets[k];
            var w = Vector256.Create(weights[k]);
            a0 = Madd(Vector256.Load(p), w, a0);
            a1 = Madd(Vector256.Load(p + 8), w, a1);
            a2 = Madd(Vector256.Load(p + 16), w, a2);
            a3 = Madd(Vector256.Load(p + 24), w, a3);
        }
        Vector256.Store(a0 + b0, tile);
        Vector256.Store(a1 + b1, tile + 8);
        Vector256.Store(a2 + b2, tile + 16);
        Vector256.Store(a3 + b3, tile + 24);
    }

    /// <summary><see cref="Dot4"/> with Vector512 accumulators (AVX-512 hosts): even and odd entries apart, added at the end, as there.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4With512(float* src, int* offsets, float* weights, int n, float* tile)
    {
        var a0 = Vector512<float>.Zero;
        var a1 = Vector512<float>.Zero;
        var b0 = Vector512<float>.Zero;
        var b1 = Vector512<float>.Zero;
        int k = 0;
        for (; k + 2 <= n; k += 2)
        {
            float* p = src + offsets[k];
            float* q = src + offsets[k + 1];
            var w = Vector512.Create(weights[k]);
            var v = Vector512.Create(weights[k + 1]);
            a0 = Vector512.FusedMultiplyAdd(Vector512.Load(p), w, a0);
            a1 = Vector512.FusedMultiplyAdd(Vector512.Load(p + 16), w, a1);
            b0 = Vector512.FusedMultiplyAdd(Vector512.Load(q), v, b0);
            b1 = Vector512.FusedMultiplyAdd(Vector512.Load(q + 16), v, b1);
        }
        if (k < n)
        {
            float* p = src + offsets[k];
            var w = Vector512.Create(weights[k]);
            a0 = Vector512.FusedMultiplyAdd(Vector512.Load(p), w, a0);
            a1 = Vector512.FusedMultiplyAdd(Vector512.Load(p + 16), w, a1);
        }
        Vector512.Store(a0 + b0, tile);
        Vector512.Store(a1 + b1, tile + 16);
    }
}
