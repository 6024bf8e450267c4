using ZeroFL.Engine.Autograd;
using ZeroFL.Engine.Profiling;

namespace ZeroFL.Engine.Ops;

public static partial class Ops
{
    /// <summary>Batch-norm momentum (PyTorch convention) and epsilon.</summary>
    public const float BatchNormMomentum = 0.1f, BatchNormEpsilon = 1e-5f;

    /// <summary>
    /// Batch normalisation over [b, c, h, w] (or [b, c]) per channel. While the tape trains it uses
    /// the batch statistics and updates the running ones; otherwise it uses the running ones.
    /// </summary>
    public static Tensor BatchNorm(Tape tape, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar)
    {
        if (x.Shape.Length < 2)
        {
            throw new ArgumentException($"batch-norm expects [batch, channels, ...], got {x}");
        }
        int b = x.Dim(0), c = x.Dim(1);
        int spatial = (int)(x.Length / ((long)b * c));
        if (gamma.Length != c || beta.Length != c || runningMean.Length != c || runningVar.Length != c)
        {
            throw new ArgumentException($"batch-norm: parameters must have {c} elements for input {x}");
        }
        var k = tape.Kernels;
        using var forward = tape.Measure(OpKinds.BatchNorm, Pass.Forward);
        if (!tape.Training)
        {
            var yEval = tape.NewTensor(x.Shape, false);
            k.BatchNorm.ForwardInference(x.Data, yEval.Data, gamma.Data, beta.Data, runningMean.Data, runningVar.Data, b, c, spatial, BatchNormEpsilon);
            return yEval;
        }
        var y = tape.NewTensor(x.Shape, true);
        var mean = tape.Workspace.Floats.Allocate(c);
        var invStd = tape.Workspace.Floats.Allocate(c);
        k.BatchNorm.ForwardTraining(x.Data, y.Data, gamma.Data, beta.Data, mean, invStd, runningMean.Data, runningVar.Data, b, c, spatial, BatchNormMomentum, BatchNormEpsilon);
        string scope = tape.Scope;
        tape.Record(() =>
        {
            if (!y.HasGrad)
            {
                return;
            }
            using var backward = tape.Measure(OpKinds.BatchNorm, Pass.Backward, scope);
            var dx = x.RequiresGrad ? tape.GradOf(x) : tape.Workspace.Floats.AllocateZeroed(x.Length);
            k.BatchNorm.Backward(x.Data, y.Grad, gamma.Data, mean, invStd, dx, tape.GradOf(gamma), tape.GradOf(beta), b, c, spatial);
        });
        return y;
    }
}
