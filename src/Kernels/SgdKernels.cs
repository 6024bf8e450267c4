using ILGPU;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// Stochastic gradient descent with momentum and weight decay, PyTorch's <c>torch.optim.SGD</c>
/// semantics (dampening 0, no Nesterov), in one element-wise launch over the whole flat parameter
/// block: a grid-stride kernel on GPU backends; on the CPU accelerator each thread (one per core)
/// updates a contiguous block with Vector256 (<see cref="SgdRanges"/>; the same float operations
/// in the same order, so both give the same bits). CPU reference: <see cref="Reference.SgdReference"/>.
/// </summary>
public sealed partial class SgdKernels
{
    private readonly KernelLaunch launch;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, float, float, int, int>? step;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, float, float, int, int>? plainStep;

    /// <summary>Loads the kernels of this accelerator's kind once.</summary>
    public SgdKernels(KernelLaunch launch)
    {
        this.launch = launch;
        if (launch.IsCpu)
        {
            LoadCpu();
            return;
        }
        step = launch.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, float, float, float, int, int>(MomentumStepKernel);
        plainStep = launch.Load<ArrayView<float>, ArrayView<float>, float, float, int, int>(PlainStepKernel);
    }

    /// <summary>
    /// One update of every parameter: g = gradients + weightDecay * parameters;
    /// momentumBuffer = momentum * momentumBuffer + g; parameters -= learningRate * momentumBuffer.
    /// With momentum 0 it is parameters -= learningRate * g and momentumBuffer is neither read nor
    /// written (it may then be empty). The buffer starts at zero: the caller zeroes it once, which
    /// makes the first step buffer = g as in PyTorch. parameters, gradients and (with momentum)
    /// momentumBuffer are flat views of the same length; gradients are not modified.
    /// </summary>
    public void Step(
        ArrayView<float> parameters, ArrayView<float> gradients, ArrayView<float> momentumBuffer,
        float learningRate, float momentum, float weightDecay)
    {
        HostCheck.SameLength(parameters, gradients, "sgd step parameters and gradients");
        CheckHyperparameter(learningRate, "learning rate");
        CheckHyperparameter(momentum, "momentum");
        CheckHyperparameter(weightDecay, "weight decay");
        int n = HostCheck.Count(parameters.Length, "sgd step");
        if (n == 0)
        {
            return;
        }
        if (momentum != 0f)
        {
            HostCheck.SameLength(parameters, momentumBuffer, "sgd step parameters and momentum buffer");
        }
        int t = launch.Threads(n);
        if (launch.IsCpu)
        {
            StepCpu(t, parameters, gradients, momentumBuffer, learningRate, momentum, weightDecay, n);
        }
        else if (momentum == 0f)
        {
            plainStep!(t, parameters, gradients, learningRate, weightDecay, n, t);
        }
        else
        {
            step!(t, parameters, gradients, momentumBuffer, learningRate, momentum, weightDecay, n, t);
        }
    }

    private static void CheckHyperparameter(float value, string name)
    {
        if (!(value >= 0f) || float.IsInfinity(value))
        {
            throw new ArgumentException($"sgd step: {name} must be finite and non-negative, got {value}");
        }
    }

    [GpuKernel]
    internal static void MomentumStepKernel(
        Index1D index, ArrayView<float> parameters, ArrayView<float> gradients, ArrayView<float> momentumBuffer,
        float learningRate, float momentum, float weightDecay, int n, int stride)
    {
        for (int i = index; i < n; i += stride)
        {
            float p = parameters[i];
            float buffer = momentum * momentumBuffer[i] + (gradients[i] + weightDecay * p);
            momentumBuffer[i] = buffer;
            parameters[i] = p - learningRate * buffer;
        }
    }

    [GpuKernel]
    internal static void PlainStepKernel(
        Index1D index, ArrayView<float> parameters, ArrayView<float> gradients,
        float learningRate, float weightDecay, int n, int stride)
    {
        for (int i = index; i < n; i += stride)
        {
            float p = parameters[i];
            parameters[i] = p - learningRate * (gradients[i] + weightDecay * p);
        }
    }
}
