using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using ILGPU;
using ILGPU.IR.Intrinsics;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

// The gather passes: forward and backward input (their lists of kept weights, the image-major
// gather, linear backward input with private copies, ReduceCopies).
internal static unsafe partial class SparseConvCpu
{
    // ------------------------------------------------------------------ forward

    /// <summary>y = conv(x, W) for the output channels this thread owns, reading the packed x (see the class remarks).</summary>
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

    // ------------------------------------------------------------------ backward input

    /// <summary>dx += dL/dx (dx = dL/dx when the plan says <see cref="SparseConvPlan.Overwrite"/>) for the input channels this thread owns, reading the packed dy.</summary>
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

}
