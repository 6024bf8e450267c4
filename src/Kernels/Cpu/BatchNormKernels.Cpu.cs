using ILGPU;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// The CPU accelerator's batch-norm: each launched thread (one per core) takes a contiguous range
/// of channels and runs the Vector256 passes of <see cref="BatchNormPlanes"/> over each channel's
/// planes (statistics, then normalisation with the epilogue; backward: sums, then the gradients).
/// A channel's planes are re-read from cache by its second pass. <see cref="CpuKernelAttribute"/>
/// kernels: never compiled for a GPU backend.
/// </summary>
public sealed partial class BatchNormKernels
{
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormArgs, ThreadRanges>? forwardCpu;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormArgs, ThreadRanges>? backwardCpu;

    private void LoadCpu()
    {
        forwardCpu = launch.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormArgs, ThreadRanges>(ForwardCpuKernel);
        backwardCpu = launch.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormArgs, ThreadRanges>(BackwardCpuKernel);
    }

    private void ForwardCpu(
        ArrayView<float> x, ArrayView<float> y, ArrayView<float> residual, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> mean, ArrayView<float> invStd, ArrayView<float> runningMean, ArrayView<float> runningVar, BatchNormArgs args)
    {
        int t = launch.Threads(args.Channels);
        forwardCpu!(t, x, y, residual, gamma, beta, mean, invStd, runningMean, runningVar, args, ThreadRanges.For(args.Channels, t, contiguous: true));
    }

    private void BackwardCpu(
        ArrayView<float> x, ArrayView<float> y, ArrayView<float> dy, ArrayView<float> gamma, ArrayView<float> mean, ArrayView<float> invStd,
        ArrayView<float> dx, ArrayView<float> dGamma, ArrayView<float> dBeta, ArrayView<float> dResidual, BatchNormArgs args)
    {
        int t = launch.Threads(args.Channels);
        backwardCpu!(t, x, y, dy, gamma, mean, invStd, dx, dGamma, dBeta, dResidual, args, ThreadRanges.For(args.Channels, t, contiguous: true));
    }

    [CpuKernel]
    internal static void ForwardCpuKernel(
        Index1D index, ArrayView<float> x, ArrayView<float> y, ArrayView<float> residual, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> mean, ArrayView<float> invStd, ArrayView<float> runningMean, ArrayView<float> runningVar,
        BatchNormArgs args, ThreadRanges channels) =>
        BatchNormPlanes.Forward(x, y, residual, gamma, beta, mean, invStd, runningMean, runningVar, args, (int)channels.Begin(index), (int)channels.End(index));

    [CpuKernel]
    internal static void BackwardCpuKernel(
        Index1D index, ArrayView<float> x, ArrayView<float> y, ArrayView<float> dy, ArrayView<float> gamma,
        ArrayView<float> mean, ArrayView<float> invStd, ArrayView<float> dx, ArrayView<float> dGamma, ArrayView<float> dBeta,
        ArrayView<float> dResidual, BatchNormArgs args, ThreadRanges channels) =>
        BatchNormPlanes.Backward(x, y, dy, gamma, mean, invStd, dx, dGamma, dBeta, dResidual, args, (int)channels.Begin(index), (int)channels.End(index));
}
