using ILGPU;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// Pooling on NCHW tensors: 2x2 max-pool with stride 2 (forward, backward through the saved argmax)
/// and global average pooling (forward, backward).
/// CPU references: <see cref="Reference.PoolReference"/>.
/// </summary>
public sealed class PoolKernels
{
    private readonly KernelLaunch launch;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int, int, ThreadRanges> maxPoolForward;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, ThreadRanges> maxPoolBackward;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, int, ThreadRanges> globalAvgForward;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, int, ThreadRanges> globalAvgBackward;

    /// <summary>Loads the kernels once for the accelerator of <paramref name="launch"/>.</summary>
    public PoolKernels(KernelLaunch launch)
    {
        this.launch = launch;
        maxPoolForward = launch.Load<ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int, int, ThreadRanges>(MaxPool2x2ForwardKernel);
        maxPoolBackward = launch.Load<ArrayView<float>, ArrayView<int>, ArrayView<float>, int, ThreadRanges>(MaxPool2x2BackwardKernel);
        globalAvgForward = launch.Load<ArrayView<float>, ArrayView<float>, int, ThreadRanges>(GlobalAvgPoolForwardKernel);
        globalAvgBackward = launch.Load<ArrayView<float>, ArrayView<float>, int, ThreadRanges>(GlobalAvgPoolBackwardKernel);
    }

    /// <summary>
    /// 2x2 max-pool, stride 2: x <c>[batch, channels, height, width]</c> to
    /// y <c>[batch, channels, height / 2, width / 2]</c> (floor: an odd last row or column is dropped).
    /// <paramref name="argmax"/> (same shape as y) receives the flat index into x of each maximum,
    /// the first in row-major window order on ties; <see cref="MaxPool2x2Backward"/> needs it.
    /// </summary>
    public void MaxPool2x2Forward(ArrayView<float> x, ArrayView<float> y, ArrayView<int> argmax, int batch, int channels, int height, int width)
    {
        HostCheck.Positive(batch, "max pool batch");
        HostCheck.Positive(channels, "max pool channels");
        HostCheck.Positive(height / 2, "max pool output height (input height / 2)");
        HostCheck.Positive(width / 2, "max pool output width (input width / 2)");
        long inputLength = (long)batch * channels * height * width;
        long outputLength = (long)batch * channels * (height / 2) * (width / 2);
        HostCheck.Count(inputLength, "max pool forward input");
        HostCheck.Length(x, inputLength, "max pool forward input");
        HostCheck.Length(y, outputLength, "max pool forward output");
        HostCheck.Length(argmax, outputLength, "max pool forward argmax");
        int n = HostCheck.Count(outputLength, "max pool forward");
        var (t, r) = Ranges(n);
        maxPoolForward(t, x, y, argmax, height, width, height / 2, width / 2, r);
    }

    /// <summary>
    /// dx[argmax[i]] += dy[i] for every output element i of the forward pass. dy and argmax have the
    /// output's length, dx the input's. The 2x2 windows are disjoint, so no two outputs write the same
    /// element. argmax must come from <see cref="MaxPool2x2Forward"/> for this dx; an index outside dx
    /// is skipped rather than written (it is device data, so it is not checked on the host).
    /// </summary>
    public void MaxPool2x2Backward(ArrayView<float> dy, ArrayView<int> argmax, ArrayView<float> dx)
    {
        HostCheck.SameLength(dy, argmax, "max pool backward gradient and argmax");
        HostCheck.Positive(dy.Length, "max pool backward gradient length");
        int n = HostCheck.Count(dy.Length, "max pool backward");
        int inputLength = HostCheck.Count(dx.Length, "max pool backward input gradient");
        HostCheck.Length(dx, 4L * n, "max pool backward input gradient");
        var (t, r) = Ranges(n);
        maxPoolBackward(t, dy, argmax, dx, inputLength, r);
    }

    /// <summary>y[b, c] = mean over s of x[b, c, s]; x <c>[batch, channels, spatial]</c>, y <c>[batch, channels]</c>.</summary>
    public void GlobalAvgPoolForward(ArrayView<float> x, ArrayView<float> y, int batch, int channels, int spatial)
    {
        HostCheck.Positive(batch, "global average pool batch");
        HostCheck.Positive(channels, "global average pool channels");
        HostCheck.Positive(spatial, "global average pool spatial");
        long inputLength = (long)batch * channels * spatial;
        HostCheck.Count(inputLength, "global average pool forward input");
        HostCheck.Length(x, inputLength, "global average pool forward input");
        HostCheck.Length(y, (long)batch * channels, "global average pool forward output");
        int rows = HostCheck.Count((long)batch * channels, "global average pool forward");
        var (t, r) = Ranges(rows);
        globalAvgForward(t, x, y, spatial, r);
    }

    /// <summary>dx[b, c, s] += dy[b, c] / spatial; dy <c>[batch, channels]</c>, dx <c>[batch, channels, spatial]</c>.</summary>
    public void GlobalAvgPoolBackward(ArrayView<float> dy, ArrayView<float> dx, int batch, int channels, int spatial)
    {
        HostCheck.Positive(batch, "global average pool batch");
        HostCheck.Positive(channels, "global average pool channels");
        HostCheck.Positive(spatial, "global average pool spatial");
        long inputLength = (long)batch * channels * spatial;
        HostCheck.Length(dy, (long)batch * channels, "global average pool backward output gradient");
        HostCheck.Length(dx, inputLength, "global average pool backward input gradient");
        int n = HostCheck.Count(inputLength, "global average pool backward");
        var (t, r) = Ranges(n);
        globalAvgBackward(t, dy, dx, spatial, r);
    }

    /// <summary>Contiguous blocks per thread on the CPU accelerator, the grid stride on GPUs (<see cref="ThreadRanges"/>).</summary>
    private (int Threads, ThreadRanges Ranges) Ranges(int n)
    {
        int t = launch.Threads(n);
        return (t, ThreadRanges.For(n, t, launch.IsCpu));
    }

    [GpuKernel]
    internal static void MaxPool2x2ForwardKernel(
        Index1D index, ArrayView<float> x, ArrayView<float> y, ArrayView<int> argmax,
        int height, int width, int outHeight, int outWidth, ThreadRanges r) =>
        PoolRanges.MaxPool2x2Forward(x, y, argmax, height, width, outHeight, outWidth, r.Begin(index), r.End(index), r.Step);

    [GpuKernel]
    internal static void MaxPool2x2BackwardKernel(
        Index1D index, ArrayView<float> dy, ArrayView<int> argmax, ArrayView<float> dx, int inputLength, ThreadRanges r) =>
        PoolRanges.MaxPool2x2Backward(dy, argmax, dx, inputLength, r.Begin(index), r.End(index), r.Step);

    [GpuKernel]
    internal static void GlobalAvgPoolForwardKernel(Index1D index, ArrayView<float> x, ArrayView<float> y, int spatial, ThreadRanges ranges)
    {
        for (int r = (int)ranges.Begin(index); r < ranges.End(index); r += ranges.Step)
        {
            long offset = (long)r * spatial;
            float sum = 0f;
            for (int s = 0; s < spatial; s++)
            {
                sum += x[offset + s];
            }
            y[r] = sum / spatial;
        }
    }

    [GpuKernel]
    internal static void GlobalAvgPoolBackwardKernel(Index1D index, ArrayView<float> dy, ArrayView<float> dx, int spatial, ThreadRanges r)
    {
        for (int i = (int)r.Begin(index); i < r.End(index); i += r.Step)
        {
            dx[i] += dy[i / spatial] / spatial;
        }
    }
}
