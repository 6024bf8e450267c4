using ILGPU;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// What a batch-norm writes besides the normalisation, in the same pass:
/// y = bn(x) (+ residual) (then max(·, 0) with <see cref="Relu"/>), as a framework fuses a ResNet's
/// "bn, add the shortcut, relu". On backward, <see cref="Residual"/> receives the shortcut's gradient.
/// </summary>
/// <param name="Residual">Tensor added after the normalisation (forward), or its gradient (backward); empty for none.</param>
/// <param name="Relu">Apply a ReLU last.</param>
public readonly record struct BatchNormEpilogue(ArrayView<float> Residual, bool Relu)
{
    /// <summary>Plain batch-norm.</summary>
    public static BatchNormEpilogue None => default;

    /// <summary>True when a residual is added.</summary>
    public bool HasResidual => Residual.IsValid && Residual.Length > 0;
}

/// <summary>
/// 2-D batch normalisation on x <c>[batch, channels, spatial]</c> (spatial = height * width), with
/// statistics per channel over batch and spatial, as PyTorch's <c>BatchNorm2d</c>: the biased variance
/// normalises, the unbiased variance feeds the running variance, and
/// running = (1 - momentum) * running + momentum * batchStatistic (momentum 0.1 by convention).
/// A <see cref="BatchNormEpilogue"/> fuses the residual add and ReLU that follow it, forward and
/// backward. The CPU accelerator runs SIMD passes over each channel's planes, one thread per range
/// of channels (<see cref="BatchNormPlanes"/>); GPU backends run a statistics kernel per channel and
/// an element-wise normalisation. CPU references: <see cref="Reference.BatchNormReference"/>.
/// </summary>
public sealed partial class BatchNormKernels
{
    private readonly KernelLaunch launch;

    /// <summary>Loads the kernels of this accelerator's kind once.</summary>
    public BatchNormKernels(KernelLaunch launch)
    {
        this.launch = launch;
        if (launch.IsCpu)
        {
            LoadCpu();
        }
        else
        {
            LoadGpu();
        }
    }

    /// <summary>Training-mode forward without an epilogue (see the full overload).</summary>
    public void ForwardTraining(
        ArrayView<float> x, ArrayView<float> y, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> saveMean, ArrayView<float> saveInvStd, ArrayView<float> runningMean, ArrayView<float> runningVar,
        int batch, int channels, int spatial, float momentum, float epsilon) =>
        ForwardTraining(x, y, gamma, beta, saveMean, saveInvStd, runningMean, runningVar, batch, channels, spatial, momentum, epsilon, BatchNormEpilogue.None);

    /// <summary>
    /// Training-mode forward: per channel c, mean and biased variance of x[:, c, :], then
    /// y = (x - mean) * invStd * gamma[c] + beta[c] with invStd = 1 / sqrt(var + epsilon), followed
    /// by <paramref name="epilogue"/>. Saves mean and invStd (each <c>[channels]</c>) for
    /// <see cref="Backward(ArrayView{float}, ArrayView{float}, ArrayView{float}, ArrayView{float}, ArrayView{float}, ArrayView{float}, ArrayView{float}, bool, ArrayView{float}, ArrayView{float}, BatchNormEpilogue, bool, int, int, int)"/>
    /// and updates runningMean and runningVar (each <c>[channels]</c>) in place, the latter with the unbiased
    /// variance var * n / (n - 1), n = batch * spatial (which must be at least 2).
    /// x, y and a residual are <c>[batch, channels, spatial]</c>; gamma and beta <c>[channels]</c>.
    /// </summary>
    public void ForwardTraining(
        ArrayView<float> x, ArrayView<float> y, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> saveMean, ArrayView<float> saveInvStd, ArrayView<float> runningMean, ArrayView<float> runningVar,
        int batch, int channels, int spatial, float momentum, float epsilon, BatchNormEpilogue epilogue)
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
        var residual = CheckResidual(epilogue, n, "batch norm forward residual", x);
        var args = new BatchNormArgs(batch, channels, spatial, momentum, epsilon, BatchNormArgs.Flags(true, epilogue, false, false, true));
        Forward(x, y, residual, gamma, beta, saveMean, saveInvStd, runningMean, runningVar, args);
    }

    /// <summary>Inference-mode forward without an epilogue (see the full overload).</summary>
    public void ForwardInference(
        ArrayView<float> x, ArrayView<float> y, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> runningMean, ArrayView<float> runningVar,
        int batch, int channels, int spatial, float epsilon) =>
        ForwardInference(x, y, gamma, beta, runningMean, runningVar, batch, channels, spatial, epsilon, BatchNormEpilogue.None);

    /// <summary>
    /// Inference-mode forward: y = (x - runningMean[c]) / sqrt(runningVar[c] + epsilon) * gamma[c] + beta[c],
    /// followed by <paramref name="epilogue"/>. x, y and a residual are <c>[batch, channels, spatial]</c>;
    /// the other views <c>[channels]</c>.
    /// </summary>
    public void ForwardInference(
        ArrayView<float> x, ArrayView<float> y, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> runningMean, ArrayView<float> runningVar,
        int batch, int channels, int spatial, float epsilon, BatchNormEpilogue epilogue)
    {
        int n = CheckDimensions(batch, channels, spatial, "batch norm inference");
        HostCheck.Length(x, n, "batch norm inference input");
        HostCheck.Length(y, n, "batch norm inference output");
        HostCheck.Length(gamma, channels, "batch norm inference gamma");
        HostCheck.Length(beta, channels, "batch norm inference beta");
        CheckEpsilon(epsilon, "batch norm inference");
        HostCheck.Length(runningMean, channels, "batch norm inference running mean");
        HostCheck.Length(runningVar, channels, "batch norm inference running variance");
        var residual = CheckResidual(epilogue, n, "batch norm inference residual", x);
        var args = new BatchNormArgs(batch, channels, spatial, 0f, epsilon, BatchNormArgs.Flags(false, epilogue, false, false, true));
        // Inference reads the running statistics where training writes the saved ones.
        Forward(x, y, residual, gamma, beta, runningMean, runningVar, runningMean, runningVar, args);
    }

    /// <summary>Backward of a plain batch-norm, accumulating into dx (see the full overload).</summary>
    public void Backward(
        ArrayView<float> x, ArrayView<float> dy, ArrayView<float> gamma,
        ArrayView<float> saveMean, ArrayView<float> saveInvStd,
        ArrayView<float> dx, ArrayView<float> dGamma, ArrayView<float> dBeta,
        int batch, int channels, int spatial) =>
        Backward(x, x, dy, gamma, saveMean, saveInvStd, dx, false, dGamma, dBeta, BatchNormEpilogue.None, false, batch, channels, spatial);

    /// <summary>
    /// Backward of <see cref="ForwardTraining(ArrayView{float}, ArrayView{float}, ArrayView{float}, ArrayView{float}, ArrayView{float}, ArrayView{float}, ArrayView{float}, ArrayView{float}, int, int, int, float, float, BatchNormEpilogue)"/>
    /// using its saved mean and invStd. With the epilogue's ReLU, dz = dy where the forward output
    /// y &gt; 0, else 0 (without it dz = dy and y is not read); with xhat = (x - mean) * invStd and
    /// means over batch and spatial:
    /// dx = gamma * invStd * (dz - mean(dz) - xhat * mean(dz * xhat)), dGamma[c] += sum(dz * xhat),
    /// dBeta[c] += sum(dz), and the epilogue's residual gradient gets dz. dx and the residual
    /// gradient are written when their overwrite flag is set (their old contents ignored), else
    /// added to; an empty dx is skipped. x, y, dy, dx and the residual gradient are
    /// <c>[batch, channels, spatial]</c>; the other views <c>[channels]</c>.
    /// </summary>
    public void Backward(
        ArrayView<float> x, ArrayView<float> y, ArrayView<float> dy, ArrayView<float> gamma,
        ArrayView<float> saveMean, ArrayView<float> saveInvStd,
        ArrayView<float> dx, bool overwriteDx, ArrayView<float> dGamma, ArrayView<float> dBeta,
        BatchNormEpilogue epilogue, bool overwriteResidual,
        int batch, int channels, int spatial)
    {
        int n = CheckDimensions(batch, channels, spatial, "batch norm backward");
        HostCheck.Length(x, n, "batch norm backward input");
        HostCheck.Length(dy, n, "batch norm backward output gradient");
        bool hasDx = dx.IsValid && dx.Length > 0;
        if (hasDx)
        {
            HostCheck.Length(dx, n, "batch norm backward input gradient");
        }
        if (epilogue.Relu)
        {
            HostCheck.Length(y, n, "batch norm backward output");
        }
        HostCheck.Length(gamma, channels, "batch norm backward gamma");
        HostCheck.Length(saveMean, channels, "batch norm backward saved mean");
        HostCheck.Length(saveInvStd, channels, "batch norm backward saved inverse std");
        HostCheck.Length(dGamma, channels, "batch norm backward gamma gradient");
        HostCheck.Length(dBeta, channels, "batch norm backward beta gradient");
        var dResidual = CheckResidual(epilogue, n, "batch norm backward residual gradient", x);
        var args = new BatchNormArgs(batch, channels, spatial, 0f, 0f, BatchNormArgs.Flags(true, epilogue, overwriteDx, overwriteResidual, hasDx));
        // Unused views are bound to x, never read or written: every kernel parameter is a valid view.
        Backward(x, epilogue.Relu ? y : x, dy, gamma, saveMean, saveInvStd, hasDx ? dx : x, dGamma, dBeta, dResidual, args);
    }

    private void Forward(
        ArrayView<float> x, ArrayView<float> y, ArrayView<float> residual, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> mean, ArrayView<float> invStd, ArrayView<float> runningMean, ArrayView<float> runningVar, BatchNormArgs args)
    {
        if (launch.IsCpu)
        {
            ForwardCpu(x, y, residual, gamma, beta, mean, invStd, runningMean, runningVar, args);
        }
        else
        {
            ForwardGpu(x, y, residual, gamma, beta, mean, invStd, runningMean, runningVar, args);
        }
    }

    private void Backward(
        ArrayView<float> x, ArrayView<float> y, ArrayView<float> dy, ArrayView<float> gamma, ArrayView<float> mean, ArrayView<float> invStd,
        ArrayView<float> dx, ArrayView<float> dGamma, ArrayView<float> dBeta, ArrayView<float> dResidual, BatchNormArgs args)
    {
        if (launch.IsCpu)
        {
            BackwardCpu(x, y, dy, gamma, mean, invStd, dx, dGamma, dBeta, dResidual, args);
        }
        else
        {
            BackwardGpu(x, y, dy, gamma, mean, invStd, dx, dGamma, dBeta, dResidual, args);
        }
    }

    /// <summary>Checks the dimensions and returns the element count batch * channels * spatial.</summary>
    private static int CheckDimensions(int batch, int channels, int spatial, string what)
    {
        HostCheck.Positive(batch, what + " batch");
        HostCheck.Positive(channels, what + " channels");
        HostCheck.Positive(spatial, what + " spatial");
        return HostCheck.Count((long)batch * channels * spatial, what);
    }

    /// <summary>The epilogue's residual view after a length check, or <paramref name="placeholder"/> (never touched) without one.</summary>
    private static ArrayView<float> CheckResidual(BatchNormEpilogue epilogue, int n, string what, ArrayView<float> placeholder)
    {
        if (!epilogue.HasResidual)
        {
            return placeholder;
        }
        HostCheck.Length(epilogue.Residual, n, what);
        return epilogue.Residual;
    }

    private static void CheckEpsilon(float epsilon, string what)
    {
        if (!(epsilon > 0f) || float.IsInfinity(epsilon))
        {
            throw new ArgumentException($"{what}: epsilon must be positive and finite, got {epsilon}");
        }
    }
}

/// <summary>The scalars of a batch-norm launch (one struct keeps the kernels within ILGPU's parameter limit).</summary>
internal readonly struct BatchNormArgs(int batch, int channels, int spatial, float momentum, float epsilon, int flags)
{
    /// <summary>Flag bits.</summary>
    public const int Training = 1, Residual = 2, Relu = 4, OverwriteDx = 8, OverwriteResidual = 16, HasDx = 32;

    public int Batch { get; } = batch;

    public int Channels { get; } = channels;

    public int Spatial { get; } = spatial;

    public float Momentum { get; } = momentum;

    public float Epsilon { get; } = epsilon;

    public int Bits { get; } = flags;

    /// <summary>True when every bit of <paramref name="flag"/> is set.</summary>
    public bool Has(int flag) => (Bits & flag) == flag;

    public static int Flags(bool training, BatchNormEpilogue epilogue, bool overwriteDx, bool overwriteResidual, bool hasDx) =>
        (training ? Training : 0) | (epilogue.HasResidual ? Residual : 0) | (epilogue.Relu ? Relu : 0)
        | (overwriteDx ? OverwriteDx : 0) | (overwriteResidual ? OverwriteResidual : 0) | (hasDx ? HasDx : 0);
}
