using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ILGPU;
using ILGPU.IR.Intrinsics;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

// The weight-gradient engine: backward weight (channel-blocked, image-major and linear), its
// per-call lists and channel scan, and the transposed adds into dw.
internal static unsafe partial class SparseConvCpu
{
    // ------------------------------------------------------------------ backward weight

    /// <summary>dw += dL/dw for the input channels this thread owns, from the kept activations and the transposed dy.</summary>
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
}
