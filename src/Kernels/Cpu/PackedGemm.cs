using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ILGPU;
using ILGPU.IR.Intrinsics;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// The CPU-accelerator GEMM: a GotoBLAS/BLIS-style blocked product run inside a SIMD helper.
/// Each launched thread (one per core) takes a rectangle of C (<see cref="ChooseGrid"/>) and, per
/// K block of at most 256,
/// <list type="bullet">
/// <item>packs its A rows into 6-row micro-panels (an MC x KC block of at most 144 rows, kept in
/// L2; when all its rows fit one block, it is packed once per K block),</item>
/// <item>packs a KC x NC block of B into 16-column micro-panels, row by row so that the source is
/// read in order; this is where im2col happens, straight from the image, with AVX2 masked loads
/// or gathers for padding and strides,</item>
/// <item>runs a 6x16 register-blocked micro-kernel (12 Vector256 FMA accumulators, C prefetched)
/// over every micro-tile, each 16-column B micro-panel staying in L1 while A streams from L2.</item>
/// </list>
/// Scratch lives in thread-local pinned arrays: MC*KC + KC*NC floats (about 4.2 MB) plus index
/// tables of M + 2K + N ints per thread. CPU accelerator only (the <see cref="CpuKernelAttribute"/>
/// GEMM kernel); GPU backends run the tiled GEMM.
/// </summary>
internal static unsafe partial class PackedGemm
{
    /// <summary>Micro-tile rows.</summary>
    public const int MR = 6;

    /// <summary>Micro-tile columns (two Vector256).</summary>
    public const int NR = 16;

    /// <summary>Most K per block: a 16-column B micro-panel (KC * 64 bytes) stays in the 32 KB L1.</summary>
    private const int KcMax = 256;

    /// <summary>Most M rows per packed A block (KC * MC * 4 = 144 KB, in the 512 KB L2); a multiple of MR.</summary>
    private const int McMax = 144;

    /// <summary>Most N columns per packed B block when A needs several blocks (B block in L3).</summary>
    private const int NcMax = 4096;

    /// <summary>
    /// N columns per B block when the thread's A rows fit one block: for im2col, whose source is
    /// small and re-read, B blocks that stay in L2 (KC * 256 * 4 = 256 KB) win; for a plain matrix
    /// streamed from memory, longer source rows read in order win.
    /// </summary>
    private const int NcIm2col = 256;

    /// <summary>N columns per B block for a plain-matrix B when the thread's A rows fit one block.</summary>
    private const int NcDense = 1024;

    /// <summary>Flop-equivalent cost of packing one element, used to pick how threads split C.</summary>
    private const double PackCost = 24;

    [ThreadStatic]
    private static Scratch? scratch;

    /// <summary>
    /// Thread <paramref name="thread"/> of <paramref name="threads"/> computes its share of C.
    /// Runs as .NET code on the CPU accelerator: <c>[IntrinsicImplementation]</c> keeps ILGPU's
    /// frontend from decompiling the body (it uses unsafe code, thread-statics and Vector256).
    /// </summary>
    [IntrinsicImplementation]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunSlice(int thread, int threads, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmProblem p)
    {
        ChooseGrid(threads, p, out int tm, out int tn);
        int ti = thread / tn;
        int tj = thread % tn;
        if (ti >= tm)
        {
            return;
        }
        int mPanels = (p.M + MR - 1) / MR;
        int nPanels = (p.N + NR - 1) / NR;
        int m0 = (int)((long)ti * mPanels / tm) * MR;
        int m1 = Math.Min(p.M, (int)((long)(ti + 1) * mPanels / tm) * MR);
        int n0 = (int)((long)tj * nPanels / tn) * NR;
        int n1 = Math.Min(p.N, (int)((long)(tj + 1) * nPanels / tn) * NR);
        if (m0 >= m1 || n0 >= n1)
        {
            return;
        }
        var s = scratch ??= new Scratch();
        Compute(s, m0, m1, n0, n1,
            (float*)a.LoadEffectiveAddressAsPtr(),
            (float*)b.LoadEffectiveAddressAsPtr(),
            (float*)c.LoadEffectiveAddressAsPtr(),
            p);
    }

    /// <summary>
    /// Splits C into tm x tn thread rectangles (tm * tn = threads), minimising the slowest
    /// thread's multiply-adds plus what it packs (every thread packs its own A rows and B columns).
    /// </summary>
    internal static void ChooseGrid(int threads, GemmProblem p, out int tm, out int tn)
    {
        int mPanels = (p.M + MR - 1) / MR;
        int nPanels = (p.N + NR - 1) / NR;
        tm = 1;
        tn = threads;
        double best = double.MaxValue;
        for (int rows = 1; rows <= threads; rows++)
        {
            if (threads % rows != 0)
            {
                continue;
            }
            int cols = threads / rows;
            double mt = Math.Min(p.M, (double)((mPanels + rows - 1) / rows) * MR);
            double nt = Math.Min(p.N, (double)((nPanels + cols - 1) / cols) * NR);
            double aPacks = Math.Ceiling(nt / NcMax);
            double cost = 2.0 * mt * nt * p.K + PackCost * p.K * (mt * aPacks + nt);
            if (cost < best - 1e-9 * best)
            {
                best = cost;
                tm = rows;
                tn = cols;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Compute(Scratch s, int m0, int m1, int n0, int n1, float* a, float* b, float* c, GemmProblem p)
    {
        int mt = m1 - m0;
        int nt = n1 - n0;
        int k = p.K;
        s.Prepare(mt, nt, k);

        fixed (int* aRowOff = s.ARowOff, aRowH = s.ARowH, aRowW = s.ARowW, cRowOff = s.CRowOff,
               aColOff = s.AColOff, aColH = s.AColH, aColW = s.AColW,
               bRowOff = s.BRowOff, bRowH = s.BRowH, bRowW = s.BRowW,
               bColOff = s.BColOff, bColH = s.BColH, bColW = s.BColW, cColOff = s.CColOff)
        fixed (byte* bPanelKind = s.BPanelKind, cPanelStride = s.CPanelStride)
        fixed (float* packA = s.PackA, packB = s.PackB)
        {
            Tabulate(p.A.Rows, m0, mt, aRowOff, aRowH, aRowW);
            Tabulate(p.C.Rows, m0, mt, cRowOff, null, null);
            Tabulate(p.A.Cols, 0, k, aColOff, aColH, aColW);
            Tabulate(p.B.Rows, 0, k, bRowOff, bRowH, bRowW);
            Tabulate(p.B.Cols, n0, nt, bColOff, bColH, bColW);
            Tabulate(p.C.Cols, n0, nt, cColOff, null, null);
            ClassifyPanels(nt, bColOff, bColH, bColW, cColOff, p.B.Checked, bPanelKind, cPanelStride);

            int kBlocks = (k + KcMax - 1) / KcMax;
            int kcStep = (k + kBlocks - 1) / kBlocks;
            int mPanels = (mt + MR - 1) / MR;
            int mBlocks = (mPanels * MR + McMax - 1) / McMax;
            int mcStep = (mPanels + mBlocks - 1) / mBlocks * MR;
            float* tile = stackalloc float[MR * 2 * NR];

            if (mt <= mcStep)
            {
                // One M block: pack it once per K block and keep it in L2 while B streams through.
                int ncStep = p.B.Checked ? NcIm2col : NcDense;
                for (int pc = 0; pc < k; pc += kcStep)
                {
                    int kc = Math.Min(kcStep, k - pc);
                    float beta = pc == 0 ? p.Beta : 1f;
                    PackA(p.A, a, packA, kc, mt, aRowOff, aRowH, aRowW, aColOff + pc, aColH + pc, aColW + pc);
                    for (int jc = 0; jc < nt; jc += ncStep)
                    {
                        int nc = Math.Min(ncStep, nt - jc);
                        PackB(p.B, b, packB, kc, nc, bRowOff + pc, bRowH + pc, bRowW + pc,
                            bColOff + jc, bColH + jc, bColW + jc, bPanelKind + jc / NR);
                        Macro(kc, mt, nc, packA, packB, c, cRowOff, cColOff + jc, cPanelStride + jc / NR, p.Alpha, beta, tile);
                    }
                }
                return;
            }

            for (int jc = 0; jc < nt; jc += NcMax)
            {
                int nc = Math.Min(NcMax, nt - jc);
                for (int pc = 0; pc < k; pc += kcStep)
                {
                    int kc = Math.Min(kcStep, k - pc);
                    float beta = pc == 0 ? p.Beta : 1f;
                    PackB(p.B, b, packB, kc, nc, bRowOff + pc, bRowH + pc, bRowW + pc,
                        bColOff + jc, bColH + jc, bColW + jc, bPanelKind + jc / NR);
                    for (int ic = 0; ic < mt; ic += mcStep)
                    {
                        int mc = Math.Min(mcStep, mt - ic);
                        PackA(p.A, a, packA, kc, mc, aRowOff + ic, aRowH + ic, aRowW + ic,
                            aColOff + pc, aColH + pc, aColW + pc);
                        Macro(kc, mc, nc, packA, packB, c, cRowOff + ic, cColOff + jc, cPanelStride + jc / NR, p.Alpha, beta, tile);
                    }
                }
            }
        }
    }

    /// <summary>
    /// The macro-kernel: every 6x16 micro-tile of a packed [mc, kc] A block times a packed
    /// [kc, nc] B block, added into C (row offsets <paramref name="cRows"/>, column offsets
    /// <paramref name="cCols"/>); B micro-panel outer so that it stays in L1 while A streams from L2.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Macro(int kc, int mc, int nc, float* packA, float* packB, float* c, int* cRows, int* cCols,
        byte* cPanelStride, float alpha, float beta, float* tile)
    {
        bool wide = Vector512.IsHardwareAccelerated && Avx512F.IsSupported;
        for (int jr = 0, panel = 0; jr < nc;)
        {
            int nr = Math.Min(NR, nc - jr);
            int stride = nr == NR ? cPanelStride[panel] : 0;
            float* pb = packB + (long)jr * kc;
            // AVX-512: two B micro-panels at a time where their C columns are alike (6x32
            // micro-tiles, 12 accumulators: enough independent FMAs to cover their latency on two
            // pipes; 6x16 leaves a quarter idle).
            if (wide && stride != 0 && jr + 2 * NR <= nc && cPanelStride[panel + 1] == stride)
            {
                MacroPair(kc, mc, packA, pb, c, cRows, cCols + jr, stride, alpha, beta, tile);
                jr += 2 * NR;
                panel += 2;
                continue;
            }
            for (int ir = 0; ir < mc; ir += MR)
            {
                MicroTile(kc, Math.Min(MR, mc - ir), nr, stride, packA + (long)ir * kc, pb, c, cRows + ir, cCols + jr, alpha, beta, tile);
            }
            jr += NR;
            panel++;
        }
    }

    /// <summary>
    /// Two adjacent full B micro-panels (<paramref name="pb"/>, 32 columns whose C columns start at
    /// <paramref name="cols"/>[0] and [16], each 16 <paramref name="stride"/> floats apart, 1 or 2)
    /// against every A micro-panel: 6x32 micro-tiles, written in place at stride 1 or through the
    /// tile (6 x 32 floats) at stride 2; the last partial rows as 6x16 tiles.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MacroPair(int kc, int mc, float* packA, float* pb, float* c, int* cRows, int* cols, int stride,
        float alpha, float beta, float* tile)
    {
        float* left = c + cols[0];
        float* right = c + cols[NR];
        int ir = 0;
        for (; ir + MR <= mc; ir += MR)
        {
            int* rows = cRows + ir;
            float* pa = packA + (long)ir * kc;
            if (stride == 1)
            {
                Micro6x32(kc, pa, pb, pb + (long)NR * kc, left, right,
                    rows[0], rows[1], rows[2], rows[3], rows[4], rows[5], alpha, beta);
                continue;
            }
            Micro6x32(kc, pa, pb, pb + (long)NR * kc, tile, tile + NR, 0, 2 * NR, 4 * NR, 6 * NR, 8 * NR, 10 * NR, 1f, 0f);
            for (int r = 0; r < MR; r++)
            {
                StoreStride2(left + rows[r], tile + 2 * NR * r, alpha, beta);
                StoreStride2(right + rows[r], tile + 2 * NR * r + NR, alpha, beta);
            }
        }
        if (ir < mc)
        {
            MicroTile(kc, mc - ir, NR, stride, packA + (long)ir * kc, pb, c, cRows + ir, cols, alpha, beta, tile);
            MicroTile(kc, mc - ir, NR, stride, packA + (long)ir * kc, pb + (long)NR * kc, c, cRows + ir, cols + NR, alpha, beta, tile);
        }
    }

    /// <summary>dst[2t] = alpha * source[t] + beta * dst[2t] for t &lt; 16 (beta = 0: dst not read): the output columns of a stride-2 backward-input phase.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreStride2(float* dst, float* source, float alpha, float beta)
    {
        if (beta == 0f)
        {
            for (int t = 0; t < NR; t++)
            {
                dst[2 * t] = alpha * source[t];
            }
        }
        else
        {
            for (int t = 0; t < NR; t++)
            {
                dst[2 * t] = MathF.FusedMultiplyAdd(beta, dst[2 * t], alpha * source[t]);
            }
        }
    }

    /// <summary>
    /// One micro-tile of at most 6 x 16: <paramref name="mr"/> rows of C (offsets
    /// <paramref name="rows"/>) by <paramref name="nr"/> columns (offsets <paramref name="cols"/>,
    /// <paramref name="stride"/> floats apart: 1, 2, or 0 when irregular or partial).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MicroTile(int kc, int mr, int nr, int stride, float* pa, float* pb, float* c, int* rows, int* cols,
        float alpha, float beta, float* tile)
    {
        float* c0 = c + cols[0];
        if (mr == MR && stride == 1)
        {
            Micro6x16(kc, pa, pb, c0 + rows[0], c0 + rows[1], c0 + rows[2], c0 + rows[3], c0 + rows[4], c0 + rows[5], alpha, beta);
            return;
        }
        Micro6x16(kc, pa, pb, tile, tile + NR, tile + 2 * NR, tile + 3 * NR, tile + 4 * NR, tile + 5 * NR, 1f, 0f);
        for (int r = 0; r < mr; r++)
        {
            float* source = tile + r * NR;
            if (stride == 1)
            {
                Store(c0 + rows[r], Vector256.Load(source), Vector256.Load(source + 8), alpha, beta);
            }
            else if (stride == 2)
            {
                StoreStride2(c0 + rows[r], source, alpha, beta);
            }
            else
            {
                for (int t = 0; t < nr; t++)
                {
                    float* dst = c + rows[r] + cols[t];
                    float value = alpha * source[t];
                    *dst = beta == 0f ? value : MathF.FusedMultiplyAdd(beta, *dst, value);
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Madd(Vector256<float> a, Vector256<float> b, Vector256<float> c)
        => Fma.IsSupported ? Fma.MultiplyAdd(a, b, c) : a * b + c;

    /// <summary>
    /// C[6, 16] (rows at c0..c5, 16 consecutive floats each) = alpha * A-panel * B-panel + beta * C;
    /// beta = 0 writes without reading. The 12 accumulators stay in registers.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Micro6x16(int kc, float* a, float* b,
        float* c0, float* c1, float* c2, float* c3, float* c4, float* c5, float alpha, float beta)
    {
        if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported)
        {
            Micro6x16Wide(kc, a, b, c0, c1, c2, c3, c4, c5, alpha, beta);
            return;
        }
        // C is touched only after the K loop: start its cache misses now (C rows are far apart).
        if (Sse.IsSupported)
        {
            Sse.Prefetch0(c0);
            Sse.Prefetch0(c0 + 15);
            Sse.Prefetch0(c1);
            Sse.Prefetch0(c1 + 15);
            Sse.Prefetch0(c2);
            Sse.Prefetch0(c2 + 15);
            Sse.Prefetch0(c3);
            Sse.Prefetch0(c3 + 15);
            Sse.Prefetch0(c4);
            Sse.Prefetch0(c4 + 15);
            Sse.Prefetch0(c5);
            Sse.Prefetch0(c5 + 15);
        }
        var acc00 = Vector256<float>.Zero;
        var acc01 = Vector256<float>.Zero;
        var acc10 = Vector256<float>.Zero;
        var acc11 = Vector256<float>.Zero;
        var acc20 = Vector256<float>.Zero;
        var acc21 = Vector256<float>.Zero;
        var acc30 = Vector256<float>.Zero;
        var acc31 = Vector256<float>.Zero;
        var acc40 = Vector256<float>.Zero;
        var acc41 = Vector256<float>.Zero;
        var acc50 = Vector256<float>.Zero;
        var acc51 = Vector256<float>.Zero;
        for (int kk = 0; kk < kc; kk++)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            var av = Vector256.Create(a[0]);
            acc00 = Madd(av, b0, acc00);
            acc01 = Madd(av, b1, acc01);
            av = Vector256.Create(a[1]);
            acc10 = Madd(av, b0, acc10);
            acc11 = Madd(av, b1, acc11);
            av = Vector256.Create(a[2]);
            acc20 = Madd(av, b0, acc20);
            acc21 = Madd(av, b1, acc21);
            av = Vector256.Create(a[3]);
            acc30 = Madd(av, b0, acc30);
            acc31 = Madd(av, b1, acc31);
            av = Vector256.Create(a[4]);
            acc40 = Madd(av, b0, acc40);
            acc41 = Madd(av, b1, acc41);
            av = Vector256.Create(a[5]);
            acc50 = Madd(av, b0, acc50);
            acc51 = Madd(av, b1, acc51);
            a += MR;
            b += NR;
        }
        Store(c0, acc00, acc01, alpha, beta);
        Store(c1, acc10, acc11, alpha, beta);
        Store(c2, acc20, acc21, alpha, beta);
        Store(c3, acc30, acc31, alpha, beta);
        Store(c4, acc40, acc41, alpha, beta);
        Store(c5, acc50, acc51, alpha, beta);
    }

    /// <summary>
    /// <see cref="Micro6x16"/> with one Vector512 per C row (AVX-512 hosts): the same packed panels,
    /// half the FMA instructions, and per output element the same fused multiply-adds in the same
    /// order, so the same bits as the Vector256 kernel.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Micro6x16Wide(int kc, float* a, float* b,
        float* c0, float* c1, float* c2, float* c3, float* c4, float* c5, float alpha, float beta)
    {
        Sse.Prefetch0(c0);
        Sse.Prefetch0(c1);
        Sse.Prefetch0(c2);
        Sse.Prefetch0(c3);
        Sse.Prefetch0(c4);
        Sse.Prefetch0(c5);
        var acc0 = Vector512<float>.Zero;
        var acc1 = Vector512<float>.Zero;
        var acc2 = Vector512<float>.Zero;
        var acc3 = Vector512<float>.Zero;
        var acc4 = Vector512<float>.Zero;
        var acc5 = Vector512<float>.Zero;
        for (int kk = 0; kk < kc; kk++)
        {
            var bv = Vector512.Load(b);
            acc0 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[0]), bv, acc0);
            acc1 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[1]), bv, acc1);
            acc2 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[2]), bv, acc2);
            acc3 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[3]), bv, acc3);
            acc4 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[4]), bv, acc4);
            acc5 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[5]), bv, acc5);
            a += MR;
            b += NR;
        }
        StoreWide(c0, acc0, alpha, beta);
        StoreWide(c1, acc1, alpha, beta);
        StoreWide(c2, acc2, alpha, beta);
        StoreWide(c3, acc3, alpha, beta);
        StoreWide(c4, acc4, alpha, beta);
        StoreWide(c5, acc5, alpha, beta);
    }

    /// <summary>
    /// C[6, 32] = alpha * A-panel * (two adjacent B micro-panels) + beta * C on AVX-512 hosts: 12
    /// Vector512 accumulators, per output element the same fused multiply-adds in the same order as
    /// <see cref="Micro6x16"/> (the same bits). Row r's left 16 columns start at
    /// <paramref name="left"/> + rowR, its right 16 at <paramref name="right"/> + rowR.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Micro6x32(int kc, float* a, float* b0, float* b1, float* left, float* right,
        int row0, int row1, int row2, int row3, int row4, int row5, float alpha, float beta)
    {
        Sse.Prefetch0(left + row0);
        Sse.Prefetch0(left + row1);
        Sse.Prefetch0(left + row2);
        Sse.Prefetch0(left + row3);
        Sse.Prefetch0(left + row4);
        Sse.Prefetch0(left + row5);
        Sse.Prefetch0(right + row0);
        Sse.Prefetch0(right + row1);
        Sse.Prefetch0(right + row2);
        Sse.Prefetch0(right + row3);
        Sse.Prefetch0(right + row4);
        Sse.Prefetch0(right + row5);
        var l0 = Vector512<float>.Zero;
        var l1 = Vector512<float>.Zero;
        var l2 = Vector512<float>.Zero;
        var l3 = Vector512<float>.Zero;
        var l4 = Vector512<float>.Zero;
        var l5 = Vector512<float>.Zero;
        var r0 = Vector512<float>.Zero;
        var r1 = Vector512<float>.Zero;
        var r2 = Vector512<float>.Zero;
        var r3 = Vector512<float>.Zero;
        var r4 = Vector512<float>.Zero;
        var r5 = Vector512<float>.Zero;
        for (int kk = 0; kk < kc; kk++)
        {
            var bl = Vector512.Load(b0);
            var br = Vector512.Load(b1);
            var av = Vector512.Create(a[0]);
            l0 = Avx512F.FusedMultiplyAdd(av, bl, l0);
            r0 = Avx512F.FusedMultiplyAdd(av, br, r0);
            av = Vector512.Create(a[1]);
            l1 = Avx512F.FusedMultiplyAdd(av, bl, l1);
            r1 = Avx512F.FusedMultiplyAdd(av, br, r1);
            av = Vector512.Create(a[2]);
            l2 = Avx512F.FusedMultiplyAdd(av, bl, l2);
            r2 = Avx512F.FusedMultiplyAdd(av, br, r2);
            av = Vector512.Create(a[3]);
            l3 = Avx512F.FusedMultiplyAdd(av, bl, l3);
            r3 = Avx512F.FusedMultiplyAdd(av, br, r3);
            av = Vector512.Create(a[4]);
            l4 = Avx512F.FusedMultiplyAdd(av, bl, l4);
            r4 = Avx512F.FusedMultiplyAdd(av, br, r4);
            av = Vector512.Create(a[5]);
            l5 = Avx512F.FusedMultiplyAdd(av, bl, l5);
            r5 = Avx512F.FusedMultiplyAdd(av, br, r5);
            a += MR;
            b0 += NR;
            b1 += NR;
        }
        StoreWide(left + row0, l0, alpha, beta);
        StoreWide(right + row0, r0, alpha, beta);
        StoreWide(left + row1, l1, alpha, beta);
        StoreWide(right + row1, r1, alpha, beta);
        StoreWide(left + row2, l2, alpha, beta);
        StoreWide(right + row2, r2, alpha, beta);
        StoreWide(left + row3, l3, alpha, beta);
        StoreWide(right + row3, r3, alpha, beta);
        StoreWide(left + row4, l4, alpha, beta);
        StoreWide(right + row4, r4, alpha, beta);
        StoreWide(left + row5, l5, alpha, beta);
        StoreWide(right + row5, r5, alpha, beta);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreWide(float* c, Vector512<float> acc, float alpha, float beta)
    {
        acc *= Vector512.Create(alpha);
        if (beta != 0f)
        {
            acc = Avx512F.FusedMultiplyAdd(Vector512.Create(beta), Vector512.Load(c), acc);
        }
        Vector512.Store(acc, c);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, Vector256<float> lo, Vector256<float> hi, float alpha, float beta)
    {
        var va = Vector256.Create(alpha);
        lo *= va;
        hi *= va;
        if (beta != 0f)
        {
            var vb = Vector256.Create(beta);
            lo = Madd(vb, Vector256.Load(c), lo);
            hi = Madd(vb, Vector256.Load(c + 8), hi);
        }
        Vector256.Store(lo, c);
        Vector256.Store(hi, c + 8);
    }

    /// <summary>Per-thread buffers, grown on demand and kept for the thread's lifetime.</summary>
    private sealed class Scratch
    {
        public float[] PackA { get; } = GC.AllocateUninitializedArray<float>(McMax * KcMax, pinned: true);

        public float[] PackB { get; } = GC.AllocateUninitializedArray<float>(KcMax * NcMax, pinned: true);

        public int[] ARowOff { get; private set; } = [];
        public int[] ARowH { get; private set; } = [];
        public int[] ARowW { get; private set; } = [];
        public int[] CRowOff { get; private set; } = [];
        public int[] AColOff { get; private set; } = [];
        public int[] AColH { get; private set; } = [];
        public int[] AColW { get; private set; } = [];
        public int[] BRowOff { get; private set; } = [];
        public int[] BRowH { get; private set; } = [];
        public int[] BRowW { get; private set; } = [];
        public int[] BColOff { get; private set; } = [];
        public int[] BColH { get; private set; } = [];
        public int[] BColW { get; private set; } = [];
        public int[] CColOff { get; private set; } = [];
        public byte[] BPanelKind { get; private set; } = [];
        public byte[] CPanelStride { get; private set; } = [];

        public void Prepare(int m, int n, int k)
        {
            if (ARowOff.Length < m)
            {
                ARowOff = new int[m];
                ARowH = new int[m];
                ARowW = new int[m];
                CRowOff = new int[m];
            }
            if (AColOff.Length < k)
            {
                AColOff = new int[k];
                AColH = new int[k];
                AColW = new int[k];
                BRowOff = new int[k];
                BRowH = new int[k];
                BRowW = new int[k];
            }
            if (BColOff.Length < n)
            {
                BColOff = new int[n];
                BColH = new int[n];
                BColW = new int[n];
                CColOff = new int[n];
                BPanelKind = new byte[(n + NR - 1) / NR];
                CPanelStride = new byte[(n + NR - 1) / NR];
            }
        }
    }
}
