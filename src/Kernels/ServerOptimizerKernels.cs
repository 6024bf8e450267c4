using ILGPU;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>How a server step updates the second moment v from the pseudo-gradient d (Reddi et al. 2020, as Flower does it).</summary>
public enum SecondMomentRule
{
    /// <summary>FedAdam: v = beta2 v + (1 - beta2) d^2.</summary>
    Adam,

    /// <summary>FedYogi: v = v - (1 - beta2) d^2 sign(v - d^2), with sign(0) = 0.</summary>
    Yogi,

    /// <summary>FedAdagrad: v = v + d^2 (beta2 unused).</summary>
    Adagrad,
}

/// <summary>
/// One server step's settings. <see cref="LearningRate"/> is the step size of this round (FedAdam's
/// bias correction is applied by the caller). With <see cref="AggregateIsDifference"/> the aggregate
/// is already the pseudo-gradient d (the diff strategies' average difference); otherwise it is the
/// averaged model and d = aggregate - model.
/// </summary>
/// <param name="Rule">Second-moment rule.</param>
/// <param name="LearningRate">Server step size, positive.</param>
/// <param name="Beta1">First-moment decay in [0, 1).</param>
/// <param name="Beta2">Second-moment decay in [0, 1) (unused by Adagrad).</param>
/// <param name="Tau">Adaptivity constant, positive (0 would give 0/0 where m and v are both 0).</param>
/// <param name="AggregateIsDifference">Whether the aggregate is d itself.</param>
public readonly record struct ServerStep(SecondMomentRule Rule, float LearningRate, float Beta1, float Beta2, float Tau, bool AggregateIsDifference)
{
    /// <summary>Throws <see cref="ArgumentException"/> with one line naming the first bad value.</summary>
    public void Validate()
    {
        if (!(LearningRate > 0f) || !float.IsFinite(LearningRate))
        {
            throw new ArgumentException($"server step: learning rate must be positive and finite, got {LearningRate}");
        }
        if (!(Beta1 >= 0f && Beta1 < 1f) || !(Beta2 >= 0f && Beta2 < 1f))
        {
            throw new ArgumentException($"server step: beta1 and beta2 must be in [0, 1), got {Beta1} and {Beta2}");
        }
        if (!(Tau > 0f) || !float.IsFinite(Tau))
        {
            throw new ArgumentException($"server step: tau must be positive and finite, got {Tau}");
        }
        if (!Enum.IsDefined(Rule))
        {
            throw new ArgumentException($"server step: unknown second-moment rule {(int)Rule}");
        }
    }
}

/// <summary>
/// The adaptive server optimizers of FedOpt (FedAdam, FedYogi, FedAdagrad) as one element-wise
/// grid-stride launch over a flat block: per entry, d = pseudo-gradient,
/// m = beta1 m + (1 - beta1) d, v by the <see cref="SecondMomentRule"/>, and
/// x = x + lr m / (sqrt(v) + tau). The rule is a uniform branch (one kernel serves all three).
/// CPU reference: <see cref="Reference.ServerOptimizerReference"/> (float, the same operations in
/// the same order: equal bits on the CPU accelerator).
/// </summary>
public sealed class ServerOptimizerKernels
{
    private readonly KernelLaunch launch;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ServerStepArgs, int, int> step;

    /// <summary>Loads the kernel once for the accelerator of <paramref name="launch"/>.</summary>
    public ServerOptimizerKernels(KernelLaunch launch)
    {
        this.launch = launch;
        step = launch.Load<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ServerStepArgs, int, int>(StepKernel);
    }

    /// <summary>
    /// One server step over <paramref name="model"/> (updated in place), reading
    /// <paramref name="aggregate"/> and updating the moments <paramref name="firstMoment"/> (m) and
    /// <paramref name="secondMoment"/> (v); all four flat and of one length. The moments start at
    /// zero (the caller zeroes them once).
    /// </summary>
    public void Step(ArrayView<float> model, ArrayView<float> aggregate, ArrayView<float> firstMoment, ArrayView<float> secondMoment, ServerStep settings)
    {
        HostCheck.SameLength(model, aggregate, "server step model and aggregate");
        HostCheck.SameLength(model, firstMoment, "server step model and first moment");
        HostCheck.SameLength(model, secondMoment, "server step model and second moment");
        settings.Validate();
        int n = HostCheck.Count(model.Length, "server step");
        if (n == 0)
        {
            return;
        }
        int t = launch.Threads(n);
        step(t, model, aggregate, firstMoment, secondMoment, new ServerStepArgs(settings), n, t);
    }

    [GpuKernel]
    internal static void StepKernel(
        Index1D index, ArrayView<float> model, ArrayView<float> aggregate, ArrayView<float> firstMoment, ArrayView<float> secondMoment,
        ServerStepArgs args, int n, int stride)
    {
        for (int i = index; i < n; i += stride)
        {
            float x = model[i];
            float d = args.DifferenceAggregate != 0 ? aggregate[i] : aggregate[i] - x;
            float m = args.Beta1 * firstMoment[i] + args.OneMinusBeta1 * d;
            float d2 = d * d;
            float v = secondMoment[i];
            if (args.Rule == (int)SecondMomentRule.Adam)
            {
                v = args.Beta2 * v + args.OneMinusBeta2 * d2;
            }
            else if (args.Rule == (int)SecondMomentRule.Yogi)
            {
                float sign = v > d2 ? 1f : v < d2 ? -1f : 0f;
                v = v - args.OneMinusBeta2 * d2 * sign;
            }
            else
            {
                v = v + d2;
            }
            firstMoment[i] = m;
            secondMoment[i] = v;
            model[i] = x + args.LearningRate * m / (MathF.Sqrt(v) + args.Tau);
        }
    }
}

/// <summary>The scalars of a server step as the kernel reads them (ints for the rule and the flag).</summary>
internal readonly struct ServerStepArgs(ServerStep step)
{
    public int Rule { get; } = (int)step.Rule;

    public float LearningRate { get; } = step.LearningRate;

    public float Beta1 { get; } = step.Beta1;

    public float OneMinusBeta1 { get; } = 1f - step.Beta1;

    public float Beta2 { get; } = step.Beta2;

    public float OneMinusBeta2 { get; } = 1f - step.Beta2;

    public float Tau { get; } = step.Tau;

    public int DifferenceAggregate { get; } = step.AggregateIsDifference ? 1 : 0;
}
