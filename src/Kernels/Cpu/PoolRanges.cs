using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ILGPU;
using ILGPU.IR.Intrinsics;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// The per-thread loops of the 2x2 max-pool (<see cref="PoolKernels"/>). On the CPU accelerator a
/// thread's contiguous block of outputs runs as plain .NET over raw pointers, one output row at a
/// time (no division per element; ILGPU's CPU kernels take ~10 ns per element of the plain loop:
/// 5 ms for the small CNN's first pool); GPU backends compile the scalar twin of each (same name +
/// "Scalar", see <see cref="SimdRedirects"/>). Same results, first maximum in window order on ties.
/// </summary>
internal static unsafe class PoolRanges
{
    /// <summary>Outputs i in [begin, end) (step 1) or begin, begin + step, ... of the 2x2 max-pool forward.</summary>
    [SimdHelper(nameof(MaxPool2x2ForwardScalar))]
    [IntrinsicImplementation]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MaxPool2x2Forward(ArrayView<float> x, ArrayView<float> y, ArrayView<int> argmax,
        int height, int width, int outHeight, int outWidth, long begin, long end, int step)
    {
        if (step != 1 || begin >= end)
        {
            MaxPool2x2ForwardScalar(x, y, argmax, height, width, outHeight, outWidth, begin, end, step);
            return;
        }
        float* px = (float*)x.LoadEffectiveAddressAsPtr();
        float* py = (float*)y.LoadEffectiveAddressAsPtr();
        int* pa = (int*)argmax.LoadEffectiveAddressAsPtr();
        long i = begin;
        while (i < end)
        {
            long row = i / outWidth;
            int ow = (int)(i - row * outWidth);
            int oh = (int)(row % outHeight);
            long plane = row / outHeight;
            long rowEnd = Math.Min(end, (row + 1) * outWidth);
            int top = (int)((plane * height + 2 * oh) * width);
            if (Avx2.IsSupported)
            {
                // 8 outputs at a time, branch-free (the winner of a window is data-dependent: the
                // scalar loop mispredicts about every other comparison).
                for (; i + 8 <= rowEnd; i += 8, ow += 8)
                {
                    MaxPool8(px, py + i, pa + i, top + 2 * ow, width);
                }
            }
            for (; i < rowEnd; i++, ow++)
            {
                int at = top + 2 * ow;
                int best = at;
                float bestValue = px[at];
                float v = px[at + 1];
                if (v > bestValue)
                {
                    best = at + 1;
                    bestValue = v;
                }
                v = px[at + width];
                if (v > bestValue)
                {
                    best = at + width;
                    bestValue = v;
                }
                v = px[at + width + 1];
                if (v > bestValue)
                {
                    best = at + width + 1;
                    bestValue = v;
                }
                py[i] = bestValue;
                pa[i] = best;
            }
        }
    }

    /// <summary>
    /// Outputs of the 8 windows starting at x[at], x[at + 2], ..., x[at + 14] (rows at and at +
    /// width): the same comparisons as the scalar loop (strictly greater wins, in window order), so
    /// the same value and argmax, NaN included.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MaxPool8(float* x, float* y, int* argmax, int at, int width)
    {
        var (topEven, topOdd) = Deinterleave(x + at);
        var (bottomEven, bottomOdd) = Deinterleave(x + at + width);
        var index = Vector256.Create(at) + Vector256.Create(0, 2, 4, 6, 8, 10, 12, 14);
        var bestValue = topEven;
        var best = index;
        var greater = Vector256.GreaterThan(topOdd, bestValue);
        bestValue = Vector256.ConditionalSelect(greater, topOdd, bestValue);
        best = Vector256.ConditionalSelect(greater.AsInt32(), index + Vector256.Create(1), best);
        greater = Vector256.GreaterThan(bottomEven, bestValue);
        bestValue = Vector256.ConditionalSelect(greater, bottomEven, bestValue);
        best = Vector256.ConditionalSelect(greater.AsInt32(), index + Vector256.Create(width), best);
        greater = Vector256.GreaterThan(bottomOdd, bestValue);
        bestValue = Vector256.ConditionalSelect(greater, bottomOdd, bestValue);
        best = Vector256.ConditionalSelect(greater.AsInt32(), index + Vector256.Create(width + 1), best);
        Vector256.Store(bestValue, y);
        Vector256.Store(best, argmax);
    }

    /// <summary>The 8 even- and 8 odd-indexed floats of source[0 .. 16), in order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<float> Even, Vector256<float> Odd) Deinterleave(float* source)
    {
        var a = Vector256.Load(source);
        var b = Vector256.Load(source + 8);
        // Per 128-bit lane: [a0 a2 b0 b2 | a4 a6 b4 b6]; the 64-bit permute puts the pairs in order.
        var even = Avx.Shuffle(a, b, 0b10_00_10_00);
        var odd = Avx.Shuffle(a, b, 0b11_01_11_01);
        return (Avx2.Permute4x64(even.AsDouble(), 0b11_01_10_00).AsSingle(), Avx2.Permute4x64(odd.AsDouble(), 0b11_01_10_00).AsSingle());
    }

    /// <summary>Scalar twin of <see cref="MaxPool2x2Forward"/>.</summary>
    public static void MaxPool2x2ForwardScalar(ArrayView<float> x, ArrayView<float> y, ArrayView<int> argmax,
        int height, int width, int outHeight, int outWidth, long begin, long end, int step)
    {
        for (long i = begin; i < end; i += step)
        {
            int ow = (int)(i % outWidth);
            int oh = (int)(i / outWidth % outHeight);
            int plane = (int)(i / ((long)outWidth * outHeight));
            int top = (plane * height + 2 * oh) * width + 2 * ow;
            int best = top;
            float bestValue = x[top];
            float v = x[top + 1];
            if (v > bestValue)
            {
                best = top + 1;
                bestValue = v;
            }
            v = x[top + width];
            if (v > bestValue)
            {
                best = top + width;
                bestValue = v;
            }
            v = x[top + width + 1];
            if (v > bestValue)
            {
                best = top + width + 1;
                bestValue = v;
            }
            y[i] = bestValue;
            argmax[i] = best;
        }
    }

    /// <summary>dx[argmax[i]] += dy[i] for the thread's outputs; an index outside dx is skipped.</summary>
    [SimdHelper(nameof(MaxPool2x2BackwardScalar))]
    [IntrinsicImplementation]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MaxPool2x2Backward(ArrayView<float> dy, ArrayView<int> argmax, ArrayView<float> dx, int inputLength,
        long begin, long end, int step)
    {
        if (step != 1 || begin >= end)
        {
            MaxPool2x2BackwardScalar(dy, argmax, dx, inputLength, begin, end, step);
            return;
        }
        float* pdy = (float*)dy.LoadEffectiveAddressAsPtr();
        int* pa = (int*)argmax.LoadEffectiveAddressAsPtr();
        float* pdx = (float*)dx.LoadEffectiveAddressAsPtr();
        for (long i = begin; i < end; i++)
        {
            int j = pa[i];
            if ((uint)j < (uint)inputLength)
            {
                pdx[j] += pdy[i];
            }
        }
    }

    /// <summary>Scalar twin of <see cref="MaxPool2x2Backward"/>.</summary>
    public static void MaxPool2x2BackwardScalar(ArrayView<float> dy, ArrayView<int> argmax, ArrayView<float> dx, int inputLength,
        long begin, long end, int step)
    {
        for (long i = begin; i < end; i += step)
        {
            int j = argmax[i];
            if (j >= 0 && j < inputLength)
            {
                dx[j] += dy[i];
            }
        }
    }
}
