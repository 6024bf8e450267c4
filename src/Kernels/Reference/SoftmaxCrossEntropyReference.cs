namespace ZeroFL.Kernels.Reference;

/// <summary>
/// Plain-loop references for <see cref="SoftmaxCrossEntropyKernels"/>: the truth tests compare
/// against. Same arguments as the kernels, on host arrays; computed in double.
/// </summary>
public static class SoftmaxCrossEntropyReference
{
    /// <summary>
    /// lossPerSample[b] = -log softmax(logits[b, :])[labels[b]];
    /// dLogits[b, c] = gradScale * (p[b, c] - [c == labels[b]]). An out-of-range label gives NaN loss and gradient row.
    /// </summary>
    public static void ForwardBackward(
        float[] logits, int[] labels, float[] lossPerSample, float[] dLogits, int batch, int classes, float gradScale)
    {
        for (int b = 0; b < batch; b++)
        {
            int row = b * classes;
            int label = labels[b];
            if (label < 0 || label >= classes)
            {
                lossPerSample[b] = float.NaN;
                Array.Fill(dLogits, float.NaN, row, classes);
                continue;
            }
            double max = double.NegativeInfinity;
            for (int c = 0; c < classes; c++)
            {
                max = Math.Max(max, logits[row + c]);
            }
            double sum = 0;
            for (int c = 0; c < classes; c++)
            {
                sum += Math.Exp(logits[row + c] - max);
            }
            double logSum = max + Math.Log(sum);
            lossPerSample[b] = (float)(logSum - logits[row + label]);
            for (int c = 0; c < classes; c++)
            {
                double p = Math.Exp(logits[row + c] - logSum);
                dLogits[row + c] = (float)(gradScale * (c == label ? p - 1 : p));
            }
        }
    }

    /// <summary>Argmax of each row, the first on ties.</summary>
    public static int[] Predict(float[] logits, int batch, int classes)
    {
        var predictions = new int[batch];
        for (int b = 0; b < batch; b++)
        {
            int best = 0;
            for (int c = 1; c < classes; c++)
            {
                if (logits[b * classes + c] > logits[b * classes + best])
                {
                    best = c;
                }
            }
            predictions[b] = best;
        }
        return predictions;
    }

    /// <summary>Number of samples whose prediction equals the label.</summary>
    public static int CountCorrect(float[] logits, int[] labels, int batch, int classes)
    {
        var predictions = Predict(logits, batch, classes);
        return Enumerable.Range(0, batch).Count(b => predictions[b] == labels[b]);
    }
}
