using ILGPU;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// 2-D batch normalisation on x <c>[batch, channels, spatial]</c> (spatial = height * width), with
/// statistics per channel over batch and spatial, as PyTorch's <c>BatchNorm2d</c>: the biased variance
/// normalises, the unbiased variance feeds the running variance, and
/// running = (1 - momentum) * running + momentum * batchStatistic (momentum 0.1 by convention).
/// Statistics are summed per channel (one thread per channel, grid-stride over channels); the
/// normalisation itself runs per element. CPU references: <see cref="Reference.BatchNormReference"/>.
/// </summary>
public sealed class BatchNormKernels
{
    private readonly KernelLaunch launch;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, float, float, int> statistics;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int> normalize;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, float, int> inference;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int> backward;

    /// <summary>Loads the kernels once for the accelerator of <paramref name="launch"/>.</summary>
    public BatchNormKernels(KernelLaunch launch)
    {
        this.launch = launch;
        statistics = launch.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, float, float, int>(TrainingStatisticsKernel);
        normalize = launch.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>(NormalizeKernel);
        inference = launch.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, float, int>(InferenceKernel);
        backward = launch.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>(BackwardKernel);
    }

    /// <summary>
    /// Training-mode forward: per channel c, mean and biased variance of x[:, c, :], then
    /// y = (x - mean) * invStd * gamma[c] + beta[c] with invStd = 1 / sqrt(var + epsilon).
    /// Saves mean and invStd (each <c>[channels]</c>) for <see cref="Backward"/> and updates
    /// runningMean and runningVar (each <c>[channels]</c>) in place, the latter with the unbiased
    /// variance var * n / (n - 1), n = batch * spatial (which must be at least 2).
    /// x and y are <c>[batch, channels, spatial]</c>; gamma and beta <c>[channels]</c>.
    /// </summary>
    public void ForwardTraining(
        ArrayView<float> x, ArrayView<float> y, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> saveMean, ArrayView<float> saveInvStd, ArrayView<float> runningMean, ArrayView<float> runningVar,
        int batch, int channels, int spatial, float momentum, float epsilon)
    {
        int n = CheckDimensions(batch, channels, spatial, "batch norm forward");
        HostCheck.Length(x, n, "batch norm forward input");
        HostCheck.Length(y, n, "batch norm forward output");
        HostCheck.Length(gamma, channels, "batch norm forward gamma");
        HostCheck.Length(beta, channels, "batch norm forward beta");
        if ((long)batch * spatial < 2)
        {
            throw new ArgumentException($"batch norm forward: training needs more than one value per channel, got batch {batch} x spatial {spatial}");
        }
        if (!(momentum >= 0f && momentum <= 1f))
        {
            throw new ArgumentException($"batch norm forward: momentum must be in [0, 1], got {momentum}");
        }
        CheckEpsilon(epsilon, "batch norm forward");
        HostCheck.Length(saveMean, channels, "batch norm forward saved mean");
        HostCheck.Length(saveInvStd, channels, "batch norm forward saved inverse std");
        HostCheck.Length(runningMean, channels, "batch norm forward running mean");
        HostCheck.Length(runningVar, channels, "batch norm forward running variance");
        int tc = launch.Threads(channels);
        statistics(tc, x, saveMean, saveInvStd, runningMean, runningVar, batch, channels, spatial, momentum, epsilon, tc);
        int t = launch.Threads(n);
        normalize(t, x, y, gamma, beta, saveMean, saveInvStd, n, channels, spatial, t);
    }

    /// <summary>
    /// Inference-mode forward: y = (x - runningMean[c]) / sqrt(runningVar[c] + epsilon) * gamma[c] + beta[c].
    /// x and y are <c>[batch, channels, spatial]</c>; the other views <c>[channels]</c>.
    /// </summary>
    public void ForwardInference(
        ArrayView<float> x, ArrayView<float> y, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> runningMean, ArrayView<float> runningVar,
        int batch, int channels, int spatial, float epsilon)
    {
        int n = CheckDimensions(batch, channels, spatial, "batch norm inference");
        HostCheck.Length(x, n, "batch norm inference input");
        HostCheck.Length(y, n, "batch norm inference output");
        HostCheck.Length(gamma, channels, "batch norm inference gamma");
        HostCheck.Length(beta, channels, "batch norm inference beta");
        CheckEpsilon(epsilon, "batch norm inference");
        HostCheck.Length(runningMean, channels, "batch norm inference running mean");
        HostCheck.Length(runningVar, channels, "batch norm inference running variance");
        int t = launch.Threads(n);
        inference(t, x, y, gamma, beta, runningMean, runningVar, n, channels, spatial, epsilon, t);
    }

    /// <summary>
    /// Backward of <see cref="ForwardTraining"/> using its saved mean and invStd. With
    /// xhat = (x - mean) * invStd and means over batch and spatial:
    /// dx += gamma * invStd * (dy - mean(dy) - xhat * mean(dy * xhat)),
    /// dGamma[c] += sum(dy * xhat), dBeta[c] += sum(dy).
    /// x, dy and dx are <c>[batch, channels, spatial]</c>; the other views <c>[channels]</c>.
    /// </summary>
    public void Backward(
        ArrayView<float> x, ArrayView<float> dy, ArrayView<float> gamma,
        ArrayView<float> saveMean, ArrayView<float> saveInvStd,
        ArrayView<float> dx, ArrayView<float> dGamma, ArrayView<float> dBeta,
        int batch, int channels, int spatial)
    {
        int n = CheckDimensions(batch, channels, spatial, "batch norm backward");
        HostCheck.Length(x, n, "batch norm backward input");
        HostCheck.Length(dy, n, "batch norm backward output gradient");
        HostCheck.Length(dx, n, "batch norm backward input gradient");
        HostCheck.Length(gamma, channels, "batch norm backward gamma");
        HostCheck.Length(saveMean, channels, "batch norm backward saved mean");
        HostCheck.Length(saveInvStd, channels, "batch norm backward saved inverse std");
        HostCheck.Length(dGamma, channels, "batch norm backward gamma gradient");
        HostCheck.Length(dBeta, channels, "batch norm backward beta gradient");
        int t = launch.Threads(channels);
        backward(t, x, dy, gamma, saveMean, saveInvStd, dx, dGamma, dBeta, batch, channels, spatial, t);
    }

    /// <summary>Checks the dimensions and returns the element count batch * channels * spatial.</summary>
    private static int CheckDimensions(int batch, int channels, int spatial, string what)
    {
        HostCheck.Positive(batch, what + " batch");
        HostCheck.Positive(channels, what + " channels");
        HostCheck.Positive(spatial, what + " spatial");
        return HostCheck.Count((long)batch * channels * spatial, what);
    }

    private static void CheckEpsilon(float epsilon, string what)
    {
        if (!(epsilon > 0f) || float.IsInfinity(epsilon))
        {
            throw new ArgumentException($"{what}: epsilon must be positive and finite, got {epsilon}");
        }
    }

    [GpuKernel]
    internal static void TrainingStatisticsKernel(
        Index1D index, ArrayView<float> x, ArrayView<float> saveMean, ArrayView<float> saveInvStd,
        ArrayView<float> runningMean, ArrayView<float> runningVar,
        int batch, int channels, int spatial, float momentum, float epsilon, int stride)
    {
        float count = (float)batch * spatial;
        for (int c = index; c < channels; c += stride)
        {
            // Two passes (mean, then squared deviations) with per-plane partial sums: stable in float.
            float sum = 0f;
            for (int b = 0; b < batch; b++)
            {
                long offset = ((long)b * channels + c) * spatial;
                float part = 0f;
                for (int s = 0; s < spatial; s++)
                {
                    part += x[offset + s];
                }
                sum += part;
            }
            float mean = sum / count;
            float squares = 0f;
            for (int b = 0; b < batch; b++)
            {
                long offset = ((long)b * channels + c) * spatial;
                float part = 0f;
                for (int s = 0; s < spatial; s++)
                {
                    float d = x[offset + s] - mean;
                    part += d * d;
                }
                squares += part;
            }
            float variance = squares / count;
            saveMean[c] = mean;
            saveInvStd[c] = 1f / MathF.Sqrt(variance + epsilon);
            runningMean[c] = (1f - momentum) * runningMean[c] + momentum * mean;
            runningVar[c] = (1f - momentum) * runningVar[c] + momentum * (squares / (count - 1f));
        }
    }

    [GpuKernel]
    internal static void NormalizeKernel(
        Index1D index, ArrayView<float> x, ArrayView<float> y, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> mean, ArrayView<float> invStd, int n, int channels, int spatial, int stride)
    {
        for (int i = index; i < n; i += stride)
        {
            int c = i / spatial % channels;
            y[i] = (x[i] - mean[c]) * invStd[c] * gamma[c] + beta[c];
        }
    }

    [GpuKernel]
    internal static void InferenceKernel(
        Index1D index, ArrayView<float> x, ArrayView<float> y, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> runningMean, ArrayView<float> runningVar, int n, int channels, int spatial, float epsilon, int stride)
    {
        for (int i = index; i < n; i += stride)
        {
            int c = i / spatial % channels;
            y[i] = (x[i] - runningMean[c]) / MathF.Sqrt(runningVar[c] + epsilon) * gamma[c] + beta[c];
        }
    }

    [GpuKernel]
    internal static void BackwardKernel(
        Index1D index, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> gamma,
        ArrayView<float> saveMean, ArrayView<float> saveInvStd,
        ArrayView<float> dx, ArrayView<float> dGamma, ArrayView<float> dBeta,
        int batch, int channels, int spatial, int stride)
    {
        float count = (float)batch * spatial;
        for (int c = index; c < channels; c += stride)
        {
            float mean = saveMean[c];
            float invStd = saveInvStd[c];
            float sumDy = 0f;
            float sumDyXhat = 0f;
            for (int b = 0; b < batch; b++)
            {
                long offset = ((long)b * channels + c) * spatial;
                float partDy = 0f;
                float partDyXhat = 0f;
                for (int s = 0; s < spatial; s++)
                {
                    float g = dy[offset + s];
                    partDy += g;
                    partDyXhat += g * (x[offset + s] - mean) * invStd;
                }
                sumDy += partDy;
                sumDyXhat += partDyXhat;
            }
            dBeta[c] += sumDy;
            dGamma[c] += sumDyXhat;
            float meanDy = sumDy / count;
            float meanDyXhat = sumDyXhat / count;
            float scale = gamma[c] * invStd;
            for (int b = 0; b < batch; b++)
            {
                long offset = ((long)b * channels + c) * spatial;
                for (int s = 0; s < spatial; s++)
                {
                    float xhat = (x[offset + s] - mean) * invStd;
                    dx[offset + s] += scale * (dy[offset + s] - meanDy - xhat * meanDyXhat);
                }
            }
        }
    }
}
