using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ILGPU;
using ILGPU.IR.Intrinsics;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

// Packing: the dense operand into the packed layout of a gather (Pack), and dy transposed
// to [batch, outH, outW, Cout] for backward weight (PackTransposed).
internal static unsafe partial class SparseConvCpu
{
    // ------------------------------------------------------------------ packing

    /// <summary>Thread <paramref name="thread"/> of <paramref name="threads"/> packs its share of the (channel, phase) planes of the packed layout.</summary>
    [IntrinsicImplementation]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Pack(int thread, int threads, ArrayView<float> source, ArrayView<float> packed, SparseConvPlan p)
    {
        float* dst = (float*)packed.LoadEffectiveAddressAsPtr();
        int units = p.SourceChannels * p.Phases * p.Phases;
        int u0 = (int)((long)units * thread / threads);
        int u1 = (int)((long)units * (thread + 1) / threads);
        PackPlanes((float*)source.LoadEffectiveAddressAsPtr(), dst, p, u0, u1);
        if (thread == threads - 1)
        {
            Clear(dst + p.PackedLength, SparseConvPlan.Slack);
        }
    }

    /// <summary>Packs the (channel, row phase, column phase) planes [u0, u1) of the packed layout.</summary>
    private static void PackPlanes(float* src, float* dst, SparseConvPlan p, int u0, int u1)
    {
        int phases = p.Phases;
        int height = p.PackedHeight;
        int width = p.PackedWidth;
        int bi = p.BatchInner;
        int rowLength = width * bi;
        int srcH = p.SourceHeight;
        int srcW = p.SourceWidth;
        long plane = (long)srcH * srcW;
        long batchStride = plane * p.SourceChannels;
        for (int unit = u0; unit < u1; unit++)
        {
            // One (channel, row phase, column phase) block: BatchOuter x PackedHeight rows.
            int c = unit / (phases * phases);
            int rp = unit / phases % phases;
            int shift = unit % phases - p.PadLeft;
            float* d = dst + (long)unit * p.ChannelStride;
            for (int bo = 0; bo < p.BatchOuter; bo++)
            {
                for (int u = 0; u < height; u++, d += rowLength)
                {
                    int h = u * phases + rp - p.PadTop;
                    if ((uint)h >= (uint)srcH)
                    {
                        Clear(d, rowLength);
                        continue;
                    }
                    float* row = src + c * plane + (long)h * srcW;
                    if (bi == 1)
                    {
                        PackRow(row + bo * batchStride, d, width, phases, shift, srcW);
                    }
                    else
                    {
                        PackRowAcrossBatches(row, d, width, phases, shift, srcW, batchStride, bo * bi, Math.Min(bi, p.Batch - bo * bi));
                    }
                }
            }
        }
    }

    /// <summary>d[v] = row[v * phases + shift] (zero outside [0, srcW)) for v &lt; width.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackRow(float* row, float* d, int width, int phases, int shift, int srcW)
    {
        if (width == 1)
        {
            *d = (uint)shift < (uint)srcW ? row[shift] : 0f;
            return;
        }
        if (phases == 1)
        {
            int vStart = Math.Clamp(-shift, 0, width);
            int vEnd = Math.Clamp(srcW - shift, vStart, width);
            Clear(d, vStart);
            Copy(row + vStart + shift, d + vStart, vEnd - vStart);
            Clear(d + vEnd, width - vEnd);
            return;
        }
        int v = 0;
        if (phases == 2 && Avx2.IsSupported)
        {
            // Interior runs of 8: the even lanes of 16 consecutive floats (shuffle, then lane order).
            for (; v < width && v * 2 + shift < 0; v++)
            {
                d[v] = 0f;
            }
            for (; v + 8 <= width && v * 2 + shift + 16 <= srcW; v += 8)
            {
                float* f = row + v * 2 + shift;
                var evens = Avx.Shuffle(Vector256.Load(f), Vector256.Load(f + 8), 0b10_00_10_00);
                Vector256.Store(Avx2.Permute4x64(evens.AsDouble(), 0b11_01_10_00).AsSingle(), d + v);
            }
        }
        for (; v < width; v++)
        {
            int w = v * phases + shift;
            d[v] = (uint)w < (uint)srcW ? row[w] : 0f;
        }
    }

    /// <summary>
    /// d[v * 8 + lane] = row[(b0 + lane) * batchStride + v * phases + shift] for lanes &lt; count (zero
    /// elsewhere and outside [0, srcW)); full interior runs of 8 columns go through an 8x8 transpose, a
    /// last interior run of 4 (4x4 images) through a 4x8 one.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackRowAcrossBatches(float* row, float* d, int width, int phases, int shift, int srcW,
        long batchStride, int b0, int count)
    {
        float* first = row + b0 * batchStride;
        int v = 0;
        if (Avx.IsSupported && phases == 1 && count == 8)
        {
            int vStart = Math.Clamp(-shift, 0, width);
            int vEnd = Math.Clamp(srcW - shift, vStart, width);
            for (; v < vStart; v++)
            {
                Vector256.Store(Vector256<float>.Zero, d + v * 8);
            }
            for (; v + 8 <= vEnd; v += 8)
            {
                float* f = first + v + shift;
                var r0 = Vector256.Load(f);
                var r1 = Vector256.Load(f + batchStride);
                var r2 = Vector256.Load(f + 2 * batchStride);
                var r3 = Vector256.Load(f + 3 * batchStride);
                var r4 = Vector256.Load(f + 4 * batchStride);
                var r5 = Vector256.Load(f + 5 * batchStride);
                var r6 = Vector256.Load(f + 6 * batchStride);
                var r7 = Vector256.Load(f + 7 * batchStride);
                Transpose8x8(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
                float* t = d + v * 8;
                Vector256.Store(r0, t);
                Vector256.Store(r1, t + 8);
                Vector256.Store(r2, t + 16);
                Vector256.Store(r3, t + 24);
                Vector256.Store(r4, t + 32);
                Vector256.Store(r5, t + 40);
                Vector256.Store(r6, t + 48);
                Vector256.Store(r7, t + 56);
            }
            if (v + 4 <= vEnd)
            {
                // Four interior columns left (4x4 images): each image's four columns as one half of
                // a vector (image i low, i + 4 high), then a 4x4 transpose within each half.
                float* f = first + v + shift;
                var r0 = Vector256.Create(Vector128.Load(f), Vector128.Load(f + 4 * batchStride));
                var r1 = Vector256.Create(Vector128.Load(f + batchStride), Vector128.Load(f + 5 * batchStride));
                var r2 = Vector256.Create(Vector128.Load(f + 2 * batchStride), Vector128.Load(f + 6 * batchStride));
                var r3 = Vector256.Create(Vector128.Load(f + 3 * batchStride), Vector128.Load(f + 7 * batchStride));
                var t0 = Avx.UnpackLow(r0, r1);
                var t1 = Avx.UnpackHigh(r0, r1);
                var t2 = Avx.UnpackLow(r2, r3);
                var t3 = Avx.UnpackHigh(r2, r3);
                float* t = d + v * 8;
                Vector256.Store(Avx.Shuffle(t0, t2, 0x44), t);
                Vector256.Store(Avx.Shuffle(t0, t2, 0xEE), t + 8);
                Vector256.Store(Avx.Shuffle(t1, t3, 0x44), t + 16);
                Vector256.Store(Avx.Shuffle(t1, t3, 0xEE), t + 24);
                v += 4;
            }
        }
        for (; v < width; v++)
        {
            int w = v * phases + shift;
            float* t = d + v * 8;
            if ((uint)w >= (uint)srcW)
            {
                Vector256.Store(Vector256<float>.Zero, t);
                continue;
            }
            float* f = first + w;
            int lane = 0;
            for (; lane < count; lane++)
            {
                t[lane] = f[lane * batchStride];
            }
            for (; lane < 8; lane++)
            {
                t[lane] = 0f;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Clear(float* d, int n)
    {
        int i = 0;
        for (; i + 8 <= n; i += 8)
        {
            Vector256.Store(Vector256<float>.Zero, d + i);
        }
        for (; i < n; i++)
        {
            d[i] = 0f;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Copy(float* from, float* to, int n)
    {
        int i = 0;
        for (; i + 8 <= n; i += 8)
        {
            Vector256.Store(Vector256.Load(from + i), to + i);
        }
        for (; i < n; i++)
        {
            to[i] = from[i];
        }
    }

    /// <summary>Thread <paramref name="thread"/> transposes its share of dy rows (b, oh, ow) into [.., RowPitch].</summary>
    [IntrinsicImplementation]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackTransposed(int thread, int threads, ArrayView<float> source, ArrayView<float> packed, SparseConvPlan p)
    {
        float* dst = (float*)packed.LoadEffectiveAddressAsPtr();
        int units = p.Batch * TransposeBlocks(p);
        int u0 = (int)((long)units * thread / threads);
        int u1 = (int)((long)units * (thread + 1) / threads);
        Transpose((float*)source.LoadEffectiveAddressAsPtr(), dst, p, u0, u1);
        if (thread == threads - 1)
        {
            new Span<float>(dst + p.PackedLength, SparseConvPlan.Slack).Clear();
        }
    }

    /// <summary>Blocks of 8 positions per image of <see cref="Transpose"/>.</summary>
    private static int TransposeBlocks(SparseConvPlan p) => (p.OutHeight * p.OutWidth + 7) / 8;

    /// <summary>Transposes blocks [u0, u1) (8 positions of one image each) of dy into [.., RowPitch].</summary>
    private static void Transpose(float* src, float* dst, SparseConvPlan p, int u0, int u1)
    {
        int plane = p.OutHeight * p.OutWidth;
        int channels = p.OutChannels;
        int pitch = p.RowPitch;
        int blocks = TransposeBlocks(p);
        for (int u = u0; u < u1; u++)
        {
            int b = u / blocks;
            int s0 = (u - b * blocks) * 8;
            int count = Math.Min(8, plane - s0);
            float* from = src + (long)b * channels * plane + s0;
            float* to = dst + ((long)b * plane + s0) * pitch;
            int c0 = 0;
            if (Avx.IsSupported && count == 8)
            {
                for (; c0 + 8 <= channels; c0 += 8)
                {
                    float* f = from + (long)c0 * plane;
                    var r0 = Vector256.Load(f);
                    var r1 = Vector256.Load(f + plane);
                    var r2 = Vector256.Load(f + 2L * plane);
                    var r3 = Vector256.Load(f + 3L * plane);
                    var r4 = Vector256.Load(f + 4L * plane);
                    var r5 = Vector256.Load(f + 5L * plane);
                    var r6 = Vector256.Load(f + 6L * plane);
                    var r7 = Vector256.Load(f + 7L * plane);
                    Transpose8x8(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
                    Vector256.Store(r0, to + c0);
                    Vector256.Store(r1, to + pitch + c0);
                    Vector256.Store(r2, to + 2L * pitch + c0);
                    Vector256.Store(r3, to + 3L * pitch + c0);
                    Vector256.Store(r4, to + 4L * pitch + c0);
                    Vector256.Store(r5, to + 5L * pitch + c0);
                    Vector256.Store(r6, to + 6L * pitch + c0);
                    Vector256.Store(r7, to + 7L * pitch + c0);
                }
            }
            for (int s = 0; s < count; s++)
            {
                float* t = to + (long)s * pitch;
                for (int c = c0; c < channels; c++)
                {
                    t[c] = from[(long)c * plane + s];
                }
                for (int c = channels; c < pitch; c++)
                {
                    t[c] = 0f;
                }
            }
        }
    }

}
