using ILGPU;
using ILGPU.Runtime;
using ZeroFL.Engine.Autograd;
using ZeroFL.Engine.Profiling;
using ZeroFL.Kernels;

namespace ZeroFL.Engine.Ops;

public static partial class Ops
{
    /// <summary>Batch-norm momentum (PyTorch convention) and epsilon.</summary>
    public const float BatchNormMomentum = 0.1f, BatchNormEpsilon = 1e-5f;

    /// <summary>
    /// Batch normalisation over [b, c, h, w] (or [b, c]) per channel, optionally fused with what
    /// follows it: y = bn(x) + <paramref name="residual"/>, then max(y, 0) with <paramref name="relu"/>
    /// (a ResNet block's "bn, add the shortcut, relu" in one pass, forward and backward). While the
    /// tape trains it uses the batch statistics and updates the running ones; otherwise it uses the
    /// running ones. Backward writes the first gradient of x and of the residual rather than adding
    /// to a zeroed buffer.
    /// </summary>
    public static Tensor BatchNorm(Tape tape, Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar, Tensor? residual = null, bool relu = false)
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
        if (residual is not null && (!residual.Shape.SequenceEqual(x.Shape) || ReferenceEquals(residual.Root ?? residual, x.Root ?? x)))
        {
            throw new ArgumentException($"batch-norm: the residual must be another tensor of the input's shape, got {residual} for {x}");
        }
        var k = tape.Kernels;
        using var forward = tape.Measure(OpKinds.BatchNorm, Pass.Forward);
        var epilogue = new BatchNormEpilogue(residual?.Data ?? default, relu);
        if (!tape.Training)
        {
            var yEval = tape.NewTensor(x.Shape, false);
            k.BatchNorm.ForwardInference(x.Data, yEval.Data, gamma.Data, beta.Data, runningMean.Data, runningVar.Data, b, c, spatial, BatchNormEpsilon, epilogue);
            return yEval;
        }
        var y = tape.NewTensor(x.Shape, true);
        var mean = tape.Workspace.Floats.Allocate(c);
        var invStd = tape.Workspace.Floats.Allocate(c);
        if (tape.Recomputing)
        {
            // The first forward updated the running statistics; this one updates a copy it drops.
            var running = tape.Workspace.Floats.Allocate(2L * c);
            runningMean.Data.CopyTo(running.SubView(0, c));
            runningVar.Data.CopyTo(running.SubView(c, c));
            k.BatchNorm.ForwardTraining(x.Data, y.Data, gamma.Data, beta.Data, mean, invStd, running.SubView(0, c), running.SubView(c, c), b, c, spatial, BatchNormMomentum, BatchNormEpsilon, epilogue);
            tape.Discard(running);
        }
        else
        {
            k.BatchNorm.ForwardTraining(x.Data, y.Data, gamma.Data, beta.Data, mean, invStd, runningMean.Data, runningVar.Data, b, c, spatial, BatchNormMomentum, BatchNormEpsilon, epilogue);
        }
        string scope = tape.Scope;
        // With the ReLU the backward needs y only where it is positive: when nothing else keeps y,
        // the record packs that into a 1-bit mask as the forward releases y, and y is freed then.
        bool maskOnly = false;
        ArrayView<int> positive = default;
        var record = tape.Record(y, () =>
        {
            if (!y.HasGrad)
            {
                return;
            }
            using var backward = tape.Measure(OpKinds.BatchNorm, Pass.Backward, scope);
            bool overwriteDx = false, overwriteResidual = false;
            var dx = x.RequiresGrad ? tape.GradToWrite(x, out overwriteDx) : default;
            var dResidual = residual is not null && residual.RequiresGrad ? tape.GradToWrite(residual, out overwriteResidual) : default;
            if (maskOnly)
            {
                // dz = dy where y > 0, else +0: what the fused ReLU backward computes from y; dy is
                // this op's output gradient, freed right after, so it is masked in place.
                k.Activation.KeepWhereSet(positive, y.Grad);
            }
            bool readsY = relu && !maskOnly;
            k.BatchNorm.Backward(x.Data, readsY ? y.Data : x.Data, y.Grad, gamma.Data, mean, invStd, dx, overwriteDx, tape.GradOf(gamma), tape.GradOf(beta),
                new BatchNormEpilogue(dResidual, readsY), overwriteResidual, b, c, spatial);
        });
        record.Keeps(mean).Keeps(invStd).Reads(x);
        // Without the ReLU the backward does not read y at all.
        if (relu)
        {
            record.ReadsOrCompacts(y, () =>
            {
                using var pack = tape.Measure(OpKinds.BatchNorm, Pass.Forward, scope);
                positive = tape.Workspace.Ints.Allocate(ActivationKernels.MaskLength(y.Length));
                k.Activation.PackPositive(y.Data, positive);
                record.Keeps(positive);
                maskOnly = true;
            });
        }
        return y;
    }
}
