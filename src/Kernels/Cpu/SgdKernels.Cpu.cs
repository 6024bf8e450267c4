using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using ILGPU;
using ILGPU.IR.Intrinsics;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// The CPU accelerator's SGD step: one contiguous block per thread (a grid stride would have the two
/// cores write alternate elements of the same cache lines). <see cref="CpuKernelAttribute"/> kernels.
/// </summary>
public sealed partial class SgdKernels
{
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, float, float, ThreadRanges>? stepCpu;

    private void LoadCpu() =>
        stepCpu = launch.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, float, float, float, ThreadRanges>(StepCpuKernel);

    private void StepCpu(
        int threads, ArrayView<float> parameters, ArrayView<float> gradients, ArrayView<float> momentumBuffer,
        float learningRate, float momentum, float weightDecay, int n) =>
        // Without momentum the buffer is neither read nor written; the parameters stand in for an empty one.
        stepCpu!(threads, parameters, gradients, momentum == 0f ? parameters : momentumBuffer, learningRate, momentum, weightDecay,
            ThreadRanges.For(n, threads, contiguous: true));

    [CpuKernel]
    internal static void StepCpuKernel(
        Index1D index, ArrayView<float> parameters, ArrayView<float> gradients, ArrayView<float> momentumBuffer,
        float learningRate, float momentum, float weightDecay, ThreadRanges ranges) =>
        SgdRanges.Step(parameters, gradients, momentumBuffer, learningRate, momentum, weightDecay, ranges.Begin(index), ranges.End(index));
}

/// <summary>The SGD update over [begin, end) as plain .NET over raw pointers, Vector256 with a scalar tail.</summary>
internal static unsafe class SgdRanges
{
    /// <summary>As <see cref="SgdKernels.MomentumStepKernel"/> (or the plain step when momentum is 0), in the same operation order.</summary>
    [IntrinsicImplementation]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Step(
        ArrayView<float> parameters, ArrayView<float> gradients, ArrayView<float> momentumBuffer,
        float learningRate, float momentum, float weightDecay, long begin, long end)
    {
        float* p = (float*)parameters.LoadEffectiveAddressAsPtr();
        float* g = (float*)gradients.LoadEffectiveAddressAsPtr();
        float* m = (float*)momentumBuffer.LoadEffectiveAddressAsPtr();
        var lr = Vector256.Create(learningRate);
        var mu = Vector256.Create(momentum);
        var wd = Vector256.Create(weightDecay);
        long i = begin;
        if (momentum == 0f)
        {
            for (; i + 8 <= end; i += 8)
            {
                var pv = Vector256.Load(p + i);
                Vector256.Store(pv - lr * (Vector256.Load(g + i) + wd * pv), p + i);
            }
            for (; i < end; i++)
            {
                p[i] -= learningRate * (g[i] + weightDecay * p[i]);
            }
            return;
        }
        for (; i + 8 <= end; i += 8)
        {
            var pv = Vector256.Load(p + i);
            var buffer = mu * Vector256.Load(m + i) + (Vector256.Load(g + i) + wd * pv);
            Vector256.Store(buffer, m + i);
            Vector256.Store(pv - lr * buffer, p + i);
        }
        for (; i < end; i++)
        {
            float pv = p[i];
            float buffer = momentum * m[i] + (g[i] + weightDecay * pv);
            m[i] = buffer;
            p[i] = pv - learningRate * buffer;
        }
    }
}
