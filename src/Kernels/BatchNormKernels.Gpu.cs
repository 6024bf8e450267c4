using ILGPU;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// GPU batch-norm: statistics with one thread per channel (two passes: mean, then squared
/// deviations, with per-plane partial sums), then one thread per element normalises and applies
/// the epilogue; backward is one thread per channel (sums, then the gradients of its planes).
/// </summary>
public sealed partial class BatchNormKernels
{
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormArgs, int>? statistics;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormArgs, int>? normalize;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormArgs, int>? backwardGpu;

    private void LoadGpu()
    {
        statistics = launch.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormArgs, int>(StatisticsKernel);
        normalize = launch.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormArgs, int>(NormalizeKernel);
        backwardGpu = launch.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormArgs, int>(BackwardKernel);
    }

    private void ForwardGpu(
        ArrayView<float> x, ArrayView<float> y, ArrayView<float> residual, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> mean, ArrayView<float> invStd, ArrayView<float> runningMean, ArrayView<float> runningVar, BatchNormArgs args)
    {
        if (args.Has(BatchNormArgs.Training))
        {
            int tc = launch.Threads(args.Channels);
            statistics!(tc, x, mean, invStd, runningMean, runningVar, args, tc);
        }
        int n = args.Batch * args.Channels * args.Spatial;
        int t = launch.Threads(n);
        normalize!(t, x, y, residual, gamma, beta, mean, invStd, args, t);
    }

    private void BackwardGpu(
        ArrayView<float> x, ArrayView<float> y, ArrayView<float> dy, ArrayView<float> gamma, ArrayView<float> mean, ArrayView<float> invStd,
        ArrayView<float> dx, ArrayView<float> dGamma, ArrayView<float> dBeta, ArrayView<float> dResidual, BatchNormArgs args)
    {
        int t = launch.Threads(args.Channels);
        backwardGpu!(t, x, y, dy, gamma, mean, invStd, dx, dGamma, dBeta, dResidual, args, t);
    }

    [GpuKernel]
    internal static void StatisticsKernel(
        Index1D index, ArrayView<float> x, ArrayView<float> saveMean, ArrayView<float> saveInvStd,
        ArrayView<float> runningMean, ArrayView<float> runningVar, BatchNormArgs args, int stride)
    {
        int batch = args.Batch, channels = args.Channels, spatial = args.Spatial;
        float count = (float)batch * spatial;
        for (int c = index; c < channels; c += stride)
        {
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
            float momentum = args.Momentum;
            saveMean[c] = mean;
            saveInvStd[c] = 1f / MathF.Sqrt(variance + args.Epsilon);
            runningMean[c] = (1f - momentum) * runningMean[c] + momentum * mean;
            runningVar[c] = (1f - momentum) * runningVar[c] + momentum * (squares / (count - 1f));
        }
    }

    /// <summary>
    /// y = (x - mean) * invStd * gamma + beta (+ residual) (ReLU). In inference the two statistic
    /// views hold the running mean and variance, and invStd is computed from the variance.
    /// </summary>
    [GpuKernel]
    internal static void NormalizeKernel(
        Index1D index, ArrayView<float> x, ArrayView<float> y, ArrayView<float> residual, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> mean, ArrayView<float> invStd, BatchNormArgs args, int stride)
    {
        int n = args.Batch * args.Channels * args.Spatial;
        bool training = args.Has(BatchNormArgs.Training), addResidual = args.Has(BatchNormArgs.Residual), relu = args.Has(BatchNormArgs.Relu);
        for (int i = index; i < n; i += stride)
        {
            int c = i / args.Spatial % args.Channels;
            float inv = training ? invStd[c] : 1f / MathF.Sqrt(invStd[c] + args.Epsilon);
            float v = (x[i] - mean[c]) * inv * gamma[c] + beta[c];
            if (addResidual)
            {
                v += residual[i];
            }
            y[i] = relu && v < 0f ? 0f : v;
        }
    }

    [GpuKernel]
    internal static void BackwardKernel(
        Index1D index, ArrayView<float> x, ArrayView<float> y, ArrayView<float> dy, ArrayView<float> gamma,
        ArrayView<float> saveMean, ArrayView<float> saveInvStd,
        ArrayView<float> dx, ArrayView<float> dGamma, ArrayView<float> dBeta, ArrayView<float> dResidual,
        BatchNormArgs args, int stride)
    {
        int batch = args.Batch, channels = args.Channels, spatial = args.Spatial;
        bool relu = args.Has(BatchNormArgs.Relu), hasDx = args.Has(BatchNormArgs.HasDx), residual = args.Has(BatchNormArgs.Residual);
        bool overwriteDx = args.Has(BatchNormArgs.OverwriteDx), overwriteResidual = args.Has(BatchNormArgs.OverwriteResidual);
        float count = (float)batch * spatial;
        for (int c = index; c < channels; c += stride)
        {
            float mean = saveMean[c];
            float invStd = saveInvStd[c];
            float sumDz = 0f;
            float sumDzXhat = 0f;
            for (int b = 0; b < batch; b++)
            {
                long offset = ((long)b * channels + c) * spatial;
                float partDz = 0f;
                float partDzXhat = 0f;
                for (int s = 0; s < spatial; s++)
                {
                    float g = relu && y[offset + s] <= 0f ? 0f : dy[offset + s];
                    partDz += g;
                    partDzXhat += g * (x[offset + s] - mean) * invStd;
                }
                sumDz += partDz;
                sumDzXhat += partDzXhat;
            }
            dBeta[c] += sumDz;
            dGamma[c] += sumDzXhat;
            float meanDz = sumDz / count;
            float meanDzXhat = sumDzXhat / count;
            float scale = gamma[c] * invStd;
            for (int b = 0; b < batch; b++)
            {
                long offset = ((long)b * channels + c) * spatial;
                for (int s = 0; s < spatial; s++)
                {
                    long i = offset + s;
                    float g = relu && y[i] <= 0f ? 0f : dy[i];
                    if (hasDx)
                    {
                        float xhat = (x[i] - mean) * invStd;
                        float d = scale * (g - meanDz - xhat * meanDzXhat);
                        dx[i] = overwriteDx ? d : dx[i] + d;
                    }
                    if (residual)
                    {
                        dResidual[i] = overwriteResidual ? g : dResidual[i] + g;
                    }
                }
            }
        }
    }
}
