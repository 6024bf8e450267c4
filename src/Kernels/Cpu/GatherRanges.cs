using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.IR.Intrinsics;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// The per-thread loop of <see cref="GatherKernels.Subsample"/>. On the CPU accelerator a thread's
/// contiguous block of outputs runs as plain .NET over raw pointers, one output row at a time (ILGPU's
/// CPU kernels take several ns per element of the plain loop: 3 ms for ResNet-18's first shortcut
/// input); GPU backends compile the scalar twin (same name + "Scalar", see <see cref="SimdRedirects"/>).
/// </summary>
internal static unsafe class GatherRanges
{
    /// <summary>destination[i] for i in the thread's outputs: the subsample's element of source.</summary>
    [SimdHelper(nameof(SubsampleScalar))]
    [IntrinsicImplementation]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Subsample(ArrayView<float> source, ArrayView<float> destination,
        int height, int width, int stride, int outHeight, int outWidth, long begin, long end, int step)
    {
        if (step != 1 || begin >= end)
        {
            SubsampleScalar(source, destination, height, width, stride, outHeight, outWidth, begin, end, step);
            return;
        }
        float* src = (float*)source.LoadEffectiveAddressAsPtr();
        float* dst = (float*)destination.LoadEffectiveAddressAsPtr();
        long i = begin;
        while (i < end)
        {
            long row = i / outWidth;
            int ow = (int)(i - row * outWidth);
            int oh = (int)(row % outHeight);
            long plane = row / outHeight;
            long rowEnd = Math.Min(end, (row + 1) * outWidth);
            float* line = src + (plane * height + (long)oh * stride) * width;
            for (; i < rowEnd; i++, ow++)
            {
                dst[i] = line[(long)ow * stride];
            }
        }
    }

    /// <summary>Scalar twin of <see cref="Subsample"/>.</summary>
    public static void SubsampleScalar(ArrayView<float> source, ArrayView<float> destination,
        int height, int width, int stride, int outHeight, int outWidth, long begin, long end, int step)
    {
        long outPlane = (long)outHeight * outWidth;
        for (long i = begin; i < end; i += step)
        {
            long plane = i / outPlane;
            long r = i - plane * outPlane;
            long oh = r / outWidth;
            long ow = r - oh * outWidth;
            destination[i] = source[(plane * height + oh * stride) * width + ow * stride];
        }
    }
}
