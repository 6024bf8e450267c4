using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using ILGPU;
using ILGPU.IR.Intrinsics;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// The per-thread passes of the CPU batch-norm (<see cref="BatchNormKernels"/>) over the channels
/// [begin, end): plain .NET over raw pointers, Vector256 along each <c>spatial</c>-long plane
/// (scalar tails), per-plane float partial sums added up in double.
/// </summary>
internal static unsafe class BatchNormPlanes
{
    /// <summary>Statistics (training) or the running ones (inference), then y = x * scale + shift (+ residual) (ReLU) per channel.</summary>
    [IntrinsicImplementation]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Forward(
        ArrayView<float> x, ArrayView<float> y, ArrayView<float> residual, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> mean, ArrayView<float> invStd, ArrayView<float> runningMean, ArrayView<float> runningVar,
        BatchNormArgs args, int begin, int end)
    {
        float* px = (float*)x.LoadEffectiveAddressAsPtr();
        float* py = (float*)y.LoadEffectiveAddressAsPtr();
        float* pr = args.Has(BatchNormArgs.Residual) ? (float*)residual.LoadEffectiveAddressAsPtr() : null;
        bool relu = args.Has(BatchNormArgs.Relu);
        int batch = args.Batch, spatial = args.Spatial;
        long planeStride = (long)args.Channels * spatial;
        double count = (double)batch * spatial;
        for (int c = begin; c < end; c++)
        {
            float* first = px + (long)c * spatial;
            float m, inv;
            if (args.Has(BatchNormArgs.Training))
            {
                double sum = 0;
                for (int b = 0; b < batch; b++)
                {
                    sum += Sum(first + b * planeStride, spatial);
                }
                double dm = sum / count;
                double squares = 0;
                for (int b = 0; b < batch; b++)
                {
                    squares += SquaredDeviations(first + b * planeStride, spatial, (float)dm);
                }
                m = (float)dm;
                inv = (float)(1.0 / Math.Sqrt(squares / count + args.Epsilon));
                mean[c] = m;
                invStd[c] = inv;
                float momentum = args.Momentum;
                runningMean[c] = (float)((1.0 - momentum) * runningMean[c] + momentum * dm);
                runningVar[c] = (float)((1.0 - momentum) * runningVar[c] + momentum * squares / (count - 1));
            }
            else
            {
                // Inference: the two statistic views hold the running mean and variance.
                m = mean[c];
                inv = (float)(1.0 / Math.Sqrt((double)invStd[c] + args.Epsilon));
            }
            float scale = gamma[c] * inv;
            float shift = beta[c] - m * scale;
            for (int b = 0; b < batch; b++)
            {
                long offset = c * (long)spatial + b * planeStride;
                Apply(px + offset, py + offset, pr is null ? null : pr + offset, spatial, scale, shift, relu);
            }
        }
    }

    /// <summary>Per channel: sums of dz and dz * xhat, then dx and the residual gradient (written or added) and dGamma, dBeta (added).</summary>
    [IntrinsicImplementation]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Backward(
        ArrayView<float> x, ArrayView<float> y, ArrayView<float> dy, ArrayView<float> gamma,
        ArrayView<float> mean, ArrayView<float> invStd, ArrayView<float> dx, ArrayView<float> dGamma, ArrayView<float> dBeta,
        ArrayView<float> dResidual, BatchNormArgs args, int begin, int end)
    {
        bool relu = args.Has(BatchNormArgs.Relu);
        float* px = (float*)x.LoadEffectiveAddressAsPtr();
        float* py = relu ? (float*)y.LoadEffectiveAddressAsPtr() : null;
        float* pdy = (float*)dy.LoadEffectiveAddressAsPtr();
        float* pdx = args.Has(BatchNormArgs.HasDx) ? (float*)dx.LoadEffectiveAddressAsPtr() : null;
        float* pdr = args.Has(BatchNormArgs.Residual) ? (float*)dResidual.LoadEffectiveAddressAsPtr() : null;
        bool overwriteDx = args.Has(BatchNormArgs.OverwriteDx), overwriteResidual = args.Has(BatchNormArgs.OverwriteResidual);
        int batch = args.Batch, spatial = args.Spatial;
        long planeStride = (long)args.Channels * spatial;
        double count = (double)batch * spatial;
        for (int c = begin; c < end; c++)
        {
            float m = mean[c], inv = invStd[c];
            double sumDz = 0, sumDzCentred = 0;
            for (int b = 0; b < batch; b++)
            {
                long offset = c * (long)spatial + b * planeStride;
                var (dz, dzCentred) = GradientSums(px + offset, py is null ? null : py + offset, pdy + offset, spatial, m);
                sumDz += dz;
                sumDzCentred += dzCentred;
            }
            double sumDzXhat = sumDzCentred * inv;
            dBeta[c] += (float)sumDz;
            dGamma[c] += (float)sumDzXhat;
            // dx = k * (dz - mean(dz)) - k * invStd * mean(dz * xhat) * (x - mean), k = gamma * invStd.
            float k = gamma[c] * inv;
            float meanDz = (float)(sumDz / count);
            float slope = (float)(k * inv * (sumDzXhat / count));
            for (int b = 0; b < batch; b++)
            {
                long offset = c * (long)spatial + b * planeStride;
                Gradients(px + offset, py is null ? null : py + offset, pdy + offset,
                    pdx is null ? null : pdx + offset, pdr is null ? null : pdr + offset,
                    spatial, m, k, meanDz, slope, overwriteDx, overwriteResidual);
            }
        }
    }

    private static double Sum(float* p, int n)
    {
        int i = 0;
        var a0 = Vector256<float>.Zero;
        var a1 = Vector256<float>.Zero;
        for (; i + 16 <= n; i += 16)
        {
            a0 += Vector256.Load(p + i);
            a1 += Vector256.Load(p + i + 8);
        }
        for (; i + 8 <= n; i += 8)
        {
            a0 += Vector256.Load(p + i);
        }
        float sum = Vector256.Sum(a0 + a1);
        for (; i < n; i++)
        {
            sum += p[i];
        }
        return sum;
    }

    private static double SquaredDeviations(float* p, int n, float mean)
    {
        int i = 0;
        var vm = Vector256.Create(mean);
        var a0 = Vector256<float>.Zero;
        var a1 = Vector256<float>.Zero;
        for (; i + 16 <= n; i += 16)
        {
            var d0 = Vector256.Load(p + i) - vm;
            var d1 = Vector256.Load(p + i + 8) - vm;
            a0 += d0 * d0;
            a1 += d1 * d1;
        }
        for (; i + 8 <= n; i += 8)
        {
            var d = Vector256.Load(p + i) - vm;
            a0 += d * d;
        }
        float sum = Vector256.Sum(a0 + a1);
        for (; i < n; i++)
        {
            float d = p[i] - mean;
            sum += d * d;
        }
        return sum;
    }

    private static void Apply(float* x, float* y, float* residual, int n, float scale, float shift, bool relu)
    {
        var vs = Vector256.Create(scale);
        var vb = Vector256.Create(shift);
        int i = 0;
        for (; i + 8 <= n; i += 8)
        {
            var v = Vector256.Load(x + i) * vs + vb;
            if (residual is not null)
            {
                v += Vector256.Load(residual + i);
            }
            if (relu)
            {
                v = Vector256.Max(v, Vector256<float>.Zero);
            }
            Vector256.Store(v, y + i);
        }
        for (; i < n; i++)
        {
            float v = x[i] * scale + shift;
            if (residual is not null)
            {
                v += residual[i];
            }
            y[i] = relu && v < 0f ? 0f : v;
        }
    }

    /// <summary>Sums of dz and dz * (x - mean) over one plane; dz = dy, zeroed where the ReLU output y &lt;= 0 (y null: no ReLU).</summary>
    private static (double Dz, double DzCentred) GradientSums(float* x, float* y, float* dy, int n, float mean)
    {
        var vm = Vector256.Create(mean);
        var a0 = Vector256<float>.Zero;
        var a1 = Vector256<float>.Zero;
        int i = 0;
        for (; i + 8 <= n; i += 8)
        {
            var g = Vector256.Load(dy + i);
            if (y is not null)
            {
                g &= Vector256.GreaterThan(Vector256.Load(y + i), Vector256<float>.Zero);
            }
            a0 += g;
            a1 += g * (Vector256.Load(x + i) - vm);
        }
        float dz = Vector256.Sum(a0), centred = Vector256.Sum(a1);
        for (; i < n; i++)
        {
            float g = y is not null && y[i] <= 0f ? 0f : dy[i];
            dz += g;
            centred += g * (x[i] - mean);
        }
        return (dz, centred);
    }

    /// <summary>dx = k * (dz - meanDz) - slope * (x - mean) and the residual gradient dz, each written or added; a null target is skipped.</summary>
    private static void Gradients(
        float* x, float* y, float* dy, float* dx, float* dResidual, int n,
        float mean, float k, float meanDz, float slope, bool overwriteDx, bool overwriteResidual)
    {
        var vm = Vector256.Create(mean);
        var vk = Vector256.Create(k);
        var vmd = Vector256.Create(meanDz);
        var vslope = Vector256.Create(slope);
        int i = 0;
        for (; i + 8 <= n; i += 8)
        {
            var g = Vector256.Load(dy + i);
            if (y is not null)
            {
                g &= Vector256.GreaterThan(Vector256.Load(y + i), Vector256<float>.Zero);
            }
            if (dx is not null)
            {
                var d = vk * (g - vmd) - vslope * (Vector256.Load(x + i) - vm);
                Vector256.Store(overwriteDx ? d : Vector256.Load(dx + i) + d, dx + i);
            }
            if (dResidual is not null)
            {
                Vector256.Store(overwriteResidual ? g : Vector256.Load(dResidual + i) + g, dResidual + i);
            }
        }
        for (; i < n; i++)
        {
            float g = y is not null && y[i] <= 0f ? 0f : dy[i];
            if (dx is not null)
            {
                float d = k * (g - meanDz) - slope * (x[i] - mean);
                dx[i] = overwriteDx ? d : dx[i] + d;
            }
            if (dResidual is not null)
            {
                dResidual[i] = overwriteResidual ? g : dResidual[i] + g;
            }
        }
    }
}
