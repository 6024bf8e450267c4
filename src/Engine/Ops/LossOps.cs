using ILGPU;
using ZeroFL.Engine.Autograd;
using ZeroFL.Engine.Profiling;

namespace ZeroFL.Engine.Ops;

public static partial class Ops
{
    /// <summary>
    /// Fused softmax cross-entropy, mean over the batch. logits: [batch, classes]; labels: [batch]
    /// class indices in [0, classes) on the device. Returns the per-sample losses (a view of
    /// [batch] floats; their mean is the loss). The gradient is computed in the same kernel and
    /// added to the logits' gradient on backward.
    /// </summary>
    public static ArrayView<float> SoftmaxCrossEntropy(Tape tape, Tensor logits, ArrayView<int> labels)
    {
        if (logits.Shape.Length != 2)
        {
            throw new ArgumentException($"softmax cross-entropy expects logits [batch, classes], got {logits}");
        }
        int batch = logits.Dim(0), classes = logits.Dim(1);
        if (labels.Length != batch)
        {
            throw new ArgumentException($"softmax cross-entropy: {labels.Length} labels for a batch of {batch}");
        }
        var k = tape.Kernels;
        var loss = tape.Workspace.Floats.Allocate(batch);
        var dLogits = tape.Workspace.Floats.Allocate(logits.Length);
        using (tape.Measure(OpKinds.Loss, Pass.Forward, "loss"))
        {
            k.SoftmaxCrossEntropy.ForwardBackward(logits.Data, labels, loss, dLogits, batch, classes, 1f / batch);
        }
        if (logits.RequiresGrad)
        {
            tape.Record(null, () =>
            {
                using var backward = tape.Measure(OpKinds.Loss, Pass.Backward, "loss");
                k.Activation.Axpy(dLogits, tape.GradOf(logits), 1f);
            }).Keeps(dLogits);
        }
        else
        {
            tape.Discard(dLogits);
        }
        return loss;
    }
}
