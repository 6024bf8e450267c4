namespace ZeroFL.Kernels.Reference;

/// <summary>
/// Plain-loop references for <see cref="BatchNormKernels"/>: the truth tests compare against.
/// Same arguments as the kernels, on host arrays; sums in double.
/// </summary>
public static class BatchNormReference
{
    /// <summary>Training-mode forward: batch statistics, y, saved mean and invStd, running statistics updated in place.</summary>
    public static void ForwardTraining(
        float[] x, float[] y, float[] gamma, float[] beta,
        float[] saveMean, float[] saveInvStd, float[] runningMean, float[] runningVar,
        int batch, int channels, int spatial, float momentum, float epsilon)
    {
        int count = batch * spatial;
        for (int c = 0; c < channels; c++)
        {
            double sum = 0;
            for (int b = 0; b < batch; b++)
            {
                for (int s = 0; s < spatial; s++)
                {
                    sum += x[(b * channels + c) * spatial + s];
                }
            }
            double mean = sum / count;
            double squares = 0;
            for (int b = 0; b < batch; b++)
            {
                for (int s = 0; s < spatial; s++)
                {
                    double d = x[(b * channels + c) * spatial + s] - mean;
                    squares += d * d;
                }
            }
            double variance = squares / count;
            double invStd = 1.0 / Math.Sqrt(variance + epsilon);
            saveMean[c] = (float)mean;
            saveInvStd[c] = (float)invStd;
            runningMean[c] = (float)((1.0 - momentum) * runningMean[c] + momentum * mean);
            runningVar[c] = (float)((1.0 - momentum) * runningVar[c] + momentum * squares / (count - 1));
            for (int b = 0; b < batch; b++)
            {
                for (int s = 0; s < spatial; s++)
                {
                    int i = (b * channels + c) * spatial + s;
                    y[i] = (float)((x[i] - mean) * invStd * gamma[c] + beta[c]);
                }
            }
        }
    }

    /// <summary>Inference-mode forward with the running statistics.</summary>
    public static void ForwardInference(
        float[] x, float[] y, float[] gamma, float[] beta, float[] runningMean, float[] runningVar,
        int batch, int channels, int spatial, float epsilon)
    {
        for (int b = 0; b < batch; b++)
        {
            for (int c = 0; c < channels; c++)
            {
                double invStd = 1.0 / Math.Sqrt((double)runningVar[c] + epsilon);
                for (int s = 0; s < spatial; s++)
                {
                    int i = (b * channels + c) * spatial + s;
                    y[i] = (float)((x[i] - (double)runningMean[c]) * invStd * gamma[c] + beta[c]);
                }
            }
        }
    }

    /// <summary>Backward with the saved statistics: dx, dGamma and dBeta are accumulated (+=).</summary>
    public static void Backward(
        float[] x, float[] dy, float[] gamma, float[] saveMean, float[] saveInvStd,
        float[] dx, float[] dGamma, float[] dBeta, int batch, int channels, int spatial)
    {
        int count = batch * spatial;
        for (int c = 0; c < channels; c++)
        {
            double sumDy = 0, sumDyXhat = 0;
            for (int b = 0; b < batch; b++)
            {
                for (int s = 0; s < spatial; s++)
                {
                    int i = (b * channels + c) * spatial + s;
                    double xhat = (x[i] - (double)saveMean[c]) * saveInvStd[c];
                    sumDy += dy[i];
                    sumDyXhat += dy[i] * xhat;
                }
            }
            dBeta[c] += (float)sumDy;
            dGamma[c] += (float)sumDyXhat;
            for (int b = 0; b < batch; b++)
            {
                for (int s = 0; s < spatial; s++)
                {
                    int i = (b * channels + c) * spatial + s;
                    double xhat = (x[i] - (double)saveMean[c]) * saveInvStd[c];
                    dx[i] += (float)((double)gamma[c] * saveInvStd[c] * (dy[i] - sumDy / count - xhat * sumDyXhat / count));
                }
            }
        }
    }
}
