using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using ILGPU;
using ILGPU.IR.Intrinsics;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// The per-thread loops of <see cref="ActivationKernels"/>. Each walks one thread's elements
/// (begin, begin + step, ... &lt; end): on the CPU accelerator a contiguous block (step 1) run as
/// plain .NET over raw pointers with Vector256; GPU backends compile the scalar twin of each
/// (same name + "Scalar", see <see cref="SimdRedirects"/>).
/// </summary>
internal static unsafe class ElementwiseRanges
{
    /// <summary>y = max(x, 0).</summary>
    [SimdHelper(nameof(ReluScalar))]
    [IntrinsicImplementation]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Relu(ArrayView<float> x, ArrayView<float> y, long begin, long end, int step)
    {
        if (step != 1 || !Vector256.IsHardwareAccelerated || begin >= end)
        {
            ReluScalar(x, y, begin, end, step);
            return;
        }
        float* px = (float*)x.LoadEffectiveAddressAsPtr();
        float* py = (float*)y.LoadEffectiveAddressAsPtr();
        long i = begin;
        for (; i + 8 <= end; i += 8)
        {
            Vector256.Store(Vector256.Max(Vector256.Load(px + i), Vector256<float>.Zero), py + i);
        }
        for (; i < end; i++)
        {
            py[i] = px[i] > 0f ? px[i] : 0f;
        }
    }

    /// <summary>Scalar twin of <see cref="Relu"/>.</summary>
    public static void ReluScalar(ArrayView<float> x, ArrayView<float> y, long begin, long end, int step)
    {
        for (long i = begin; i < end; i += step)
        {
            float v = x[i];
            y[i] = v > 0f ? v : 0f;
        }
    }

    /// <summary>dx += dy where y &gt; 0.</summary>
    [SimdHelper(nameof(ReluBackwardScalar))]
    [IntrinsicImplementation]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ReluBackward(ArrayView<float> y, ArrayView<float> dy, ArrayView<float> dx, long begin, long end, int step)
    {
        if (step != 1 || !Vector256.IsHardwareAccelerated || begin >= end)
        {
            ReluBackwardScalar(y, dy, dx, begin, end, step);
            return;
        }
        float* py = (float*)y.LoadEffectiveAddressAsPtr();
        float* pdy = (float*)dy.LoadEffectiveAddressAsPtr();
        float* pdx = (float*)dx.LoadEffectiveAddressAsPtr();
        long i = begin;
        for (; i + 8 <= end; i += 8)
        {
            var positive = Vector256.GreaterThan(Vector256.Load(py + i), Vector256<float>.Zero);
            var add = Vector256.BitwiseAnd(Vector256.Load(pdy + i), positive);
            Vector256.Store(Vector256.Load(pdx + i) + add, pdx + i);
        }
        for (; i < end; i++)
        {
            if (py[i] > 0f)
            {
                pdx[i] += pdy[i];
            }
        }
    }

    /// <summary>Scalar twin of <see cref="ReluBackward"/>.</summary>
    public static void ReluBackwardScalar(ArrayView<float> y, ArrayView<float> dy, ArrayView<float> dx, long begin, long end, int step)
    {
        for (long i = begin; i < end; i += step)
        {
            if (y[i] > 0f)
            {
                dx[i] += dy[i];
            }
        }
    }

    /// <summary>For words w in the range: bit j of bits[w] = (y[32 w + j] &gt; 0), for the elements below n (higher bits 0).</summary>
    [SimdHelper(nameof(PackPositiveScalar))]
    [IntrinsicImplementation]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackPositive(ArrayView<float> y, ArrayView<int> bits, int n, long begin, long end, int step)
    {
        if (step != 1 || !Vector256.IsHardwareAccelerated || begin >= end)
        {
            PackPositiveScalar(y, bits, n, begin, end, step);
            return;
        }
        float* py = (float*)y.LoadEffectiveAddressAsPtr();
        int* pb = (int*)bits.LoadEffectiveAddressAsPtr();
        long w = begin;
        for (; w < end && (w + 1) * 32 <= n; w++)
        {
            float* p = py + w * 32;
            uint word = 0;
            for (int g = 0; g < 4; g++)
            {
                word |= Vector256.GreaterThan(Vector256.Load(p + g * 8), Vector256<float>.Zero).ExtractMostSignificantBits() << (g * 8);
            }
            pb[w] = (int)word;
        }
        if (w < end)
        {
            PackPositiveScalar(y, bits, n, w, end, 1);
        }
    }

    /// <summary>Scalar twin of <see cref="PackPositive"/>.</summary>
    public static void PackPositiveScalar(ArrayView<float> y, ArrayView<int> bits, int n, long begin, long end, int step)
    {
        for (long w = begin; w < end; w += step)
        {
            int word = 0;
            long first = w * 32;
            for (int j = 0; j < 32 && first + j < n; j++)
            {
                if (y[first + j] > 0f)
                {
                    word |= 1 << j;
                }
            }
            bits[w] = word;
        }
    }

    /// <summary>For words w in the range: dy[32 w + j] = 0 where bit j of bits[w] is clear, for the elements of dy.</summary>
    [SimdHelper(nameof(KeepWhereSetScalar))]
    [IntrinsicImplementation]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void KeepWhereSet(ArrayView<int> bits, ArrayView<float> dy, long begin, long end, int step)
    {
        if (step != 1 || !Vector256.IsHardwareAccelerated || begin >= end)
        {
            KeepWhereSetScalar(bits, dy, begin, end, step);
            return;
        }
        float* pdy = (float*)dy.LoadEffectiveAddressAsPtr();
        int* pb = (int*)bits.LoadEffectiveAddressAsPtr();
        long n = dy.Length;
        var lanes = Vector256.Create(1, 2, 4, 8, 16, 32, 64, 128);
        long w = begin;
        for (; w < end && (w + 1) * 32 <= n; w++)
        {
            float* p = pdy + w * 32;
            int word = pb[w];
            for (int g = 0; g < 4; g++)
            {
                var keep = Vector256.Equals(Vector256.Create((word >> (g * 8)) & 0xFF) & lanes, lanes).AsSingle();
                Vector256.Store(Vector256.Load(p + g * 8) & keep, p + g * 8);
            }
        }
        if (w < end)
        {
            KeepWhereSetScalar(bits, dy, w, end, 1);
        }
    }

    /// <summary>Scalar twin of <see cref="KeepWhereSet"/>.</summary>
    public static void KeepWhereSetScalar(ArrayView<int> bits, ArrayView<float> dy, long begin, long end, int step)
    {
        long n = dy.Length;
        for (long w = begin; w < end; w += step)
        {
            int word = bits[w];
            long first = w * 32;
            for (int j = 0; j < 32 && first + j < n; j++)
            {
                if ((word & (1 << j)) == 0)
                {
                    dy[first + j] = 0f;
                }
            }
        }
    }

    /// <summary>c = a + alpha * b (alpha 1 is the residual add; c may be b for an axpy).</summary>
    [SimdHelper(nameof(AddScaledScalar))]
    [IntrinsicImplementation]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AddScaled(ArrayView<float> a, ArrayView<float> b, float alpha, ArrayView<float> c, long begin, long end, int step)
    {
        if (step != 1 || !Vector256.IsHardwareAccelerated || begin >= end)
        {
            AddScaledScalar(a, b, alpha, c, begin, end, step);
            return;
        }
        float* pa = (float*)a.LoadEffectiveAddressAsPtr();
        float* pb = (float*)b.LoadEffectiveAddressAsPtr();
        float* pc = (float*)c.LoadEffectiveAddressAsPtr();
        var va = Vector256.Create(alpha);
        long i = begin;
        for (; i + 8 <= end; i += 8)
        {
            Vector256.Store(Vector256.Load(pa + i) + va * Vector256.Load(pb + i), pc + i);
        }
        for (; i < end; i++)
        {
            pc[i] = pa[i] + alpha * pb[i];
        }
    }

    /// <summary>Scalar twin of <see cref="AddScaled"/>.</summary>
    public static void AddScaledScalar(ArrayView<float> a, ArrayView<float> b, float alpha, ArrayView<float> c, long begin, long end, int step)
    {
        for (long i = begin; i < end; i += step)
        {
            c[i] = a[i] + alpha * b[i];
        }
    }

    /// <summary>For planes p in the range: y[p * spatial + s] += bias[p % channels].</summary>
    [SimdHelper(nameof(BiasPlanesScalar))]
    [IntrinsicImplementation]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void BiasPlanes(ArrayView<float> y, ArrayView<float> bias, int channels, int spatial, long begin, long end, int step)
    {
        if (step != 1 || !Vector256.IsHardwareAccelerated || begin >= end)
        {
            BiasPlanesScalar(y, bias, channels, spatial, begin, end, step);
            return;
        }
        float* py = (float*)y.LoadEffectiveAddressAsPtr();
        float* pb = (float*)bias.LoadEffectiveAddressAsPtr();
        for (long p = begin; p < end; p++)
        {
            float* row = py + p * spatial;
            float b = pb[p % channels];
            var vb = Vector256.Create(b);
            int s = 0;
            for (; s + 8 <= spatial; s += 8)
            {
                Vector256.Store(Vector256.Load(row + s) + vb, row + s);
            }
            for (; s < spatial; s++)
            {
                row[s] += b;
            }
        }
    }

    /// <summary>Scalar twin of <see cref="BiasPlanes"/>.</summary>
    public static void BiasPlanesScalar(ArrayView<float> y, ArrayView<float> bias, int channels, int spatial, long begin, long end, int step)
    {
        for (long p = begin; p < end; p += step)
        {
            float b = bias[p % channels];
            long offset = p * spatial;
            for (int s = 0; s < spatial; s++)
            {
                y[offset + s] += b;
            }
        }
    }

    /// <summary>For channels c in the range: dBias[c] += sum over batch and spatial of dy[b, c, s].</summary>
    [SimdHelper(nameof(BiasGradientScalar))]
    [IntrinsicImplementation]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void BiasGradient(ArrayView<float> dy, ArrayView<float> dBias, int batch, int channels, int spatial, long begin, long end, int step)
    {
        if (step != 1 || !Vector256.IsHardwareAccelerated || begin >= end)
        {
            BiasGradientScalar(dy, dBias, batch, channels, spatial, begin, end, step);
            return;
        }
        float* pdy = (float*)dy.LoadEffectiveAddressAsPtr();
        float* pdb = (float*)dBias.LoadEffectiveAddressAsPtr();
        for (long c = begin; c < end; c++)
        {
            var acc = Vector256<float>.Zero;
            float tail = 0f;
            for (int b = 0; b < batch; b++)
            {
                float* row = pdy + ((long)b * channels + c) * spatial;
                int s = 0;
                for (; s + 8 <= spatial; s += 8)
                {
                    acc += Vector256.Load(row + s);
                }
                for (; s < spatial; s++)
                {
                    tail += row[s];
                }
            }
            pdb[c] += Vector256.Sum(acc) + tail;
        }
    }

    /// <summary>Scalar twin of <see cref="BiasGradient"/>.</summary>
    public static void BiasGradientScalar(ArrayView<float> dy, ArrayView<float> dBias, int batch, int channels, int spatial, long begin, long end, int step)
    {
        for (long c = begin; c < end; c += step)
        {
            float sum = 0f;
            for (int b = 0; b < batch; b++)
            {
                long offset = ((long)b * channels + c) * spatial;
                for (int s = 0; s < spatial; s++)
                {
                    sum += dy[offset + s];
                }
            }
            dBias[c] += sum;
        }
    }
}
