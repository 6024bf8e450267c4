using ILGPU;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// Element-wise ops: ReLU (forward, backward), residual add and its backward (a copy-accumulate),
/// per-channel bias on NCHW tensors (forward, backward), scale-accumulate and fill.
/// CPU references: <see cref="Reference.ActivationReference"/>.
/// </summary>
public sealed class ActivationKernels
{
    private readonly KernelLaunch launch;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, int, int> reluForward;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int> reluBackward;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int> add;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, float, int, int> axpy;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, int, int, int, int> biasForward;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, int, int, int, int> biasBackward;

    /// <summary>Loads the kernels once for the accelerator of <paramref name="launch"/>.</summary>
    public ActivationKernels(KernelLaunch launch)
    {
        this.launch = launch;
        var a = launch.Accelerator;
        reluForward = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int>(ReluForwardKernel);
        reluBackward = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(ReluBackwardKernel);
        add = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(AddKernel);
        axpy = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, float, int, int>(AxpyKernel);
        biasForward = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int, int>(BiasForwardKernel);
        biasBackward = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int, int>(BiasBackwardKernel);
    }

    /// <summary>y = max(x, 0). x and y have the same length (may be the same view).</summary>
    public void ReluForward(ArrayView<float> x, ArrayView<float> y)
    {
        HostCheck.SameLength(x, y, "relu forward");
        int n = HostCheck.Count(x.Length, "relu forward");
        int t = launch.Threads(n);
        reluForward(t, x, y, n, t);
    }

    /// <summary>dx += dy where y &gt; 0 (y is the forward output).</summary>
    public void ReluBackward(ArrayView<float> y, ArrayView<float> dy, ArrayView<float> dx)
    {
        HostCheck.SameLength(y, dy, "relu backward");
        HostCheck.SameLength(y, dx, "relu backward");
        int n = HostCheck.Count(y.Length, "relu backward");
        int t = launch.Threads(n);
        reluBackward(t, y, dy, dx, n, t);
    }

    /// <summary>c = a + b (residual add). All three have the same length.</summary>
    public void Add(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c)
    {
        HostCheck.SameLength(a, b, "add");
        HostCheck.SameLength(a, c, "add");
        int n = HostCheck.Count(a.Length, "add");
        int t = launch.Threads(n);
        add(t, a, b, c, n, t);
    }

    /// <summary>y += alpha * x. Used for every "accumulate this gradient" step.</summary>
    public void Axpy(ArrayView<float> x, ArrayView<float> y, float alpha)
    {
        HostCheck.SameLength(x, y, "axpy");
        int n = HostCheck.Count(x.Length, "axpy");
        int t = launch.Threads(n);
        axpy(t, x, y, alpha, n, t);
    }

    /// <summary>y[b, c, :] += bias[c] for y of shape [batch, channels, spatial].</summary>
    public void BiasForward(ArrayView<float> y, ArrayView<float> bias, int batch, int channels, int spatial)
    {
        HostCheck.Positive(batch, "bias batch");
        HostCheck.Positive(channels, "bias channels");
        HostCheck.Positive(spatial, "bias spatial");
        HostCheck.Length(y, (long)batch * channels * spatial, "bias forward output");
        HostCheck.Length(bias, channels, "bias forward bias");
        int n = HostCheck.Count((long)batch * channels * spatial, "bias forward");
        int t = launch.Threads(n);
        biasForward(t, y, bias, n, channels, spatial, t);
    }

    /// <summary>dBias[c] += sum over batch and spatial of dy[b, c, s].</summary>
    public void BiasBackward(ArrayView<float> dy, ArrayView<float> dBias, int batch, int channels, int spatial)
    {
        HostCheck.Positive(batch, "bias batch");
        HostCheck.Positive(channels, "bias channels");
        HostCheck.Positive(spatial, "bias spatial");
        HostCheck.Length(dy, (long)batch * channels * spatial, "bias backward gradient");
        HostCheck.Length(dBias, channels, "bias backward bias gradient");
        int t = launch.Threads(channels);
        biasBackward(t, dy, dBias, batch, channels, spatial, t);
    }

    [GpuKernel]
    internal static void ReluForwardKernel(Index1D index, ArrayView<float> x, ArrayView<float> y, int n, int stride)
    {
        for (int i = index; i < n; i += stride)
        {
            float v = x[i];
            y[i] = v > 0f ? v : 0f;
        }
    }

    [GpuKernel]
    internal static void ReluBackwardKernel(Index1D index, ArrayView<float> y, ArrayView<float> dy, ArrayView<float> dx, int n, int stride)
    {
        for (int i = index; i < n; i += stride)
        {
            if (y[i] > 0f)
            {
                dx[i] += dy[i];
            }
        }
    }

    [GpuKernel]
    internal static void AddKernel(Index1D index, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, int n, int stride)
    {
        for (int i = index; i < n; i += stride)
        {
            c[i] = a[i] + b[i];
        }
    }

    [GpuKernel]
    internal static void AxpyKernel(Index1D index, ArrayView<float> x, ArrayView<float> y, float alpha, int n, int stride)
    {
        for (int i = index; i < n; i += stride)
        {
            y[i] += alpha * x[i];
        }
    }

    [GpuKernel]
    internal static void BiasForwardKernel(Index1D index, ArrayView<float> y, ArrayView<float> bias, int n, int channels, int spatial, int stride)
    {
        for (int i = index; i < n; i += stride)
        {
            y[i] += bias[i / spatial % channels];
        }
    }

    [GpuKernel]
    internal static void BiasBackwardKernel(Index1D index, ArrayView<float> dy, ArrayView<float> dBias, int batch, int channels, int spatial, int stride)
    {
        for (int c = index; c < channels; c += stride)
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
