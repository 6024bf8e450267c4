using ILGPU;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// Element-wise ops: ReLU (forward, backward), residual add and its backward (a copy-accumulate),
/// per-channel bias on NCHW tensors (forward, backward), scale-accumulate and fill, and the 1-bit
/// form of a ReLU's mask (what a backward needs of a ReLU output it does not otherwise keep).
/// CPU references: <see cref="Reference.ActivationReference"/>.
/// </summary>
public sealed class ActivationKernels
{
    private readonly KernelLaunch launch;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ThreadRanges> reluForward;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ThreadRanges> reluBackward;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, float, ArrayView<float>, ThreadRanges> addScaled;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, int, int, ThreadRanges> biasForward;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, int, int, int, ThreadRanges> biasBackward;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<int>, int, ThreadRanges> packPositive;
    private readonly Action<Index1D, ArrayView<int>, ArrayView<float>, ThreadRanges> keepWhereSet;

    /// <summary>Loads the kernels once for the accelerator of <paramref name="launch"/>.</summary>
    public ActivationKernels(KernelLaunch launch)
    {
        this.launch = launch;
        reluForward = launch.Load<ArrayView<float>, ArrayView<float>, ThreadRanges>(ReluForwardKernel);
        reluBackward = launch.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ThreadRanges>(ReluBackwardKernel);
        addScaled = launch.Load<ArrayView<float>, ArrayView<float>, float, ArrayView<float>, ThreadRanges>(AddScaledKernel);
        biasForward = launch.Load<ArrayView<float>, ArrayView<float>, int, int, ThreadRanges>(BiasForwardKernel);
        biasBackward = launch.Load<ArrayView<float>, ArrayView<float>, int, int, int, ThreadRanges>(BiasBackwardKernel);
        packPositive = launch.Load<ArrayView<float>, ArrayView<int>, int, ThreadRanges>(PackPositiveKernel);
        keepWhereSet = launch.Load<ArrayView<int>, ArrayView<float>, ThreadRanges>(KeepWhereSetKernel);
    }

    /// <summary>Ints of a bit mask over <paramref name="length"/> elements: one bit each, 32 per int.</summary>
    public static long MaskLength(long length) => (length + 31) / 32;

    /// <summary>
    /// bits[i / 32] bit i % 32 = (y[i] &gt; 0) (NaN counts as not positive): a ReLU output's mask in
    /// 1/32 of its size. bits has <see cref="MaskLength"/>(y.Length) ints; the unused high bits of
    /// the last are written 0.
    /// </summary>
    public void PackPositive(ArrayView<float> y, ArrayView<int> bits)
    {
        int n = HostCheck.Count(y.Length, "pack positive");
        HostCheck.Length(bits, MaskLength(n), "pack positive bits");
        var (t, r) = Ranges((int)MaskLength(n));
        packPositive(t, y, bits, n, r);
    }

    /// <summary>
    /// dy[i] = 0 (+0) where bit i of <paramref name="bits"/> is clear, in place (dy where y &gt; 0 for
    /// a mask of <see cref="PackPositive"/>). bits has <see cref="MaskLength"/>(dy.Length) ints.
    /// </summary>
    public void KeepWhereSet(ArrayView<int> bits, ArrayView<float> dy)
    {
        int n = HostCheck.Count(dy.Length, "keep where set");
        HostCheck.Length(bits, MaskLength(n), "keep where set bits");
        var (t, r) = Ranges((int)MaskLength(n));
        keepWhereSet(t, bits, dy, r);
    }

    /// <summary>y = max(x, 0). x and y have the same length (may be the same view).</summary>
    public void ReluForward(ArrayView<float> x, ArrayView<float> y)
    {
        HostCheck.SameLength(x, y, "relu forward");
        var (t, r) = Ranges(HostCheck.Count(x.Length, "relu forward"));
        reluForward(t, x, y, r);
    }

    /// <summary>dx += dy where y &gt; 0 (y is the forward output).</summary>
    public void ReluBackward(ArrayView<float> y, ArrayView<float> dy, ArrayView<float> dx)
    {
        HostCheck.SameLength(y, dy, "relu backward");
        HostCheck.SameLength(y, dx, "relu backward");
        var (t, r) = Ranges(HostCheck.Count(y.Length, "relu backward"));
        reluBackward(t, y, dy, dx, r);
    }

    /// <summary>c = a + b (residual add). All three have the same length.</summary>
    public void Add(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c)
    {
        HostCheck.SameLength(a, b, "add");
        HostCheck.SameLength(a, c, "add");
        var (t, r) = Ranges(HostCheck.Count(a.Length, "add"));
        addScaled(t, a, b, 1f, c, r);
    }

    /// <summary>c = a - b (e.g. a client's update w_E - w_t). All three have the same length.</summary>
    public void Subtract(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c)
    {
        HostCheck.SameLength(a, b, "subtract");
        HostCheck.SameLength(a, c, "subtract");
        var (t, r) = Ranges(HostCheck.Count(a.Length, "subtract"));
        addScaled(t, a, b, -1f, c, r);
    }

    /// <summary>y += alpha * x. Used for every "accumulate this gradient" step.</summary>
    public void Axpy(ArrayView<float> x, ArrayView<float> y, float alpha)
    {
        HostCheck.SameLength(x, y, "axpy");
        var (t, r) = Ranges(HostCheck.Count(x.Length, "axpy"));
        addScaled(t, y, x, alpha, y, r);
    }

    /// <summary>y[b, c, :] += bias[c] for y of shape [batch, channels, spatial].</summary>
    public void BiasForward(ArrayView<float> y, ArrayView<float> bias, int batch, int channels, int spatial)
    {
        HostCheck.Positive(batch, "bias batch");
        HostCheck.Positive(channels, "bias channels");
        HostCheck.Positive(spatial, "bias spatial");
        HostCheck.Length(y, (long)batch * channels * spatial, "bias forward output");
        HostCheck.Length(bias, channels, "bias forward bias");
        HostCheck.Count((long)batch * channels * spatial, "bias forward");
        var (t, r) = Ranges(batch * channels);
        biasForward(t, y, bias, channels, spatial, r);
    }

    /// <summary>dBias[c] += sum over batch and spatial of dy[b, c, s].</summary>
    public void BiasBackward(ArrayView<float> dy, ArrayView<float> dBias, int batch, int channels, int spatial)
    {
        HostCheck.Positive(batch, "bias batch");
        HostCheck.Positive(channels, "bias channels");
        HostCheck.Positive(spatial, "bias spatial");
        HostCheck.Length(dy, (long)batch * channels * spatial, "bias backward gradient");
        HostCheck.Length(dBias, channels, "bias backward bias gradient");
        HostCheck.Count((long)batch * channels * spatial, "bias backward");
        var (t, r) = Ranges(channels);
        biasBackward(t, dy, dBias, batch, channels, spatial, r);
    }

    private (int Threads, ThreadRanges Ranges) Ranges(int n)
    {
        int t = launch.Threads(n);
        return (t, ThreadRanges.For(n, t, launch.IsCpu));
    }

    [GpuKernel]
    internal static void ReluForwardKernel(Index1D index, ArrayView<float> x, ArrayView<float> y, ThreadRanges r) =>
        ElementwiseRanges.Relu(x, y, r.Begin(index), r.End(index), r.Step);

    [GpuKernel]
    internal static void ReluBackwardKernel(Index1D index, ArrayView<float> y, ArrayView<float> dy, ArrayView<float> dx, ThreadRanges r) =>
        ElementwiseRanges.ReluBackward(y, dy, dx, r.Begin(index), r.End(index), r.Step);

    [GpuKernel]
    internal static void AddScaledKernel(Index1D index, ArrayView<float> a, ArrayView<float> b, float alpha, ArrayView<float> c, ThreadRanges r) =>
        ElementwiseRanges.AddScaled(a, b, alpha, c, r.Begin(index), r.End(index), r.Step);

    [GpuKernel]
    internal static void PackPositiveKernel(Index1D index, ArrayView<float> y, ArrayView<int> bits, int n, ThreadRanges r) =>
        ElementwiseRanges.PackPositive(y, bits, n, r.Begin(index), r.End(index), r.Step);

    [GpuKernel]
    internal static void KeepWhereSetKernel(Index1D index, ArrayView<int> bits, ArrayView<float> dy, ThreadRanges r) =>
        ElementwiseRanges.KeepWhereSet(bits, dy, r.Begin(index), r.End(index), r.Step);

    [GpuKernel]
    internal static void BiasForwardKernel(Index1D index, ArrayView<float> y, ArrayView<float> bias, int channels, int spatial, ThreadRanges r) =>
        ElementwiseRanges.BiasPlanes(y, bias, channels, spatial, r.Begin(index), r.End(index), r.Step);

    [GpuKernel]
    internal static void BiasBackwardKernel(Index1D index, ArrayView<float> dy, ArrayView<float> dBias, int batch, int channels, int spatial, ThreadRanges r) =>
        ElementwiseRanges.BiasGradient(dy, dBias, batch, channels, spatial, r.Begin(index), r.End(index), r.Step);
}
