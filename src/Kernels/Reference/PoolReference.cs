namespace ZeroFL.Kernels.Reference;

/// <summary>Plain-loop references for <see cref="PoolKernels"/>: the truth tests compare against.</summary>
public static class PoolReference
{
    /// <summary>
    /// 2x2 max-pool, stride 2, on x <c>[batch, channels, height, width]</c>; returns y
    /// <c>[batch, channels, height / 2, width / 2]</c> and the flat x index of each maximum (first on ties).
    /// </summary>
    public static (float[] Y, int[] Argmax) MaxPool2x2Forward(float[] x, int batch, int channels, int height, int width)
    {
        int outHeight = height / 2, outWidth = width / 2;
        var y = new float[batch * channels * outHeight * outWidth];
        var argmax = new int[y.Length];
        for (int b = 0; b < batch; b++)
        {
            for (int c = 0; c < channels; c++)
            {
                for (int oh = 0; oh < outHeight; oh++)
                {
                    for (int ow = 0; ow < outWidth; ow++)
                    {
                        int o = ((b * channels + c) * outHeight + oh) * outWidth + ow;
                        int best = -1;
                        for (int dh = 0; dh < 2; dh++)
                        {
                            for (int dw = 0; dw < 2; dw++)
                            {
                                int i = ((b * channels + c) * height + 2 * oh + dh) * width + 2 * ow + dw;
                                if (best < 0 || x[i] > x[best])
                                {
                                    best = i;
                                }
                            }
                        }
                        y[o] = x[best];
                        argmax[o] = best;
                    }
                }
            }
        }
        return (y, argmax);
    }

    /// <summary>dx[argmax[i]] += dy[i].</summary>
    public static void MaxPool2x2Backward(float[] dy, int[] argmax, float[] dx)
    {
        for (int i = 0; i < dy.Length; i++)
        {
            dx[argmax[i]] += dy[i];
        }
    }

    /// <summary>y[b, c] = mean over s of x[b, c, s].</summary>
    public static float[] GlobalAvgPoolForward(float[] x, int batch, int channels, int spatial)
    {
        var y = new float[batch * channels];
        for (int r = 0; r < batch * channels; r++)
        {
            double sum = 0;
            for (int s = 0; s < spatial; s++)
            {
                sum += x[r * spatial + s];
            }
            y[r] = (float)(sum / spatial);
        }
        return y;
    }

    /// <summary>dx[b, c, s] += dy[b, c] / spatial.</summary>
    public static void GlobalAvgPoolBackward(float[] dy, float[] dx, int batch, int channels, int spatial)
    {
        for (int r = 0; r < batch * channels; r++)
        {
            for (int s = 0; s < spatial; s++)
            {
                dx[r * spatial + s] += dy[r] / spatial;
            }
        }
    }
}
