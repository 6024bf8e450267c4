using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ILGPU;
using ILGPU.IR.Intrinsics;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// The CPU-accelerator sparse convolutions: SIMD helpers run as plain .NET code by each launched
/// thread (one per core); GPU backends compile the <c>...Scalar</c> fallbacks instead, which are the
/// direct algorithms of <see cref="SparseConvDirect"/>.
/// <para>
/// Forward and backward input are one "gather" engine. The dense operand (x, or dy) is first packed
/// (<see cref="Pack"/>, its own launch) so that every kept weight is a constant shift in packed
/// memory (see <see cref="SparseConvPlan"/>). Each output row (an output channel, or an input
/// channel for backward input) holds a list of (shift, weight) pairs, one per kept weight (per
/// output phase for strided backward input); each thread owns a range of rows balanced by kept
/// weights. For each pair of 32-position runs (<see cref="SparseConvStrips"/>) and each owned row,
/// <see cref="Dot8"/> keeps 8 Vector256 accumulators in registers and, per kept weight, does 8 loads
/// and 8 FMAs; then the 64 results are stored (8-wide where the lanes are consecutive outputs; for
/// stride 2, the two column phases interleaved into 16 consecutive floats). With more source
/// channels than fit L1 (a strided forward's window takes a channel's phase planes together), a
/// pair of runs is blocked: rows in blocks of 64 / phases (their sums kept in a 16 KB tile) and
/// source channels in windows whose operand slice (~32 KB) every list of the block reads before the
/// next window (<see cref="RunPairBlocked"/>; the same sums in the same order).
/// Runs along image rows go image-major where one image's packed operand fits L2
/// (<see cref="SparseConvPlan.Images"/>): threads take units of the (image, pair of runs) work
/// from a shared counter, for every row, and pack each unit's image into a thread-local buffer
/// (<see cref="GatherByImage"/>), so the scattered taps read L2, not a batch-sized packed copy in
/// memory, and a thread slowed down by another process takes fewer units.
/// Cost: kept weights x outputs / 8 FMAs, plus one pass over the operand to pack it.
/// </para>
/// <para>
/// Backward weight transposes dy to [batch, outH, outW, Cout] (<see cref="PackTransposed"/>), then
/// each thread owns a range of input channels balanced by kept activations (found by binary search
/// in the increasing indices), processed in blocks of channels (their dw columns accumulate in L2)
/// and blocks of images (their dy rows stay in L2). Interior activations of a channel are bucketed
/// by position class so that one list serves every tap with a constant shift; border ones get
/// per-tap lists. <see cref="Dot8"/> sums each list over 64 output channels at a time; the block is
/// then added into dw transposed. Where one image's transposed dy and a whole dw fit L2 together,
/// backward weight goes image-major instead (<see cref="BackwardWeightByImage"/>): threads own
/// images, transpose each into a thread-local buffer and accumulate every channel into a private dw
/// copy, which <see cref="ReduceCopies"/> sums. Cost: kept activations x taps x Cout / 8 FMAs.
/// </para>
/// <para>
/// Linear layers (1x1 kernel on 1x1 images) differ where the batch is the only spatial extent:
/// backward input scatters w * dy[:, co] (held in registers) into per-thread private dx copies that
/// <see cref="ReduceCopies"/> sums; backward weight runs output-channel major so that dw (dense,
/// usually far larger than the kept activations) is streamed once.
/// </para>
/// Device index arrays are read clamp-protected: row ranges clamped to the capacity, columns and
/// activation indices outside their range skipped. Per-thread tables (runs, column shifts, position
/// classes) are cached per plan in thread-local pinned arrays; per-call lists grow on demand.
/// </summary>
internal static unsafe class SparseConvCpu
{
    /// <summary>Cost of an output row beyond its kept weights, in FMAs (its stores), for balancing threads.</summary>
    private const int RowCost = 8;

    /// <summary>
    /// Rows per block of the channel-blocked gather (their sums, 256 bytes each, stay in L1 or
    /// next to it). 64 measured 1-3% faster than 32 on the ResNet-18 layers, 16 slower, 128 the same.
    /// </summary>
    private const int BlockRows = 64;

    /// <summary>Backward weight: floats of the per-thread dw column block (kept in L2).</summary>
    private const int AccumulatorFloats = 64 * 1024;

    /// <summary>Backward weight: floats of transposed dy per block of images (kept in L2).</summary>
    private const int ImageBlockFloats = 64 * 1024;

    [ThreadStatic]
    private static Workspace? workspace;

    // ------------------------------------------------------------------ packing

    /// <summary>Thread <paramref name="thread"/> of <paramref name="threads"/> packs its share of the (channel, phase) planes of the packed layout.</summary>
    [SimdHelper(nameof(PackScalar))]
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

    /// <summary>GPU fallback of <see cref="Pack"/>: the same layout, one element per iteration.</summary>
    public static void PackScalar(int thread, int threads, ArrayView<float> source, ArrayView<float> packed, SparseConvPlan p)
        => SparseConvDirect.Pack(thread, threads, source, packed, p);

    /// <summary>Thread <paramref name="thread"/> transposes its share of dy rows (b, oh, ow) into [.., RowPitch].</summary>
    [SimdHelper(nameof(PackTransposedScalar))]
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

    /// <summary>GPU fallback of <see cref="PackTransposed"/>.</summary>
    public static void PackTransposedScalar(int thread, int threads, ArrayView<float> source, ArrayView<float> packed, SparseConvPlan p)
        => SparseConvDirect.PackTransposed(thread, threads, source, packed, p);

    // ------------------------------------------------------------------ forward

    /// <summary>y = conv(x, W) for the output channels this thread owns, reading the packed x (see the class remarks).</summary>
    [SimdHelper(nameof(ForwardScalar))]
    [IntrinsicImplementation]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Forward(int thread, int threads, ArrayView<float> x, ArrayView<float> packed,
        ArrayView<int> rowPointers, ArrayView<int> columns, ArrayView<float> values, ArrayView<float> y, SparseConvPlan p)
    {
        var ws = workspace ??= new Workspace();
        var tables = ws.Gather(p);
        int capacity = (int)Math.Min(columns.Length, values.Length);
        int* rowPtr = (int*)rowPointers.LoadEffectiveAddressAsPtr();
        int* cols = (int*)columns.LoadEffectiveAddressAsPtr();
        float* vals = (float*)values.LoadEffectiveAddressAsPtr();
        int rows = p.OutChannels;
        int k = p.WeightColumns;

        var starts = ws.Ints(ref ws.RowStart, rows + 1);
        long total = 0;
        for (int r = 0; r < rows; r++)
        {
            int s = Clamp(rowPtr[r], 0, capacity);
            int e = Clamp(rowPtr[r + 1], s, capacity);
            total += e - s + RowCost;
        }
        // Image-major: every thread computes every row over its share of the images.
        bool byImage = p.Images > 0;
        int r0 = byImage ? 0 : RowBoundary(rowPtr, rows, capacity, total, thread, threads);
        int r1 = byImage ? rows : RowBoundary(rowPtr, rows, capacity, total, thread + 1, threads);
        int count = 0;
        for (int r = r0; r < r1; r++)
        {
            int s = Clamp(rowPtr[r], 0, capacity);
            count += Clamp(rowPtr[r + 1], s, capacity) - s;
        }
        var offsets = ws.Ints(ref ws.ListOffset, count);
        var weights = ws.Floats(ref ws.ListWeight, count);
        int* shift = Ptr(tables.ColumnShift);
        int n = 0;
        for (int r = r0; r < r1; r++)
        {
            starts[r - r0] = n;
            int s = Clamp(rowPtr[r], 0, capacity);
            int e = Clamp(rowPtr[r + 1], s, capacity);
            for (int i = s; i < e; i++)
            {
                int col = cols[i];
                if ((uint)col < (uint)k)
                {
                    offsets[n] = shift[col];
                    weights[n] = vals[i];
                    n++;
                }
            }
        }
        starts[r1 - r0] = n;
        var lists = new GatherLists(r0, r1, starts, offsets, weights, WindowStarts(tables, ws, (r1 - r0) * tables.PhaseCount, starts, offsets));
        if (byImage)
        {
            GatherByImage(tables, ws, threads, (int*)packed.LoadEffectiveAddressAsPtr(), (float*)x.LoadEffectiveAddressAsPtr(),
                (float*)y.LoadEffectiveAddressAsPtr(), lists, p, accumulate: false);
            return;
        }
        RunGather(tables, ws, (float*)packed.LoadEffectiveAddressAsPtr(), (float*)y.LoadEffectiveAddressAsPtr(),
            lists, p.OutputPlane, accumulate: false, 0, tables.StripStart.Length);
    }

    /// <summary>GPU fallback of <see cref="Forward"/>: one output element per iteration, reading x directly.</summary>
    public static void ForwardScalar(int thread, int threads, ArrayView<float> x, ArrayView<float> packed,
        ArrayView<int> rowPointers, ArrayView<int> columns, ArrayView<float> values, ArrayView<float> y, SparseConvPlan p)
        => SparseConvDirect.Forward(thread, threads, x, packed, rowPointers, columns, values, y, p);

    // ------------------------------------------------------------------ backward input

    /// <summary>dx += dL/dx (dx = dL/dx when the plan says <see cref="SparseConvPlan.Overwrite"/>) for the input channels this thread owns, reading the packed dy.</summary>
    [SimdHelper(nameof(BackwardInputScalar))]
    [IntrinsicImplementation]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void BackwardInput(int thread, int threads, ArrayView<float> dy, ArrayView<float> packed,
        ArrayView<int> rowPointers, ArrayView<int> columns, ArrayView<float> values, ArrayView<float> dx, SparseConvPlan p)
    {
        if (p.PrivateCopies > 0)
        {
            BackwardInputLinear(thread, threads, packed, rowPointers, columns, values, p);
            return;
        }
        var ws = workspace ??= new Workspace();
        var tables = ws.Gather(p);
        int capacity = (int)Math.Min(columns.Length, values.Length);
        int* rowPtr = (int*)rowPointers.LoadEffectiveAddressAsPtr();
        int* cols = (int*)columns.LoadEffectiveAddressAsPtr();
        float* vals = (float*)values.LoadEffectiveAddressAsPtr();
        int outChannels = p.OutChannels;
        int inChannels = p.InChannels;
        int k = p.WeightColumns;
        int area = p.KernelArea;
        int phases = tables.PhaseCount;
        int* colShift = Ptr(tables.ColumnShift);

        // Pass 1: kept weights per column, then per input channel; choose this thread's channels.
        var colCount = ws.Ints(ref ws.ColumnCount, k);
        bool increasing = CountColumns(rowPtr, cols, outChannels, capacity, k, colCount);
        long total = 0;
        for (int col = 0; col < k; col++)
        {
            total += colCount[col];
        }
        total += (long)inChannels * RowCost;
        bool byImage = p.Images > 0;
        int c0 = byImage ? 0 : ChannelBoundary(colCount, area, inChannels, total, thread, threads);
        int c1 = byImage ? inChannels : ChannelBoundary(colCount, area, inChannels, total, thread + 1, threads);

        // Buckets (channel, phase) of this thread, counting sort of its kept weights.
        int buckets = (c1 - c0) * phases;
        var starts = ws.Ints(ref ws.RowStart, buckets + 1);
        var cursor = ws.Ints(ref ws.Cursor, buckets + 1);
        new Span<int>(starts, buckets + 1).Clear();
        int* colBucket = Ptr(tables.ColumnBucket);
        int firstBucket = c0 * phases;
        for (int col = c0 * area; col < c1 * area; col++)
        {
            if (colBucket[col] >= 0)
            {
                starts[colBucket[col] - firstBucket + 1] += colCount[col];
            }
        }
        for (int b = 0; b < buckets; b++)
        {
            starts[b + 1] += starts[b];
        }
        int count = starts[buckets];
        new Span<int>(starts, buckets + 1).CopyTo(new Span<int>(cursor, buckets + 1));
        var offsets = ws.Ints(ref ws.ListOffset, count);
        var weights = ws.Floats(ref ws.ListWeight, count);
        FillBuckets(rowPtr, cols, vals, outChannels, capacity, c0 * area, (c1 - c0) * area, increasing, colBucket, firstBucket,
            colShift, p.ChannelStride, cursor, offsets, weights);
        var lists = new GatherLists(c0, c1, starts, offsets, weights, WindowStarts(tables, ws, buckets, starts, offsets));
        if (byImage)
        {
            GatherByImage(tables, ws, threads, (int*)packed.LoadEffectiveAddressAsPtr(), (float*)dy.LoadEffectiveAddressAsPtr(),
                (float*)dx.LoadEffectiveAddressAsPtr(), lists, p, accumulate: p.Overwrite == 0);
            return;
        }
        RunGather(tables, ws, (float*)packed.LoadEffectiveAddressAsPtr(), (float*)dx.LoadEffectiveAddressAsPtr(),
            lists, p.OutputPlane, accumulate: p.Overwrite == 0, 0, tables.StripStart.Length);
    }

    /// <summary>
    /// The image-major gather (<see cref="SparseConvPlan.Images"/>): threads take work units (an
    /// image, or a share of its pairs of runs when there are few images) from the shared counter
    /// <paramref name="next"/> (zeroed by the host before the launch) until none is left, so a
    /// thread that runs slower (another process on its core, a costlier image) takes fewer units
    /// instead of keeping the others waiting. A unit's image is packed into a thread-local buffer
    /// (one image's operand, in L2 while its rows are gathered; kept when the thread's next unit is
    /// of the same image) and its pairs of runs gathered for every row of <paramref name="lists"/>.
    /// Each output is summed by one thread in a fixed order whoever takes its unit, so the results
    /// do not depend on the schedule.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void GatherByImage(GatherTables tables, Workspace ws, int threads, int* next, float* source, float* output,
        GatherLists lists, SparseConvPlan p, bool accumulate)
    {
        int runs = tables.StripStart.Length;
        int pairs = (runs + 1) / 2;
        int chunks = ChunksPerImage(p.Images, pairs, threads);
        int units = p.Images * chunks;
        float* local = ws.ImageOperand(p);
        int planes = p.SourceChannels * p.Phases * p.Phases;
        long sourceImage = (long)p.SourceChannels * p.SourceHeight * p.SourceWidth;
        long outputImage = (long)p.OutputRows * p.OutputPlane;
        int packedImage = -1;
        for (int unit = Interlocked.Increment(ref *next) - 1; unit < units; unit = Interlocked.Increment(ref *next) - 1)
        {
            int b = unit / chunks;
            int chunk = unit - b * chunks;
            if (b != packedImage)
            {
                PackPlanes(source + b * sourceImage, local, p, 0, planes);
                packedImage = b;
            }
            int firstRun = 2 * (int)((long)pairs * chunk / chunks);
            int endRun = Math.Min(runs, 2 * (int)((long)pairs * (chunk + 1) / chunks));
            RunGather(tables, ws, local, output + b * outputImage, lists, p.OutputPlane, accumulate, firstRun, endRun);
        }
    }

    /// <summary>
    /// Work units per image of an image-major gather: 1 when every thread gets several images
    /// (at least 4 units per thread in all), else enough shares of the pairs of runs for that.
    /// </summary>
    private static int ChunksPerImage(int images, int pairs, int threads)
    {
        int wanted = 4 * threads;
        return Math.Clamp((wanted + images - 1) / Math.Max(1, images), 1, Math.Max(1, pairs));
    }

    /// <summary>
    /// colCount[col] = kept weights in column col over the CSR rows (columns outside [0, k) skipped);
    /// returns whether every row's columns strictly increase (as the encoders write them).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static bool CountColumns(int* rowPtr, int* cols, int rows, int capacity, int k, int* colCount)
    {
        new Span<int>(colCount, k).Clear();
        bool increasing = true;
        for (int r = 0; r < rows; r++)
        {
            int s = Clamp(rowPtr[r], 0, capacity);
            int e = Clamp(rowPtr[r + 1], s, capacity);
            int previous = int.MinValue;
            for (int i = s; i < e; i++)
            {
                int col = cols[i];
                increasing &= col > previous;
                previous = col;
                if ((uint)col < (uint)k)
                {
                    colCount[col]++;
                }
            }
        }
        return increasing;
    }

    /// <summary>
    /// Backward input's counting sort: each kept weight (row co, column col) with col in [lo, lo +
    /// width) that reaches dx goes to its bucket's next place as (co * channelStride + colShift[col], w).
    /// </summary>
    /// With <paramref name="increasing"/> rows (checked by <see cref="CountColumns"/>) each row's
    /// entries in the range are found by binary search, so a thread reads only its own.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FillBuckets(int* rowPtr, int* cols, float* vals, int rows, int capacity, int lo, int width, bool increasing,
        int* colBucket, int firstBucket, int* colShift, int channelStride, int* cursor, int* offsets, float* weights)
    {
        for (int co = 0; co < rows; co++)
        {
            int s = Clamp(rowPtr[co], 0, capacity);
            int e = Clamp(rowPtr[co + 1], s, capacity);
            if (increasing)
            {
                s = s + LowerBound(cols + s, e - s, lo);
                e = s + LowerBound(cols + s, e - s, (long)lo + width);
            }
            int rowShift = co * channelStride;
            for (int i = s; i < e; i++)
            {
                int col = cols[i];
                if ((uint)(col - lo) < (uint)width)
                {
                    int bucket = colBucket[col];
                    if (bucket >= 0)
                    {
                        int at = cursor[bucket - firstBucket]++;
                        offsets[at] = rowShift + colShift[col];
                        weights[at] = vals[i];
                    }
                }
            }
        }
    }

    /// <summary>
    /// Linear backward input, scatter form: thread t owns weight rows (balanced by kept weights) and
    /// its private copy dxT_t [InChannels, padded batch] in the scratch; for each row co it holds
    /// dy[:, co] in registers (64 batch lanes at a time) and adds w * dy[:, co] into dxT_t[ci] for
    /// each kept weight (co, ci). <see cref="ReduceCopies"/> then sums the copies into dx.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BackwardInputLinear(int thread, int threads, ArrayView<float> packed,
        ArrayView<int> rowPointers, ArrayView<int> columns, ArrayView<float> values, SparseConvPlan p)
    {
        if (thread >= p.PrivateCopies)
        {
            return;
        }
        int capacity = (int)Math.Min(columns.Length, values.Length);
        int* rowPtr = (int*)rowPointers.LoadEffectiveAddressAsPtr();
        int* cols = (int*)columns.LoadEffectiveAddressAsPtr();
        float* vals = (float*)values.LoadEffectiveAddressAsPtr();
        float* dyT = (float*)packed.LoadEffectiveAddressAsPtr();
        int rows = p.OutChannels;
        int k = p.InChannels;
        int lanes = p.BatchOuter * p.BatchInner;
        float* copy = dyT + p.PrivateOffset + (long)thread * p.PrivateLength;
        Clear(copy, p.PrivateLength);
        long total = 0;
        for (int r = 0; r < rows; r++)
        {
            int s = Clamp(rowPtr[r], 0, capacity);
            total += Clamp(rowPtr[r + 1], s, capacity) - s + RowCost;
        }
        int r0 = RowBoundary(rowPtr, rows, capacity, total, thread, threads);
        int r1 = RowBoundary(rowPtr, rows, capacity, total, thread + 1, threads);
        for (int l0 = 0; l0 < lanes; l0 += 64)
        {
            int vectors = Math.Min(8, (lanes - l0) / 8);
            for (int r = r0; r < r1; r++)
            {
                int s = Clamp(rowPtr[r], 0, capacity);
                int e = Clamp(rowPtr[r + 1], s, capacity);
                float* g = dyT + (long)r * lanes + l0;
                float* to = copy + l0;
                if (vectors == 8)
                {
                    var g0 = Vector256.Load(g);
                    var g1 = Vector256.Load(g + 8);
                    var g2 = Vector256.Load(g + 16);
                    var g3 = Vector256.Load(g + 24);
                    var g4 = Vector256.Load(g + 32);
                    var g5 = Vector256.Load(g + 40);
                    var g6 = Vector256.Load(g + 48);
                    var g7 = Vector256.Load(g + 56);
                    for (int i = s; i < e; i++)
                    {
                        int col = cols[i];
                        if ((uint)col >= (uint)k)
                        {
                            continue;
                        }
                        var w = Vector256.Create(vals[i]);
                        float* d = to + (long)col * lanes;
                        Vector256.Store(Madd(g0, w, Vector256.Load(d)), d);
                        Vector256.Store(Madd(g1, w, Vector256.Load(d + 8)), d + 8);
                        Vector256.Store(Madd(g2, w, Vector256.Load(d + 16)), d + 16);
                        Vector256.Store(Madd(g3, w, Vector256.Load(d + 24)), d + 24);
                        Vector256.Store(Madd(g4, w, Vector256.Load(d + 32)), d + 32);
                        Vector256.Store(Madd(g5, w, Vector256.Load(d + 40)), d + 40);
                        Vector256.Store(Madd(g6, w, Vector256.Load(d + 48)), d + 48);
                        Vector256.Store(Madd(g7, w, Vector256.Load(d + 56)), d + 56);
                    }
                    continue;
                }
                for (int i = s; i < e; i++)
                {
                    int col = cols[i];
                    if ((uint)col >= (uint)k)
                    {
                        continue;
                    }
                    var w = Vector256.Create(vals[i]);
                    float* d = to + (long)col * lanes;
                    for (int v = 0; v < vectors; v++)
                    {
                        Vector256.Store(Madd(Vector256.Load(g + v * 8), w, Vector256.Load(d + v * 8)), d + v * 8);
                    }
                }
            }
        }
    }

    /// <summary>
    /// Second launch of a pass with private copies (linear backward input, image-major backward
    /// weight): thread t owns rows of the copies and adds, for each, the sum of the copies
    /// (transposed 8x8 at a time) into the result (dx [batch, InChannels], or dw [OutChannels, WeightColumns]).
    /// </summary>
    [SimdHelper(nameof(ReduceCopiesScalar))]
    [IntrinsicImplementation]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ReduceCopies(int thread, int threads, ArrayView<float> scratch, ArrayView<float> result, SparseConvPlan p)
    {
        float* copies = (float*)scratch.LoadEffectiveAddressAsPtr() + p.PrivateOffset;
        float* grad = (float*)result.LoadEffectiveAddressAsPtr();
        int rows = p.CopyRows;
        int lanes = p.CopyRowLength;
        int columns = p.CopyColumns;
        int blocks = (rows + 7) / 8;
        int c0 = (int)((long)blocks * thread / threads) * 8;
        int c1 = Math.Min(rows, (int)((long)blocks * (thread + 1) / threads) * 8);
        var ws = workspace ??= new Workspace();
        float* sum = ws.Floats(ref ws.Accumulator, 8 * lanes);
        for (int cb = c0; cb < c1; cb += 8)
        {
            int width = Math.Min(8, c1 - cb);
            // sum[row][lane] over the copies, then result[lane, cb + row] += sum[row][lane].
            Copy(copies + (long)cb * lanes, sum, width * lanes);
            for (int t = 1; t < p.PrivateCopies; t++)
            {
                float* from = copies + (long)t * p.PrivateLength + (long)cb * lanes;
                for (int i = 0; i < width * lanes; i += 8)
                {
                    Vector256.Store(Vector256.Load(sum + i) + Vector256.Load(from + i), sum + i);
                }
            }
            AddTransposed(sum, lanes, width, columns, grad + cb, rows);
        }
    }

    /// <summary>GPU fallback of <see cref="ReduceCopies"/> (never launched on GPUs, which use atomics).</summary>
    public static void ReduceCopiesScalar(int thread, int threads, ArrayView<float> scratch, ArrayView<float> result, SparseConvPlan p)
    {
        int rows = p.CopyRows;
        int lanes = p.CopyRowLength;
        int total = p.CopyColumns * rows;
        for (int e = thread; e < total; e += threads)
        {
            int column = e / rows;
            int row = e - column * rows;
            float sum = 0f;
            for (int t = 0; t < p.PrivateCopies; t++)
            {
                sum += scratch[p.PrivateOffset + (long)t * p.PrivateLength + (long)row * lanes + column];
            }
            result[e] += sum;
        }
    }

    /// <summary>GPU fallback of <see cref="BackwardInput"/>: atomic scatter from each dy element.</summary>
    public static void BackwardInputScalar(int thread, int threads, ArrayView<float> dy, ArrayView<float> packed,
        ArrayView<int> rowPointers, ArrayView<int> columns, ArrayView<float> values, ArrayView<float> dx, SparseConvPlan p)
        => SparseConvDirect.BackwardInput(thread, threads, dy, packed, rowPointers, columns, values, dx, p);

    // ------------------------------------------------------------------ backward weight

    /// <summary>dw += dL/dw for the input channels this thread owns, from the kept activations and the transposed dy.</summary>
    [SimdHelper(nameof(BackwardWeightScalar))]
    [IntrinsicImplementation]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void BackwardWeight(int thread, int threads, ArrayView<float> dy, ArrayView<float> packed,
        ArrayView<float> xValues, ArrayView<int> xIndices, int count, ArrayView<float> dw, SparseConvPlan p)
    {
        if (p.IsLinear)
        {
            BackwardWeightLinear(thread, threads, packed, xValues, xIndices, count, dw, p);
            return;
        }
        var ws = workspace ??= new Workspace();
        count = (int)Math.Min(count, Math.Min(xValues.Length, xIndices.Length));
        int* idx = (int*)xIndices.LoadEffectiveAddressAsPtr();
        float* xv = (float*)xValues.LoadEffectiveAddressAsPtr();
        if (p.Images > 0)
        {
            BackwardWeightByImage(ws, thread, threads, (float*)dy.LoadEffectiveAddressAsPtr(), (float*)packed.LoadEffectiveAddressAsPtr(), idx, xv, count, p);
            return;
        }
        float* dyT = (float*)packed.LoadEffectiveAddressAsPtr();
        float* grad = (float*)dw.LoadEffectiveAddressAsPtr();
        int batch = p.Batch;
        int inChannels = p.InChannels;
        int plane = p.InHeight * p.InWidth;
        int area = p.KernelArea;
        int k = p.WeightColumns;
        int batchRow = p.OutHeight * p.OutWidth * p.RowPitch;

        int c0 = ActivationBoundary(idx, count, batch, inChannels, plane, thread, threads);
        int c1 = ActivationBoundary(idx, count, batch, inChannels, plane, thread + 1, threads);
        if (c0 >= c1)
        {
            return;
        }
        var cursor = ws.Ints(ref ws.Cursor, batch);
        for (int b = 0; b < batch; b++)
        {
            cursor[b] = LowerBound(idx, count, ((long)b * inChannels + c0) * plane);
        }
        // Loop order: blocks of input channels (their dw columns accumulate in L2), then blocks of
        // images (their dy rows stay in L2 while every channel of the block meets them), then channels.
        int pitch = p.RowPitch;
        int channelFloats = area * pitch;
        // Channel blocks of equal size (no short last block that streams dy once more for a few channels).
        int mostChannels = Math.Max(1, Math.Min(c1 - c0, AccumulatorFloats / channelFloats));
        int channelBlocks = (c1 - c0 + mostChannels - 1) / mostChannels;
        int blockChannels = (c1 - c0 + channelBlocks - 1) / channelBlocks;
        int blockImages = Math.Max(1, Math.Min(batch, ImageBlockFloats / Math.Max(1, batchRow)));
        var acc = ws.Floats(ref ws.Accumulator, blockChannels * channelFloats);
        // Entries of one (channel, block of images) number at most blockImages * plane.
        var lists = new WeightLists(ws, p, idx, xv, count, (int)Math.Min(count, (long)blockImages * plane));
        for (int cb = c0; cb < c1; cb += blockChannels)
        {
            int ce = Math.Min(cb + blockChannels, c1);
            int columns = (ce - cb) * area;
            new Span<float>(acc, columns * pitch).Clear();
            for (int b0 = 0; b0 < batch; b0 += blockImages)
            {
                int b1 = Math.Min(batch, b0 + blockImages);
                for (int ci = cb; ci < ce; ci++)
                {
                    int border = lists.Begin();
                    for (int b = b0; b < b1; b++)
                    {
                        long first = ((long)b * inChannels + ci) * plane;
                        cursor[b] = lists.Scan.Image(cursor[b], first, plane, b * batchRow, ref border);
                    }
                    lists.Accumulate(dyT, acc + (long)(ci - cb) * channelFloats, border);
                }
            }
            AddTransposed(acc, pitch, columns, p.OutChannels, grad + cb * area, k);
        }
    }

    /// <summary>
    /// Image-major backward weight (<see cref="SparseConvPlan.Images"/>): this thread's share of the
    /// images, each transposed into a thread-local buffer (one image's dy, in L2 while every input
    /// channel meets it) and accumulated, channel by channel, into the thread's private dw copy in the
    /// scratch ([WeightColumns, RowPitch]); <see cref="ReduceCopies"/> then sums the copies into dw.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BackwardWeightByImage(Workspace ws, int thread, int threads, float* dy, float* scratch, int* idx, float* xv, int count,
        SparseConvPlan p)
    {
        int inChannels = p.InChannels;
        int plane = p.InHeight * p.InWidth;
        int channelFloats = p.KernelArea * p.RowPitch;
        float* acc = scratch + p.PrivateOffset + (long)thread * p.PrivateLength;
        new Span<float>(acc, p.PrivateLength).Clear();
        int b0 = (int)((long)p.Images * thread / threads), b1 = (int)((long)p.Images * (thread + 1) / threads);
        float* local = ws.ImageOperand(p);
        long dyImage = (long)p.OutChannels * p.OutHeight * p.OutWidth;
        var lists = new WeightLists(ws, p, idx, xv, count, Math.Min(count, plane));
        int j = LowerBound(idx, count, (long)b0 * inChannels * plane);
        for (int b = b0; b < b1; b++)
        {
            Transpose(dy + b * dyImage, local, p, 0, TransposeBlocks(p));
            for (int ci = 0; ci < inChannels; ci++)
            {
                int border = lists.Begin();
                j = lists.Scan.Image(j, ((long)b * inChannels + ci) * plane, plane, 0, ref border);
                lists.Accumulate(local, acc + (long)ci * channelFloats, border);
            }
        }
    }

    /// <summary>
    /// Backward weight's per-call lists for one (channel, block of images): the kept activations
    /// by position class (interior ones, a constant shift per tap) and the border ones with their
    /// per-tap lists, each of <c>capacity</c> entries; <see cref="Accumulate"/> adds them into the
    /// channel's dw columns.
    /// </summary>
    private readonly struct WeightLists
    {
        private readonly int* posTap;
        private readonly int* classTapStart;
        private readonly int* classTap;
        private readonly int* classDelta;
        private readonly int* classCount;
        private readonly int* classOffset;
        private readonly float* classWeight;
        private readonly int* entryPos;
        private readonly int* entryRow;
        private readonly float* entryValue;
        private readonly int* offsets;
        private readonly float* weights;
        private readonly float* tile;
        private readonly int classes;
        private readonly int capacity;
        private readonly int area;
        private readonly int pitch;
        private readonly int outChannels;

        public WeightLists(Workspace ws, SparseConvPlan p, int* idx, float* xv, int count, int capacity)
        {
            var tables = ws.Weight(p);
            this.capacity = capacity;
            classes = p.Stride * p.Stride;
            area = p.KernelArea;
            pitch = p.RowPitch;
            outChannels = p.OutChannels;
            posTap = Ptr(tables.PositionTap);
            classTapStart = Ptr(tables.ClassTapStart);
            classTap = Ptr(tables.ClassTap);
            classDelta = Ptr(tables.ClassDelta);
            entryPos = ws.Ints(ref ws.EntryPosition, capacity);
            entryRow = ws.Ints(ref ws.EntryRow, capacity);
            entryValue = ws.Floats(ref ws.EntryValue, capacity);
            offsets = ws.Ints(ref ws.ListOffset, capacity);
            weights = ws.Floats(ref ws.ListWeight, capacity);
            tile = ws.Tile;
            classCount = ws.Ints(ref ws.RowStart, classes);
            classOffset = ws.Ints(ref ws.ClassOffset, classes * capacity);
            classWeight = ws.Floats(ref ws.ClassWeight, classes * capacity);
            Scan = new ChannelScan(idx, xv, count, Ptr(tables.PositionClass), Ptr(tables.PositionBase), classes, capacity, classCount,
                classOffset, classWeight, entryPos, entryRow, entryValue);
        }

        /// <summary>Fills the lists (one image at a time).</summary>
        public ChannelScan Scan { get; }

        /// <summary>Empties the lists; returns the border count to pass to the scan.</summary>
        public int Begin()
        {
            new Span<int>(classCount, classes).Clear();
            return 0;
        }

        /// <summary>Adds the lists' terms into channelAcc [area][pitch] (dyT rows at the entries' offsets).</summary>
        public void Accumulate(float* dyT, float* channelAcc, int border)
        {
            for (int c = 0; c < classes; c++)
            {
                int n = classCount[c];
                if (n == 0)
                {
                    continue;
                }
                for (int t = classTapStart[c]; t < classTapStart[c + 1]; t++)
                {
                    AccumulateTap(dyT + classDelta[t], classOffset + c * capacity, classWeight + c * capacity, n,
                        channelAcc + (long)classTap[t] * pitch, outChannels, tile);
                }
            }
            for (int tap = 0; tap < area && border > 0; tap++)
            {
                int n = TapList(posTap + tap, area, entryPos, entryRow, entryValue, border, offsets, weights);
                if (n > 0)
                {
                    AccumulateTap(dyT, offsets, weights, n, channelAcc + (long)tap * pitch, outChannels, tile);
                }
            }
        }
    }

    /// <summary>
    /// Backward weight's scan of one channel's kept activations, image by image: interior ones go
    /// into their position class's list (capacity entries each, at class * capacity), border ones into
    /// the entry lists. A small struct so that the scan's loop keeps its state in registers.
    /// </summary>
    private readonly struct ChannelScan(int* idx, float* xv, int count, int* posClass, int* posBase, int classes, int capacity,
        int* classCount, int* classOffset, float* classWeight, int* entryPos, int* entryRow, float* entryValue)
    {
        /// <summary>Scans the entries from <paramref name="j"/> below first + plane; returns where the next image starts.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public int Image(int j, long first, int plane, int row, ref int border)
        {
            long limit = first + plane;
            int nb = border;
            if (classes == 1)
            {
                // Stride 1, the common case: one class, its count kept in a register (the general
                // loop below reloads and stores a class's count per activation).
                int n = classCount[0];
                for (; j < count && idx[j] < limit; j++)
                {
                    long pos = idx[j] - first;
                    float v = xv[j];
                    if ((ulong)pos >= (ulong)plane || v == 0f)
                    {
                        continue;
                    }
                    // Increasing indices never fill a list; anything past its capacity (repeated
                    // indices) is dropped rather than written outside it.
                    if (posClass[pos] >= 0)
                    {
                        if (n < capacity)
                        {
                            classOffset[n] = row + posBase[pos];
                            classWeight[n] = v;
                            n++;
                        }
                    }
                    else if (nb < capacity)
                    {
                        entryPos[nb] = (int)pos;
                        entryRow[nb] = row;
                        entryValue[nb] = v;
                        nb++;
                    }
                }
                classCount[0] = n;
                border = nb;
                return j;
            }
            for (; j < count && idx[j] < limit; j++)
            {
                long pos = idx[j] - first;
                float v = xv[j];
                if ((ulong)pos >= (ulong)plane || v == 0f)
                {
                    continue;
                }
                int c = posClass[pos];
                if (c >= 0)
                {
                    int n = classCount[c];
                    if (n < capacity)
                    {
                        classOffset[c * capacity + n] = row + posBase[pos];
                        classWeight[c * capacity + n] = v;
                        classCount[c] = n + 1;
                    }
                }
                else if (nb < capacity)
                {
                    entryPos[nb] = (int)pos;
                    entryRow[nb] = row;
                    entryValue[nb] = v;
                    nb++;
                }
            }
            border = nb;
            return j;
        }
    }

    /// <summary>The (offset, weight) list of one tap over the border entries: those whose tap reaches dy (tapOffset[pos * area] &gt;= 0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int TapList(int* tapOffset, int area, int* entryPos, int* entryRow, float* entryValue, int border, int* offsets, float* weights)
    {
        int n = 0;
        for (int e = 0; e < border; e++)
        {
            int o = tapOffset[entryPos[e] * area];
            if (o >= 0)
            {
                offsets[n] = entryRow[e] + o;
                weights[n] = entryValue[e];
                n++;
            }
        }
        return n;
    }

    /// <summary>
    /// Linear backward weight, output-channel major: dw [Cout, Cin] is dense and large while the kept
    /// activations are few, so the pass is bound by reading and writing dw. Thread t owns blocks of
    /// 16 output channels; for each block it sums x * dy[b, block] into acc [Cin, 16] (in L2) over the
    /// kept activations, then adds acc transposed into the 16 contiguous dw rows (a streaming pass).
    /// Any index order works.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BackwardWeightLinear(int thread, int threads, ArrayView<float> packed,
        ArrayView<float> xValues, ArrayView<int> xIndices, int count, ArrayView<float> dw, SparseConvPlan p)
    {
        const int Block = 16;
        var ws = workspace ??= new Workspace();
        count = (int)Math.Min(count, Math.Min(xValues.Length, xIndices.Length));
        int* idx = (int*)xIndices.LoadEffectiveAddressAsPtr();
        float* xv = (float*)xValues.LoadEffectiveAddressAsPtr();
        float* dyT = (float*)packed.LoadEffectiveAddressAsPtr();
        float* grad = (float*)dw.LoadEffectiveAddressAsPtr();
        int inChannels = p.InChannels;
        int outChannels = p.OutChannels;
        int pitch = p.RowPitch;
        int inputLength = p.Batch * inChannels;
        int blocks = (outChannels + Block - 1) / Block;
        int k0 = (int)((long)blocks * thread / threads);
        int k1 = (int)((long)blocks * (thread + 1) / threads);
        if (k0 >= k1)
        {
            return;
        }
        var entryRow = ws.Ints(ref ws.EntryRow, count);
        var entryChannel = ws.Ints(ref ws.EntryPosition, count);
        var entryValue = ws.Floats(ref ws.EntryValue, count);
        int entries = 0;
        for (int j = 0; j < count; j++)
        {
            int index = idx[j];
            float v = xv[j];
            if ((uint)index < (uint)inputLength && v != 0f)
            {
                int b = index / inChannels;
                entryRow[entries] = b * pitch;
                entryChannel[entries] = (index - b * inChannels) * Block;
                entryValue[entries] = v;
                entries++;
            }
        }
        var acc = ws.Floats(ref ws.Accumulator, inChannels * Block);
        for (int kb = k0; kb < k1; kb++)
        {
            int co0 = kb * Block;
            Clear(acc, inChannels * Block);
            float* g = dyT + co0;
            for (int e = 0; e < entries; e++)
            {
                var w = Vector256.Create(entryValue[e]);
                float* from = g + entryRow[e];
                float* to = acc + entryChannel[e];
                Vector256.Store(Madd(Vector256.Load(from), w, Vector256.Load(to)), to);
                Vector256.Store(Madd(Vector256.Load(from + 8), w, Vector256.Load(to + 8)), to + 8);
            }
            AddTransposed(acc, Block, inChannels, Math.Min(Block, outChannels - co0), grad + (long)co0 * inChannels, inChannels);
        }
    }

    /// <summary>GPU fallback of <see cref="BackwardWeight"/>: atomic accumulation per (activation, output channel).</summary>
    public static void BackwardWeightScalar(int thread, int threads, ArrayView<float> dy, ArrayView<float> packed,
        ArrayView<float> xValues, ArrayView<int> xIndices, int count, ArrayView<float> dw, SparseConvPlan p)
        => SparseConvDirect.BackwardWeight(thread, threads, dy, packed, xValues, xIndices, count, dw, p);

    /// <summary>
    /// row[0 .. width) += sum over k of w[k] * src[off[k] + 0 .. width), 64 output channels per Dot8
    /// (width rounded up to 8 lanes; the row has room for them).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AccumulateTap(float* src, int* offsets, float* weights, int n, float* row, int width, float* tile)
    {
        for (int co0 = 0; co0 < width; co0 += 64)
        {
            int w = Math.Min(64, width - co0);
            if (w == 64)
            {
                // A full chunk: the row's 64 sums are the accumulators' start and end (no tile).
                Dot8Add(src + co0, 32, offsets, weights, n, row + co0);
                continue;
            }
            if (w > 32)
            {
                Dot8(src + co0, 32, offsets, weights, n, tile);
            }
            else
            {
                Dot4(src + co0, offsets, weights, n, tile);
            }
            float* to = row + co0;
            for (int c = 0; c < w; c += 8)
            {
                Vector256.Store(Vector256.Load(to + c) + Vector256.Load(tile + c), to + c);
            }
        }
    }

    /// <summary>
    /// dst[c * ldDst + j] += src[j * ldSrc + c] for j &lt; rows, c &lt; cols: the [rows, cols] block
    /// added transposed, 8x8 at a time with AVX shuffles.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AddTransposed(float* src, int ldSrc, int rows, int cols, float* dst, int ldDst)
    {
        for (int c0 = 0; c0 < cols; c0 += 8)
        {
            for (int j0 = 0; j0 < rows; j0 += 8)
            {
                if (Avx.IsSupported && c0 + 8 <= cols && j0 + 8 <= rows)
                {
                    float* s = src + (long)j0 * ldSrc + c0;
                    var r0 = Vector256.Load(s);
                    var r1 = Vector256.Load(s + ldSrc);
                    var r2 = Vector256.Load(s + 2L * ldSrc);
                    var r3 = Vector256.Load(s + 3L * ldSrc);
                    var r4 = Vector256.Load(s + 4L * ldSrc);
                    var r5 = Vector256.Load(s + 5L * ldSrc);
                    var r6 = Vector256.Load(s + 6L * ldSrc);
                    var r7 = Vector256.Load(s + 7L * ldSrc);
                    Transpose8x8(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
                    float* d = dst + (long)c0 * ldDst + j0;
                    AddTo(d, r0);
                    AddTo(d + ldDst, r1);
                    AddTo(d + 2L * ldDst, r2);
                    AddTo(d + 3L * ldDst, r3);
                    AddTo(d + 4L * ldDst, r4);
                    AddTo(d + 5L * ldDst, r5);
                    AddTo(d + 6L * ldDst, r6);
                    AddTo(d + 7L * ldDst, r7);
                    continue;
                }
                for (int c = c0; c < Math.Min(c0 + 8, cols); c++)
                {
                    for (int j = j0; j < Math.Min(j0 + 8, rows); j++)
                    {
                        dst[(long)c * ldDst + j] += src[(long)j * ldSrc + c];
                    }
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddTo(float* d, Vector256<float> v) => Vector256.Store(Vector256.Load(d) + v, d);

    /// <summary>Transposes the 8x8 matrix whose rows are r0..r7 in place (AVX unpack, shuffle, lane permute).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x8(ref Vector256<float> r0, ref Vector256<float> r1, ref Vector256<float> r2, ref Vector256<float> r3,
        ref Vector256<float> r4, ref Vector256<float> r5, ref Vector256<float> r6, ref Vector256<float> r7)
    {
        var t0 = Avx.UnpackLow(r0, r1);
        var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3);
        var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5);
        var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7);
        var t7 = Avx.UnpackHigh(r6, r7);
        var s0 = Avx.Shuffle(t0, t2, 0x44);
        var s1 = Avx.Shuffle(t0, t2, 0xEE);
        var s2 = Avx.Shuffle(t1, t3, 0x44);
        var s3 = Avx.Shuffle(t1, t3, 0xEE);
        var s4 = Avx.Shuffle(t4, t6, 0x44);
        var s5 = Avx.Shuffle(t4, t6, 0xEE);
        var s6 = Avx.Shuffle(t5, t7, 0x44);
        var s7 = Avx.Shuffle(t5, t7, 0xEE);
        r0 = Avx.Permute2x128(s0, s4, 0x20);
        r1 = Avx.Permute2x128(s1, s5, 0x20);
        r2 = Avx.Permute2x128(s2, s6, 0x20);
        r3 = Avx.Permute2x128(s3, s7, 0x20);
        r4 = Avx.Permute2x128(s0, s4, 0x31);
        r5 = Avx.Permute2x128(s1, s5, 0x31);
        r6 = Avx.Permute2x128(s2, s6, 0x31);
        r7 = Avx.Permute2x128(s3, s7, 0x31);
    }

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

    /// <summary>tile[0..32) = sum_k w[k] * src[off[k] + 0..32) (a single run).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4(float* src, int* offsets, float* weights, int n, float* tile)
    {
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

    // ------------------------------------------------------------------ per-thread state

    private static T* Ptr<T>(T[] array)
        where T : unmanaged
        => (T* )Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));

    /// <summary>Test hook: the channel windows the CPU gather uses for plan <paramref name="p"/> (1: unblocked).</summary>
    internal static int GatherWindows(SparseConvPlan p) => new GatherTables(p).Windows;

    /// <summary>Cached per-plan tables of a gather pass.</summary>
    private sealed class GatherTables
    {
        public GatherTables(SparseConvPlan p)
        {
            var strips = SparseConvStrips.Build(p);
            PhaseCount = strips.Phases;
            PhaseRows = p.PhaseRows;
            StripStart = Pinned(strips.Start);
            StripOutput = Pinned(strips.Output);
            Contiguous = Pinned(strips.Contiguous);
            Paired = Pinned(strips.Paired);
            int k = p.WeightColumns;
            ColumnShift = GC.AllocateUninitializedArray<int>(k, pinned: true);
            ColumnBucket = GC.AllocateUninitializedArray<int>(k, pinned: true);
            int area = p.KernelArea;
            int s = p.Stride;
            int bi = p.BatchInner;
            for (int col = 0; col < k; col++)
            {
                int ci = col / area;
                int kh = col % area / p.KernelWidth;
                int kw = col % p.KernelWidth;
                if (p.Pass == SparseConvPlan.ForwardPass)
                {
                    ColumnShift[col] = ((ci * s + kh % s) * s + kw % s) * p.ChannelStride + (kh / s * p.PackedWidth + kw / s) * bi;
                    ColumnBucket[col] = ci;
                    continue;
                }
                // Backward input: dx row i*S + ph reads dy row i + (ph + P - kh) / S, for ph = (kh - P) mod S.
                int ph = ((kh - p.Padding) % s + s) % s;
                int pw = ((kw - p.Padding) % s + s) % s;
                if (ph >= p.PhaseRows || pw >= p.PhaseCols)
                {
                    ColumnShift[col] = 0;
                    ColumnBucket[col] = -1;
                    continue;
                }
                int du = (ph + p.Padding - kh) / s + p.PadTop;
                int dv = (pw + p.Padding - kw) / s + p.PadLeft;
                ColumnShift[col] = (du * p.PackedWidth + dv) * bi;
                ColumnBucket[col] = ci * strips.Phases + ph * p.PhaseCols + pw;
            }
            WindowChannels = Math.Max(1, p.SourceChannels);
            Windows = 1;
            // A strided forward packs each channel as stride^2 phase planes, one after another.
            bool strided = p.Stride > 1 && p.Pass == SparseConvPlan.ForwardPass;
            ChannelStride = strided ? p.ChannelStride * s * s : p.ChannelStride;
            if (p.Pass != SparseConvPlan.BackwardWeightPass && StripStart.Length > 1)
            {
                int footprint = ChannelFootprint(p, ColumnShift, StripStart[1] - StripStart[0]);
                WindowChannels = Math.Clamp(WindowFloats / footprint, 1, Math.Max(1, p.SourceChannels));
                Windows = (p.SourceChannels + WindowChannels - 1) / WindowChannels;
            }
        }

        /// <summary>Floats per source channel of the packed operand (all its phase planes).</summary>
        public int ChannelStride { get; }

        /// <summary>
        /// Stride 1: source channels per window of the blocked gather, so that a window's slice of a
        /// pair of runs' operand (the union over taps of the 64 + gap floats each reads) fills about
        /// <see cref="WindowFloats"/>; <see cref="Windows"/> windows cover the channels (1: unblocked).
        /// </summary>
        public int WindowChannels { get; }

        public int Windows { get; }

        /// <summary>
        /// Footprint of one channel window's operand slice in floats (a 32 KB L1). Twice the earlier
        /// 16 KB: fewer windows, so fewer reloads of each list's 64 sums per pair of runs, which
        /// gained 7-10% on layers 3-4 at density 0.05 and 2-8% at 0.1 (interleaved A/B); 64 KB
        /// was slower at 0.1.
        /// </summary>
        private const int WindowFloats = 8192;

        private static int ChannelFootprint(SparseConvPlan p, int[] columnShift, int second)
        {
            // Intervals [shift, shift + second + 32) of channel 0's taps, merged.
            var starts = new int[p.KernelArea];
            for (int tap = 0; tap < starts.Length; tap++)
            {
                starts[tap] = columnShift[tap];
            }
            Array.Sort(starts);
            int length = second + SparseConvStrips.Length;
            long covered = 0, end = long.MinValue;
            foreach (int start in starts)
            {
                long from = Math.Max(start, end);
                long to = (long)start + length;
                if (to > from)
                {
                    covered += to - from;
                    end = to;
                }
            }
            return (int)Math.Max(1, covered);
        }

        /// <summary>Output phases (1, or the stride's residues for backward input).</summary>
        public int PhaseCount { get; }

        public int PhaseRows { get; }

        public int[] StripStart { get; }

        public int[] StripOutput { get; }

        public byte[] Contiguous { get; }

        public byte[] Paired { get; }

        /// <summary>Shift of each weight column in the packed layout (backward input: without the dy channel term).</summary>
        public int[] ColumnShift { get; }

        /// <summary>
        /// The (source-side channel, output phase) bucket of each weight column: forward, its input
        /// channel; backward input, input channel * PhaseCount + phase, or -1 when it reaches no input.
        /// </summary>
        public int[] ColumnBucket { get; }

        private static T[] Pinned<T>(List<T> list)
            where T : unmanaged
        {
            var array = GC.AllocateUninitializedArray<T>(list.Count, pinned: true);
            list.CopyTo(array);
            return array;
        }
    }

    /// <summary>Cached per-plan tables of backward weight.</summary>
    private sealed class WeightTables
    {
        public WeightTables(SparseConvPlan p)
        {
            int area = p.KernelArea;
            int plane = p.InHeight * p.InWidth;
            PositionTap = GC.AllocateUninitializedArray<int>(Math.Max(1, plane * area), pinned: true);
            int s = p.Stride;
            for (int ih = 0; ih < p.InHeight; ih++)
            {
                for (int iw = 0; iw < p.InWidth; iw++)
                {
                    for (int kh = 0; kh < p.KernelHeight; kh++)
                    {
                        for (int kw = 0; kw < p.KernelWidth; kw++)
                        {
                            int th = ih + p.Padding - kh;
                            int tw = iw + p.Padding - kw;
                            int oh = th / s;
                            int ow = tw / s;
                            bool valid = th >= 0 && tw >= 0 && th % s == 0 && tw % s == 0 && oh < p.OutHeight && ow < p.OutWidth;
                            PositionTap[(ih * p.InWidth + iw) * area + kh * p.KernelWidth + kw] =
                                valid ? (oh * p.OutWidth + ow) * p.RowPitch : -1;
                        }
                    }
                }
            }

            // Position classes: an input position whose every tap lands inside dy is "interior"; its
            // taps are those with kh = (ih + P) mod S (mod S), and each meets the dy row
            // base(ih, iw) + delta(tap), the delta depending only on the class (ih + P, iw + P) mod S.
            int classes = s * s;
            PositionClass = GC.AllocateUninitializedArray<int>(Math.Max(1, plane), pinned: true);
            PositionBase = GC.AllocateUninitializedArray<int>(Math.Max(1, plane), pinned: true);
            ClassTapStart = GC.AllocateUninitializedArray<int>(classes + 1, pinned: true);
            var taps = new List<int>();
            var deltas = new List<int>();
            for (int c = 0; c < classes; c++)
            {
                ClassTapStart[c] = taps.Count;
                int rh = c / s;
                int rw = c % s;
                for (int kh = rh; kh < p.KernelHeight; kh += s)
                {
                    for (int kw = rw; kw < p.KernelWidth; kw += s)
                    {
                        taps.Add(kh * p.KernelWidth + kw);
                        deltas.Add(-((kh - rh) / s * p.OutWidth + (kw - rw) / s) * p.RowPitch);
                    }
                }
            }
            ClassTapStart[classes] = taps.Count;
            ClassTap = GC.AllocateUninitializedArray<int>(Math.Max(1, taps.Count), pinned: true);
            ClassDelta = GC.AllocateUninitializedArray<int>(Math.Max(1, taps.Count), pinned: true);
            taps.CopyTo(ClassTap);
            deltas.CopyTo(ClassDelta);
            for (int ih = 0; ih < p.InHeight; ih++)
            {
                for (int iw = 0; iw < p.InWidth; iw++)
                {
                    int rh = (ih + p.Padding) % s;
                    int rw = (iw + p.Padding) % s;
                    int ohBase = (ih + p.Padding - rh) / s;
                    int owBase = (iw + p.Padding - rw) / s;
                    bool interior = true;
                    for (int kh = rh; kh < p.KernelHeight && interior; kh += s)
                    {
                        for (int kw = rw; kw < p.KernelWidth && interior; kw += s)
                        {
                            int oh = ohBase - (kh - rh) / s;
                            int ow = owBase - (kw - rw) / s;
                            interior = oh >= 0 && oh < p.OutHeight && ow >= 0 && ow < p.OutWidth;
                        }
                    }
                    int pos = ih * p.InWidth + iw;
                    PositionClass[pos] = interior ? rh * s + rw : -1;
                    PositionBase[pos] = interior ? (ohBase * p.OutWidth + owBase) * p.RowPitch : 0;
                }
            }
        }

        /// <summary>For input position (ih, iw) and tap (kh, kw): the dy row offset (oh, ow) * RowPitch it meets, or -1.</summary>
        public int[] PositionTap { get; }

        /// <summary>Class (ih + P) mod S * S + (iw + P) mod S of an interior input position, -1 at the border.</summary>
        public int[] PositionClass { get; }

        /// <summary>Row offset of an interior position's class base (ohBase, owBase) * RowPitch.</summary>
        public int[] PositionBase { get; }

        /// <summary>Class c owns taps ClassTapStart[c] .. ClassTapStart[c + 1] - 1 of <see cref="ClassTap"/>.</summary>
        public int[] ClassTapStart { get; }

        /// <summary>Tap index kh * KW + kw of each class tap.</summary>
        public int[] ClassTap { get; }

        /// <summary>Offset of each class tap's dy row relative to the position's base.</summary>
        public int[] ClassDelta { get; }
    }

    /// <summary>Thread-local tables (cached per plan) and growable pinned buffers.</summary>
    private sealed class Workspace
    {
        private const int MaxCachedPlans = 64;
        private readonly Dictionary<SparseConvPlan, GatherTables> gather = [];
        private readonly Dictionary<SparseConvPlan, WeightTables> weight = [];
        private readonly float[] tile = GC.AllocateUninitializedArray<float>(64, pinned: true);
        private float[] phaseTiles = [];

        public int[] RowStart = [];
        public int[] WindowStart = [];
        public float[] BlockTile = [];
        public float[] ImagePack = [];
        public int[] Cursor = [];
        public int[] ColumnCount = [];
        public int[] ListOffset = [];
        public float[] ListWeight = [];
        public int[] EntryPosition = [];
        public int[] EntryRow = [];
        public float[] EntryValue = [];
        public float[] Accumulator = [];
        public int[] ClassOffset = [];
        public float[] ClassWeight = [];

        public float* Tile => Ptr(tile);

        /// <summary>64 floats per output phase.</summary>
        public float* Tiles(int phases) => Floats(ref phaseTiles, 64 * phases);

        public GatherTables Gather(SparseConvPlan p)
        {
            if (!gather.TryGetValue(p, out var tables))
            {
                if (gather.Count >= MaxCachedPlans)
                {
                    gather.Clear();
                }
                tables = new GatherTables(p);
                gather[p] = tables;
            }
            return tables;
        }

        public WeightTables Weight(SparseConvPlan p)
        {
            if (!weight.TryGetValue(p, out var tables))
            {
                if (weight.Count >= MaxCachedPlans)
                {
                    weight.Clear();
                }
                tables = new WeightTables(p);
                weight[p] = tables;
            }
            return tables;
        }

        public int* Ints(ref int[] buffer, int length)
        {
            if (buffer.Length < length || buffer.Length == 0)
            {
                buffer = GC.AllocateUninitializedArray<int>(Math.Max(16, length + length / 4), pinned: true);
            }
            return Ptr(buffer);
        }

        /// <summary>The image-major passes' thread-local buffer of one image's packed operand, its slack zeroed.</summary>
        public float* ImageOperand(SparseConvPlan p)
        {
            float* local = Floats(ref ImagePack, p.PackedLength + SparseConvPlan.Slack);
            Clear(local + p.PackedLength, SparseConvPlan.Slack);
            return local;
        }

        public float* Floats(ref float[] buffer, int length)
        {
            if (buffer.Length < length || buffer.Length == 0)
            {
                buffer = GC.AllocateUninitializedArray<float>(Math.Max(16, length + length / 4), pinned: true);
            }
            return Ptr(buffer);
        }
    }
}
