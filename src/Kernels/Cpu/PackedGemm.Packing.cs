using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ZeroFL.Kernels;

// Packing: the index tables of a block, the kinds of B panels, and the packing of A and B
// (im2col straight from the image) into micro-panels.
internal static unsafe partial class PackedGemm
{
    /// <summary>Offsets (and image coordinates) of <paramref name="count"/> axis elements from <paramref name="start"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tabulate(AxisMap map, int start, int count, int* offsets, int* hs, int* ws)
    {
        for (int e = 0; e < count; e++)
        {
            var point = map.Decode(start + e);
            offsets[e] = point.Offset;
            if (hs != null)
            {
                hs[e] = point.H;
                ws[e] = point.W;
            }
        }
    }

    /// <summary>B panel kind: general columns (gathered).</summary>
    private const byte PanelGather = 0;

    /// <summary>B panel kind: 16 consecutive addresses (and, if checked, along one image row).</summary>
    private const byte PanelRun = 1;

    /// <summary>B panel kind: the last panel, narrower than 16 columns.</summary>
    private const byte PanelRagged = 2;

    /// <summary>
    /// Sorts the thread's B column panels into the kinds above; records for each C panel whose 16
    /// columns are 1 or 2 floats apart that stride (0 otherwise).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ClassifyPanels(int nt, int* bOff, int* bH, int* bW, int* cOff, bool bChecked, byte* bKind, byte* cStride)
    {
        for (int j = 0, panel = 0; j < nt; j += NR, panel++)
        {
            if (j + NR > nt)
            {
                bKind[panel] = PanelRagged;
                cStride[panel] = 0;
                continue;
            }
            bool bRun = true;
            bool cRun1 = true;
            bool cRun2 = true;
            for (int t = 1; t < NR; t++)
            {
                bRun &= bOff[j + t] == bOff[j] + t && (!bChecked || (bH[j + t] == bH[j] && bW[j + t] == bW[j] + t));
                cRun1 &= cOff[j + t] == cOff[j] + t;
                cRun2 &= cOff[j + t] == cOff[j] + 2 * t;
            }
            bKind[panel] = bRun ? PanelRun : PanelGather;
            cStride[panel] = (byte)(cRun1 ? 1 : cRun2 ? 2 : 0);
        }
    }

    /// <summary>Packs B[kc, nc] into 16-wide column micro-panels, zero-padding the last one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackB(GatherMatrix g, float* src, float* dst, int kc, int nc,
        int* rowOff, int* rowH, int* rowW, int* colOff, int* colH, int* colW, byte* panelKind)
    {
        int height = g.Height;
        int width = g.Width;
        bool isChecked = g.Checked;
        int panels = (nc + NR - 1) / NR;
        bool simd = Avx2.IsSupported;
        var lanes = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
        var vHeight = Vector256.Create((uint)height);
        var vWidth = Vector256.Create((uint)width);

        // Full panels, row by row: each source row is read in order across the block (prefetcher-
        // and TLB-friendly) and its 16-float pieces go to their micro-panels.
        for (int kk = 0; kk < kc; kk++)
        {
            float* row = src + rowOff[kk];
            int rh = rowH[kk];
            int rw = rowW[kk];
            for (int panel = 0; panel < panels; panel++)
            {
                byte kind = panelKind[panel];
                if (kind == PanelRagged)
                {
                    continue;
                }
                int j = panel * NR;
                float* d = dst + (long)j * kc + kk * NR;
                if (kind == PanelRun)
                {
                    float* s = row + colOff[j];
                    if (!isChecked)
                    {
                        Vector256.Store(Vector256.Load(s), d);
                        Vector256.Store(Vector256.Load(s + 8), d + 8);
                        continue;
                    }
                    int h = rh + colH[j];
                    int wl = rw + colW[j];
                    if ((uint)h >= (uint)height || wl >= width || wl + NR <= 0)
                    {
                        Vector256.Store(Vector256<float>.Zero, d);
                        Vector256.Store(Vector256<float>.Zero, d + 8);
                    }
                    else if (wl >= 0 && wl + NR <= width)
                    {
                        Vector256.Store(Vector256.Load(s), d);
                        Vector256.Store(Vector256.Load(s + 8), d + 8);
                    }
                    else if (simd)
                    {
                        // Image border: masked loads never touch the lanes outside the row.
                        var x0 = Vector256.Create(wl) + lanes;
                        var m0 = Vector256.LessThan(x0.AsUInt32(), vWidth).AsSingle();
                        var m1 = Vector256.LessThan((x0 + Vector256.Create(8)).AsUInt32(), vWidth).AsSingle();
                        Vector256.Store(Avx.MaskLoad(s, m0), d);
                        Vector256.Store(Avx.MaskLoad(s + 8, m1), d + 8);
                    }
                    else
                    {
                        for (int t = 0; t < NR; t++)
                        {
                            d[t] = (uint)(wl + t) < (uint)width ? s[t] : 0f;
                        }
                    }
                    continue;
                }
                if (!simd)
                {
                    GatherScalar(g, row, d, NR, rh, rw, colOff + j, colH + j, colW + j);
                    continue;
                }
                // General columns (transposed B, strided or wrapping im2col): AVX2 gathers,
                // masked by the padding check.
                var o0 = Vector256.Load(colOff + j);
                var o1 = Vector256.Load(colOff + j + 8);
                if (!isChecked)
                {
                    Vector256.Store(Avx2.GatherVector256(row, o0, 4), d);
                    Vector256.Store(Avx2.GatherVector256(row, o1, 4), d + 8);
                    continue;
                }
                var vh = Vector256.Create(rh);
                var vw = Vector256.Create(rw);
                var g0 = Vector256.LessThan((Vector256.Load(colH + j) + vh).AsUInt32(), vHeight)
                    & Vector256.LessThan((Vector256.Load(colW + j) + vw).AsUInt32(), vWidth);
                var g1 = Vector256.LessThan((Vector256.Load(colH + j + 8) + vh).AsUInt32(), vHeight)
                    & Vector256.LessThan((Vector256.Load(colW + j + 8) + vw).AsUInt32(), vWidth);
                Vector256.Store(Avx2.GatherMaskVector256(Vector256<float>.Zero, row, o0, g0.AsSingle(), 4), d);
                Vector256.Store(Avx2.GatherMaskVector256(Vector256<float>.Zero, row, o1, g1.AsSingle(), 4), d + 8);
            }
        }

        // The ragged last panel, zero-padded to 16 columns.
        if (panelKind[panels - 1] == PanelRagged)
        {
            int j = (panels - 1) * NR;
            float* d = dst + (long)j * kc;
            for (int kk = 0; kk < kc; kk++, d += NR)
            {
                GatherScalar(g, src + rowOff[kk], d, nc - j, rowH[kk], rowW[kk], colOff + j, colH + j, colW + j);
            }
        }
    }

    /// <summary>d[t] = element t of one packed B row (t &lt; count, zero up to 16), one by one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void GatherScalar(GatherMatrix g, float* row, float* d, int count, int rh, int rw, int* co, int* ch, int* cw)
    {
        int t = 0;
        for (; t < count; t++)
        {
            bool inside = !g.Checked
                || ((uint)(rh + ch[t]) < (uint)g.Height && (uint)(rw + cw[t]) < (uint)g.Width);
            d[t] = inside ? row[co[t]] : 0f;
        }
        for (; t < NR; t++)
        {
            d[t] = 0f;
        }
    }

    /// <summary>Packs A[mc, kc] into 6-row micro-panels, zero-padding the last one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackA(GatherMatrix g, float* src, float* dst, int kc, int mc,
        int* rowOff, int* rowH, int* rowW, int* colOff, int* colH, int* colW)
    {
        int height = g.Height;
        int width = g.Width;
        bool isChecked = g.Checked;
        for (int i = 0; i < mc; i += MR)
        {
            float* d = dst + (long)i * kc;
            int rows = Math.Min(MR, mc - i);
            if (rows == MR && !isChecked)
            {
                float* s0 = src + rowOff[i];
                float* s1 = src + rowOff[i + 1];
                float* s2 = src + rowOff[i + 2];
                float* s3 = src + rowOff[i + 3];
                float* s4 = src + rowOff[i + 4];
                float* s5 = src + rowOff[i + 5];
                for (int kk = 0; kk < kc; kk++, d += MR)
                {
                    int o = colOff[kk];
                    d[0] = s0[o];
                    d[1] = s1[o];
                    d[2] = s2[o];
                    d[3] = s3[o];
                    d[4] = s4[o];
                    d[5] = s5[o];
                }
                continue;
            }
            for (int kk = 0; kk < kc; kk++, d += MR)
            {
                for (int r = 0; r < MR; r++)
                {
                    float value = 0f;
                    if (r < rows)
                    {
                        if (!isChecked)
                        {
                            value = src[rowOff[i + r] + colOff[kk]];
                        }
                        else
                        {
                            int h = rowH[i + r] + colH[kk];
                            int x = rowW[i + r] + colW[kk];
                            if ((uint)h < (uint)height && (uint)x < (uint)width)
                            {
                                value = src[rowOff[i + r] + colOff[kk]];
                            }
                        }
                    }
                    d[r] = value;
                }
            }
        }
    }
}
