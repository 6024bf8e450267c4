using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ILGPU;
using ILGPU.IR.Intrinsics;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// The per-thread loops of <see cref="TopKKernels"/>: each walks one thread's elements
/// (begin, begin + step, ... &lt; end). On the CPU accelerator they run as plain .NET code over raw
/// pointers with Vector256 compares (a contiguous range, step 1), or as plain loops for a strided
/// range or without AVX2 (a "Scalar" twin, or the loops the GPU kernels share,
/// <see cref="TopKLoops"/>). Only the CPU accelerator's <see cref="CpuKernelAttribute"/> kernels
/// call them. Keys are the bits of |x|
/// (<see cref="TopKKernels.MagnitudeMask"/>), compared as unsigned ints.
/// </summary>
internal static unsafe class TopKRanges
{
    private const uint Magnitude = TopKKernels.MagnitudeMask;

    /// <summary>
    /// histogram[(key &gt;&gt; shift) &amp; digitMask] += 1 for each element with
    /// key &gt;&gt; matchShift == match. The histogram (digitMask + 1 counters) is zeroed first.
    /// </summary>
    [IntrinsicImplementation]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Histogram(
        ArrayView<float> x, ArrayView<int> histogram, long begin, long end, int step,
        int matchShift, uint match, int shift, int digitMask)
    {
        if (step != 1 || !Vector256.IsHardwareAccelerated)
        {
            HistogramScalar(x, histogram, begin, end, step, matchShift, match, shift, digitMask);
            return;
        }
        int buckets = digitMask + 1;
        int* counts = (int*)histogram.LoadEffectiveAddressAsPtr();
        new Span<int>(counts, buckets).Clear();
        uint* keys = (uint*)x.LoadEffectiveAddressAsPtr();
        long i = begin;
        if (matchShift >= 31)
        {
            // Every element counts: four interleaved copies break the store-to-load chains that
            // runs of equal digits would otherwise form on one counter.
            int* copies = stackalloc int[4 * buckets];
            new Span<int>(copies, 4 * buckets).Clear();
            uint mask = (uint)digitMask;
            for (; i + 4 <= end; i += 4)
            {
                copies[((keys[i] & Magnitude) >> shift) & mask]++;
                copies[buckets + (((keys[i + 1] & Magnitude) >> shift) & mask)]++;
                copies[2 * buckets + (((keys[i + 2] & Magnitude) >> shift) & mask)]++;
                copies[3 * buckets + (((keys[i + 3] & Magnitude) >> shift) & mask)]++;
            }
            for (; i < end; i++)
            {
                copies[((keys[i] & Magnitude) >> shift) & mask]++;
            }
            for (int b = 0; b < buckets; b++)
            {
                counts[b] = copies[b] + copies[buckets + b] + copies[2 * buckets + b] + copies[3 * buckets + b];
            }
            return;
        }
        // Refining passes: few elements match, so compare eight at a time and count only the hits.
        var magnitude = Vector256.Create(Magnitude);
        var wanted = Vector256.Create(match);
        for (; i + 8 <= end; i += 8)
        {
            var key = Vector256.Load(keys + i) & magnitude;
            uint hits = Vector256.Equals(Vector256.ShiftRightLogical(key, matchShift), wanted).ExtractMostSignificantBits();
            while (hits != 0)
            {
                int lane = BitOperations.TrailingZeroCount(hits);
                hits &= hits - 1;
                counts[(int)(((keys[i + lane] & Magnitude) >> shift) & (uint)digitMask)]++;
            }
        }
        for (; i < end; i++)
        {
            uint key = keys[i] & Magnitude;
            if (key >> matchShift == match)
            {
                counts[(int)((key >> shift) & (uint)digitMask)]++;
            }
        }
    }

    /// <summary>Scalar <see cref="Histogram"/> (a strided range, or no AVX2).</summary>
    public static void HistogramScalar(
        ArrayView<float> x, ArrayView<int> histogram, long begin, long end, int step,
        int matchShift, uint match, int shift, int digitMask)
    {
        for (int b = 0; b <= digitMask; b++)
        {
            histogram[b] = 0;
        }
        for (long i = begin; i < end; i += step)
        {
            uint key = Interop.FloatAsInt(x[i]) & Magnitude;
            if (key >> matchShift == match)
            {
                histogram[(int)((key >> shift) & (uint)digitMask)] += 1;
            }
        }
    }

    /// <summary>
    /// samples[j] = the key of x[j * stride] for every j of samples, read on the calling thread:
    /// host code, for the CPU accelerator only (its device memory is the host's).
    /// </summary>
    public static void Sample(ArrayView<float> x, Span<int> samples, int stride)
    {
        if (samples.Length > 0 && (long)(samples.Length - 1) * stride >= x.Length)
        {
            throw new ArgumentException($"top-k sample: {samples.Length} samples {stride} apart do not fit {x.Length} elements");
        }
        uint* keys = (uint*)x.LoadEffectiveAddressAsPtr();
        for (int j = 0; j < samples.Length; j++)
        {
            samples[j] = (int)(keys[(long)j * stride] & Magnitude);
        }
    }

    /// <summary>
    /// The filter pass of a bracketed selection: counts the elements of [begin, end) with key &gt;
    /// <paramref name="high"/> (high 32 bits of the result) and with key in [<paramref name="low"/>,
    /// <paramref name="high"/>] (low 32 bits), and writes the keys of the latter, in index order, to
    /// candidates [position, position + capacity) (those past the capacity are counted, not
    /// written). low &lt;= high. The CPU version left-packs sixteen (AVX-512) or eight lanes at a
    /// time with full-width stores while they end inside the capacity.
    /// </summary>
    [IntrinsicImplementation]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static long Bracket(ArrayView<float> x, ArrayView<int> candidates, long begin, long end, uint low, uint high, int position, int capacity)
    {
        if (!Avx2.IsSupported)
        {
            return BracketScalar(x, candidates, begin, end, low, high, position, capacity);
        }
        uint* keys = (uint*)x.LoadEffectiveAddressAsPtr();
        uint* output = (uint*)candidates.LoadEffectiveAddressAsPtr() + position;
        uint width = high - low;
        long above = 0;
        int count = 0;
        long i = begin;
        if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported)
        {
            var magnitude16 = Vector512.Create(Magnitude);
            var low16 = Vector512.Create(low);
            var high16 = Vector512.Create(high);
            var width16 = Vector512.Create(width);
            for (; i + 16 <= end && count + 16 <= capacity; i += 16)
            {
                var key = Vector512.Load(keys + i) & magnitude16;
                above += BitOperations.PopCount(Vector512.GreaterThan(key, high16).ExtractMostSignificantBits());
                var inside = Vector512.LessThanOrEqual(key - low16, width16);
                // No branch on inside (a few percent of lanes, as good as random): an empty store
                // lands where the next candidates overwrite it.
                Avx512F.Compress(Vector512<uint>.Zero, inside, key).Store(output + count);
                count += BitOperations.PopCount(inside.ExtractMostSignificantBits());
            }
        }
        var magnitude = Vector256.Create(Magnitude);
        var low8 = Vector256.Create(low);
        var high8 = Vector256.Create(high);
        var width8 = Vector256.Create(width);
        int* packs = LeftPack.Table;
        for (; i + 8 <= end && count + 8 <= capacity; i += 8)
        {
            var key = Vector256.Load(keys + i) & magnitude;
            above += BitOperations.PopCount(Vector256.GreaterThan(key, high8).ExtractMostSignificantBits());
            uint inside = Vector256.LessThanOrEqual(key - low8, width8).ExtractMostSignificantBits();
            Avx2.PermuteVar8x32(key, Vector256.Load(packs + 8 * inside).AsUInt32()).Store(output + count);
            count += BitOperations.PopCount(inside);
        }
        // The rest, or everything past a full capacity: the scalar twin, whose counts add to these.
        return (above << 32) + count + BracketScalar(x, candidates, i, end, low, high, position + Math.Min(count, capacity), Math.Max(0, capacity - count));
    }

    /// <summary>Scalar <see cref="Bracket"/>.</summary>
    public static long BracketScalar(ArrayView<float> x, ArrayView<int> candidates, long begin, long end, uint low, uint high, int position, int capacity)
    {
        long above = 0;
        long count = 0;
        for (long i = begin; i < end; i++)
        {
            uint key = Interop.FloatAsInt(x[i]) & Magnitude;
            above += key > high ? 1 : 0;
            if (key - low <= high - low)
            {
                if (count < capacity)
                {
                    candidates[position + count] = (int)key;
                }
                count++;
            }
        }
        return (above << 32) | count;
    }

    /// <summary>
    /// output = x where key &gt; threshold (or == threshold when keepEqual != 0), else +0;
    /// returns how many elements have key == threshold. output may be x.
    /// </summary>
    [IntrinsicImplementation]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int Mask(ArrayView<float> x, ArrayView<float> output, long begin, long end, int step, uint threshold, int keepEqual)
    {
        if (step != 1 || !Vector256.IsHardwareAccelerated)
        {
            return MaskScalar(x, output, begin, end, step, threshold, keepEqual);
        }
        uint* source = (uint*)x.LoadEffectiveAddressAsPtr();
        uint* target = (uint*)output.LoadEffectiveAddressAsPtr();
        var magnitude = Vector256.Create(Magnitude);
        var limit = Vector256.Create(threshold);
        var equalKept = keepEqual != 0 ? Vector256<uint>.AllBitsSet : Vector256<uint>.Zero;
        int equal = 0;
        long i = begin;
        for (; i + 8 <= end; i += 8)
        {
            var bits = Vector256.Load(source + i);
            var key = bits & magnitude;
            var isEqual = Vector256.Equals(key, limit);
            var keep = Vector256.GreaterThan(key, limit) | (isEqual & equalKept);
            (bits & keep).Store(target + i);
            equal += BitOperations.PopCount(isEqual.ExtractMostSignificantBits());
        }
        for (; i < end; i++)
        {
            uint bits = source[i];
            uint key = bits & Magnitude;
            equal += key == threshold ? 1 : 0;
            target[i] = key > threshold || (key == threshold && keepEqual != 0) ? bits : 0u;
        }
        return equal;
    }

    /// <summary>Scalar <see cref="Mask"/>.</summary>
    public static int MaskScalar(ArrayView<float> x, ArrayView<float> output, long begin, long end, int step, uint threshold, int keepEqual)
    {
        int equal = 0;
        for (long i = begin; i < end; i += step)
        {
            float v = x[i];
            uint key = Interop.FloatAsInt(v) & Magnitude;
            bool isEqual = key == threshold;
            equal += isEqual ? 1 : 0;
            output[i] = key > threshold || (isEqual && keepEqual != 0) ? v : 0f;
        }
        return equal;
    }

    /// <summary>
    /// Of the elements of [begin, end) with key == threshold, keeps the first
    /// <paramref name="ties"/> and sets output to +0 at the others; output is untouched elsewhere
    /// (it may be x).
    /// </summary>
    [IntrinsicImplementation]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void TrimTies(ArrayView<float> x, ArrayView<float> output, long begin, long end, uint threshold, int ties)
    {
        if (!Vector256.IsHardwareAccelerated)
        {
            TopKLoops.TrimTies(x, output, begin, end, threshold, ties);
            return;
        }
        uint* keys = (uint*)x.LoadEffectiveAddressAsPtr();
        uint* target = (uint*)output.LoadEffectiveAddressAsPtr();
        var magnitude = Vector256.Create(Magnitude);
        var limit = Vector256.Create(threshold);
        var laneBits = Vector256.Create(1u, 2u, 4u, 8u, 16u, 32u, 64u, 128u);
        long i = begin;
        for (; i + 8 <= end; i += 8)
        {
            uint equal = Vector256.Equals(Vector256.Load(keys + i) & magnitude, limit).ExtractMostSignificantBits();
            while (equal != 0 && ties > 0)
            {
                equal &= equal - 1;
                ties--;
            }
            if (equal != 0)
            {
                var drop = Vector256.Equals(laneBits & Vector256.Create(equal), laneBits);
                Vector256.AndNot(Vector256.Load(target + i), drop).Store(target + i);
            }
        }
        for (; i < end; i++)
        {
            if ((keys[i] & Magnitude) == threshold)
            {
                if (ties > 0)
                {
                    ties--;
                }
                else
                {
                    target[i] = 0u;
                }
            }
        }
    }

    /// <summary>Counts elements of [begin, end) with key &gt; threshold (high 32 bits) and == threshold (low 32 bits).</summary>
    [IntrinsicImplementation]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static long Count(ArrayView<float> x, long begin, long end, uint threshold)
    {
        if (!Vector256.IsHardwareAccelerated)
        {
            return TopKLoops.Count(x, begin, end, threshold);
        }
        uint* keys = (uint*)x.LoadEffectiveAddressAsPtr();
        var magnitude = Vector256.Create(Magnitude);
        var limit = Vector256.Create(threshold);
        long greater = 0;
        long equal = 0;
        long i = begin;
        for (; i + 8 <= end; i += 8)
        {
            var key = Vector256.Load(keys + i) & magnitude;
            greater += BitOperations.PopCount(Vector256.GreaterThan(key, limit).ExtractMostSignificantBits());
            equal += BitOperations.PopCount(Vector256.Equals(key, limit).ExtractMostSignificantBits());
        }
        for (; i < end; i++)
        {
            uint key = keys[i] & Magnitude;
            greater += key > threshold ? 1 : 0;
            equal += key == threshold ? 1 : 0;
        }
        return (greater << 32) | equal;
    }

    /// <summary>
    /// Writes the kept (value, index) pairs of [begin, end) in index order to positions
    /// [<paramref name="position"/>, <paramref name="limit"/>): every key &gt; threshold and the first
    /// <paramref name="ties"/> keys == threshold. The CPU version left-packs eight lanes at a time
    /// with full-width stores while they end inside the range (lanes past the kept ones are
    /// overwritten by later entries of the same range), then finishes lane by lane.
    /// </summary>
    [IntrinsicImplementation]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Scatter(
        ArrayView<float> x, ArrayView<float> values, ArrayView<int> indices,
        long begin, long end, uint threshold, int position, int limit, int ties)
    {
        if (!Avx2.IsSupported)
        {
            TopKLoops.Scatter(x, values, indices, begin, end, threshold, position, limit, ties);
            return;
        }
        long i = LeftPackKept((uint*)x.LoadEffectiveAddressAsPtr(), null, begin, end, threshold,
            (uint*)values.LoadEffectiveAddressAsPtr(), (int*)indices.LoadEffectiveAddressAsPtr(), ref position, limit, ref ties);
        if (position < limit)
        {
            // The last few elements (a full range holds every kept one already).
            TopKLoops.Scatter(x, values, indices, i, end, threshold, position, limit, ties);
        }
    }

    /// <summary>
    /// The vector loop of <see cref="Scatter"/> and <see cref="CopyKept"/>: eight elements of
    /// [begin, end) at a time, keeps every key &gt; threshold and the first <paramref name="ties"/>
    /// keys == threshold, left-packed with full-width stores while they end inside [position, limit)
    /// (lanes past the kept ones are overwritten by later entries), lane by lane after that; an
    /// element's index is <paramref name="sourceIndex"/>[i], or i where that is null. Stops when
    /// fewer than eight elements are left or the range is full; returns where it stopped.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static long LeftPackKept(uint* source, int* sourceIndex, long begin, long end, uint threshold,
        uint* valueOut, int* indexOut, ref int position, int limit, ref int ties)
    {
        var magnitude = Vector256.Create(Magnitude);
        var limitKey = Vector256.Create(threshold);
        var laneOffsets = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
        int* packs = LeftPack.Table;
        long i = begin;
        for (; i + 8 <= end && position < limit; i += 8)
        {
            var bits = Vector256.Load(source + i);
            var key = bits & magnitude;
            uint keep = Vector256.GreaterThan(key, limitKey).ExtractMostSignificantBits();
            uint same = Vector256.Equals(key, limitKey).ExtractMostSignificantBits();
            while (same != 0 && ties > 0)
            {
                keep |= same & (0u - same);
                same &= same - 1;
                ties--;
            }
            var index = sourceIndex != null ? Vector256.Load(sourceIndex + i) : Vector256.Create((int)i) + laneOffsets;
            StoreKept(bits, index, keep, packs, valueOut, indexOut, ref position, limit);
        }
        return i;
    }

    /// <summary>
    /// Writes the lanes of <paramref name="bits"/> and <paramref name="index"/> set in
    /// <paramref name="keep"/>, in lane order, from <paramref name="position"/> on: one left-packed
    /// full-width store of each while eight lanes end inside the range (lanes past the kept ones are
    /// overwritten by later entries), else lane by lane up to <paramref name="limit"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreKept(Vector256<uint> bits, Vector256<int> index, uint keep, int* packs,
        uint* valueOut, int* indexOut, ref int position, int limit)
    {
        if (position + 8 <= limit)
        {
            var order = Vector256.Load(packs + 8 * keep);
            Avx2.PermuteVar8x32(bits, order.AsUInt32()).Store(valueOut + position);
            Avx2.PermuteVar8x32(index, order).Store(indexOut + position);
            position += BitOperations.PopCount(keep);
            return;
        }
        while (keep != 0 && position < limit)
        {
            int lane = BitOperations.TrailingZeroCount(keep);
            keep &= keep - 1;
            valueOut[position] = bits.GetElement(lane);
            indexOut[position] = index.GetElement(lane);
            position++;
        }
    }

    /// <summary>
    /// One pass of a staged encode: writes every element of [begin, end) with key &gt;= threshold, in
    /// index order, as (value, index) to positions [<paramref name="position"/>, position +
    /// <paramref name="slot"/>) of the stage (elements past the slot are counted but not written) and
    /// returns the counts of keys &gt; threshold (high 32 bits) and == threshold (low 32 bits). The
    /// CPU version left-packs eight lanes at a time like <see cref="Scatter"/>.
    /// </summary>
    [IntrinsicImplementation]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static long Stage(
        ArrayView<float> x, ArrayView<float> values, ArrayView<int> indices,
        long begin, long end, uint threshold, int position, int slot)
    {
        if (!Avx2.IsSupported)
        {
            return StageScalar(x, values, indices, begin, end, threshold, position, slot);
        }
        uint* source = (uint*)x.LoadEffectiveAddressAsPtr();
        uint* valueOut = (uint*)values.LoadEffectiveAddressAsPtr();
        int* indexOut = (int*)indices.LoadEffectiveAddressAsPtr();
        var magnitude = Vector256.Create(Magnitude);
        var limitKey = Vector256.Create(threshold);
        var laneOffsets = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
        int* packs = LeftPack.Table;
        int limit = position + slot;
        long greater = 0;
        long equal = 0;
        long i = begin;
        if (Avx512F.IsSupported)
        {
            // Sixteen lanes at a time with the AVX-512 compress (no table, half the iterations).
            var magnitude16 = Vector512.Create(Magnitude);
            var limitKey16 = Vector512.Create(threshold);
            var laneOffsets16 = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
            for (; i + 16 <= end && position + 16 <= limit; i += 16)
            {
                var bits = Vector512.Load(source + i);
                var key = bits & magnitude16;
                var above = Vector512.GreaterThan(key, limitKey16);
                var same = Vector512.Equals(key, limitKey16);
                var keep = above | same;
                greater += BitOperations.PopCount(above.ExtractMostSignificantBits());
                equal += BitOperations.PopCount(same.ExtractMostSignificantBits());
                Avx512F.Compress(Vector512<uint>.Zero, keep, bits).Store(valueOut + position);
                Avx512F.Compress(Vector512<int>.Zero, keep.AsInt32(), Vector512.Create((int)i) + laneOffsets16).Store(indexOut + position);
                position += BitOperations.PopCount(keep.ExtractMostSignificantBits());
            }
        }
        for (; i + 8 <= end; i += 8)
        {
            var bits = Vector256.Load(source + i);
            var key = bits & magnitude;
            uint above = Vector256.GreaterThan(key, limitKey).ExtractMostSignificantBits();
            uint same = Vector256.Equals(key, limitKey).ExtractMostSignificantBits();
            uint keep = above | same;
            greater += BitOperations.PopCount(above);
            equal += BitOperations.PopCount(same);
            // No branch on keep (at 5-10% kept it is as good as random): empty groups store too,
            // over the same places, which the next kept entries overwrite.
            StoreKept(bits, Vector256.Create((int)i) + laneOffsets, keep, packs, valueOut, indexOut, ref position, limit);
        }
        // The last few elements: the scalar twin, whose counts add to these (both halves stay below 2^32).
        return ((greater << 32) | equal) + StageScalar(x, values, indices, i, end, threshold, position, limit - position);
    }

    /// <summary>Scalar <see cref="Stage"/>.</summary>
    public static long StageScalar(
        ArrayView<float> x, ArrayView<float> values, ArrayView<int> indices,
        long begin, long end, uint threshold, int position, int slot)
    {
        int limit = position + slot;
        long greater = 0;
        long equal = 0;
        for (long i = begin; i < end; i++)
        {
            float v = x[i];
            uint key = Interop.FloatAsInt(v) & Magnitude;
            if (key < threshold)
            {
                continue;
            }
            greater += key > threshold ? 1 : 0;
            equal += key == threshold ? 1 : 0;
            if (position < limit)
            {
                values[position] = v;
                indices[position] = (int)i;
                position++;
            }
        }
        return (greater << 32) | equal;
    }

    /// <summary>
    /// Second pass of a staged encode: from the staged (value, index) pairs at [begin, end) (every
    /// key there is &gt;= threshold, those past the staged ones are never reached), writes every key
    /// &gt; threshold and the first <paramref name="ties"/> keys == threshold, in order, to positions
    /// [<paramref name="position"/>, <paramref name="limit"/>) of values and indices, and stops when
    /// the range is full.
    /// </summary>
    [IntrinsicImplementation]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void CopyKept(
        ArrayView<float> stagedValues, ArrayView<int> stagedIndices, long begin, long end, uint threshold,
        ArrayView<float> values, ArrayView<int> indices, int position, int limit, int ties)
    {
        if (!Avx2.IsSupported)
        {
            CopyKeptScalar(stagedValues, stagedIndices, begin, end, threshold, values, indices, position, limit, ties);
            return;
        }
        long i = LeftPackKept((uint*)stagedValues.LoadEffectiveAddressAsPtr(), (int*)stagedIndices.LoadEffectiveAddressAsPtr(),
            begin, end, threshold, (uint*)values.LoadEffectiveAddressAsPtr(), (int*)indices.LoadEffectiveAddressAsPtr(), ref position, limit, ref ties);
        CopyKeptScalar(stagedValues, stagedIndices, i, end, threshold, values, indices, position, limit, ties);
    }

    /// <summary>Scalar <see cref="CopyKept"/>.</summary>
    public static void CopyKeptScalar(
        ArrayView<float> stagedValues, ArrayView<int> stagedIndices, long begin, long end, uint threshold,
        ArrayView<float> values, ArrayView<int> indices, int position, int limit, int ties)
    {
        for (long i = begin; i < end && position < limit; i++)
        {
            float v = stagedValues[i];
            uint key = Interop.FloatAsInt(v) & Magnitude;
            bool keep = key > threshold;
            if (key == threshold && ties > 0)
            {
                ties--;
                keep = true;
            }
            if (keep)
            {
                values[position] = v;
                indices[position] = stagedIndices[i];
                position++;
            }
        }
    }

    /// <summary>For each 8-bit lane mask, the indices of its set lanes in increasing order, padded with 0.</summary>
    private static class LeftPack
    {
        /// <summary>256 rows of 8 ints, pinned for the life of the process.</summary>
        public static readonly int* Table = Build();

        private static int* Build()
        {
            var table = (int*)NativeMemory.AlignedAlloc(256 * 8 * sizeof(int), 32);
            for (int mask = 0; mask < 256; mask++)
            {
                int count = 0;
                for (int lane = 0; lane < 8; lane++)
                {
                    if ((mask & (1 << lane)) != 0)
                    {
                        table[8 * mask + count++] = lane;
                    }
                }
                while (count < 8)
                {
                    table[8 * mask + count++] = 0;
                }
            }
            return table;
        }
    }
}
