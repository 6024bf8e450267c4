using ILGPU;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// Softmax cross-entropy on logits <c>[batch, classes]</c> with integer labels <c>[batch]</c>: the
/// fused forward and backward used in training, and the argmax prediction and correct-count used in
/// evaluation. One thread per sample (grid-stride over the batch).
/// CPU references: <see cref="Reference.SoftmaxCrossEntropyReference"/>.
/// </summary>
/// <remarks>
/// Labels are device data and are not read on the host (that would cost a copy per step). They must
/// lie in [0, classes); a sample whose label does not is never used as an index: its loss and its
/// dLogits row are written as NaN, so the failure shows in the loss instead of killing the process.
/// </remarks>
public sealed class SoftmaxCrossEntropyKernels
{
    private readonly KernelLaunch launch;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, int, float, int> forwardBackward;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<int>, int, int, int> predict;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<int>, int, int, int> countCorrect;

    /// <summary>Loads the kernels once for the accelerator of <paramref name="launch"/>.</summary>
    public SoftmaxCrossEntropyKernels(KernelLaunch launch)
    {
        this.launch = launch;
        forwardBackward = launch.Load<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, int, float, int>(ForwardBackwardKernel);
        predict = launch.Load<ArrayView<float>, ArrayView<int>, int, int, int>(PredictKernel);
        countCorrect = launch.Load<ArrayView<float>, ArrayView<int>, ArrayView<int>, int, int, int>(CountCorrectKernel);
    }

    /// <summary>
    /// With p = softmax(logits[b, :]) computed stably (max subtracted, log-sum-exp):
    /// lossPerSample[b] = -log p[b, labels[b]] and dLogits[b, c] = gradScale * (p[b, c] - [c == labels[b]])
    /// (overwritten, not accumulated). Pass gradScale = 1 / batch for the gradient of the mean loss.
    /// logits and dLogits are <c>[batch, classes]</c>; labels and lossPerSample <c>[batch]</c>.
    /// Labels must be in [0, classes); see the class remarks for what happens otherwise.
    /// dLogits may be the same view as logits (the gradient then replaces the logits).
    /// </summary>
    public void ForwardBackward(
        ArrayView<float> logits, ArrayView<int> labels, ArrayView<float> lossPerSample, ArrayView<float> dLogits,
        int batch, int classes, float gradScale)
    {
        CheckLogits(logits, labels, batch, classes, "softmax cross-entropy");
        HostCheck.Length(lossPerSample, batch, "softmax cross-entropy loss");
        HostCheck.Length(dLogits, (long)batch * classes, "softmax cross-entropy logits gradient");
        if (!float.IsFinite(gradScale))
        {
            throw new ArgumentException($"softmax cross-entropy: gradScale must be finite, got {gradScale}");
        }
        int t = launch.Threads(batch);
        forwardBackward(t, logits, labels, lossPerSample, dLogits, batch, classes, gradScale, t);
    }

    /// <summary>
    /// predictions[b] = argmax over c of logits[b, c] (the first on ties).
    /// logits <c>[batch, classes]</c>, predictions <c>[batch]</c>.
    /// </summary>
    public void Predict(ArrayView<float> logits, ArrayView<int> predictions, int batch, int classes)
    {
        HostCheck.Positive(batch, "softmax predict batch");
        HostCheck.Positive(classes, "softmax predict classes");
        HostCheck.Length(logits, HostCheck.Count((long)batch * classes, "softmax predict"), "softmax predict logits");
        HostCheck.Length(predictions, batch, "softmax predict predictions");
        int t = launch.Threads(batch);
        predict(t, logits, predictions, batch, classes, t);
    }

    /// <summary>
    /// correctCount[0] += the number of samples b whose prediction (as <see cref="Predict"/>) equals
    /// labels[b]: accumulate over evaluation batches, zero it first. A label outside [0, classes) counts
    /// as wrong. logits <c>[batch, classes]</c>, labels <c>[batch]</c>, correctCount <c>[1]</c>.
    /// </summary>
    public void CountCorrect(ArrayView<float> logits, ArrayView<int> labels, ArrayView<int> correctCount, int batch, int classes)
    {
        CheckLogits(logits, labels, batch, classes, "softmax count correct");
        HostCheck.Length(correctCount, 1, "softmax count correct counter");
        int t = launch.Threads(batch);
        countCorrect(t, logits, labels, correctCount, batch, classes, t);
    }

    private static void CheckLogits(ArrayView<float> logits, ArrayView<int> labels, int batch, int classes, string what)
    {
        HostCheck.Positive(batch, what + " batch");
        HostCheck.Positive(classes, what + " classes");
        HostCheck.Length(logits, HostCheck.Count((long)batch * classes, what), what + " logits");
        HostCheck.Length(labels, batch, what + " labels");
    }

    [GpuKernel]
    internal static void ForwardBackwardKernel(
        Index1D index, ArrayView<float> logits, ArrayView<int> labels, ArrayView<float> lossPerSample, ArrayView<float> dLogits,
        int batch, int classes, float gradScale, int stride)
    {
        for (int b = index; b < batch; b += stride)
        {
            long row = (long)b * classes;
            int label = labels[b];
            if (label < 0 || label >= classes)
            {
                lossPerSample[b] = float.NaN;
                for (int c = 0; c < classes; c++)
                {
                    dLogits[row + c] = float.NaN;
                }
                continue;
            }
            float max = logits[row];
            for (int c = 1; c < classes; c++)
            {
                max = MathF.Max(max, logits[row + c]);
            }
            float sum = 0f;
            for (int c = 0; c < classes; c++)
            {
                sum += MathF.Exp(logits[row + c] - max);
            }
            float logSum = MathF.Log(sum);
            // Read before the gradient loop, which may overwrite logits when dLogits aliases them.
            lossPerSample[b] = logSum - (logits[row + label] - max);
            for (int c = 0; c < classes; c++)
            {
                float p = MathF.Exp(logits[row + c] - max - logSum);
                dLogits[row + c] = gradScale * (c == label ? p - 1f : p);
            }
        }
    }

    [GpuKernel]
    internal static void PredictKernel(Index1D index, ArrayView<float> logits, ArrayView<int> predictions, int batch, int classes, int stride)
    {
        for (int b = index; b < batch; b += stride)
        {
            predictions[b] = ArgMax(logits, (long)b * classes, classes);
        }
    }

    [GpuKernel]
    internal static void CountCorrectKernel(
        Index1D index, ArrayView<float> logits, ArrayView<int> labels, ArrayView<int> correctCount, int batch, int classes, int stride)
    {
        int correct = 0;
        for (int b = index; b < batch; b += stride)
        {
            if (ArgMax(logits, (long)b * classes, classes) == labels[b])
            {
                correct++;
            }
        }
        if (correct > 0)
        {
            Atomic.Add(ref correctCount[0], correct);
        }
    }

    /// <summary>Index of the first maximum of logits[row .. row + classes).</summary>
    private static int ArgMax(ArrayView<float> logits, long row, int classes)
    {
        int best = 0;
        float bestValue = logits[row];
        for (int c = 1; c < classes; c++)
        {
            float v = logits[row + c];
            if (v > bestValue)
            {
                best = c;
                bestValue = v;
            }
        }
        return best;
    }
}
