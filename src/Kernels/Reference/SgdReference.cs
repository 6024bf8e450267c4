namespace ZeroFL.Kernels.Reference;

/// <summary>Plain-loop reference for <see cref="SgdKernels"/>: the truth tests compare against.</summary>
public static class SgdReference
{
    /// <summary>
    /// g = grad + weightDecay * p; with momentum: buf = momentum * buf + g, p -= lr * buf;
    /// without: p -= lr * g (the buffer is untouched and may be empty).
    /// </summary>
    public static void Step(float[] parameters, float[] gradients, float[] momentumBuffer, float learningRate, float momentum, float weightDecay)
    {
        for (int i = 0; i < parameters.Length; i++)
        {
            float g = gradients[i] + weightDecay * parameters[i];
            if (momentum != 0f)
            {
                momentumBuffer[i] = momentum * momentumBuffer[i] + g;
                g = momentumBuffer[i];
            }
            parameters[i] -= learningRate * g;
        }
    }
}
