namespace ZeroFL.Kernels.Reference;

/// <summary>
/// Plain-loop reference for <see cref="Conv2dKernels"/> (direct convolution, sums in double):
/// x is [batch, inChannels, inHeight, inWidth], w is [outChannels, inChannels, kernelHeight,
/// kernelWidth], y is [batch, outChannels, outHeight, outWidth]; zero padding, no bias.
/// </summary>
public static class ConvReference
{
    /// <summary>y = conv(x, w).</summary>
    public static float[] Forward(ConvGeometry g, float[] x, float[] w)
    {
        g.Validate();
        var y = new float[g.OutputLength];
        for (int b = 0; b < g.Batch; b++)
        {
            for (int co = 0; co < g.OutChannels; co++)
            {
                for (int oh = 0; oh < g.OutHeight; oh++)
                {
                    for (int ow = 0; ow < g.OutWidth; ow++)
                    {
                        double sum = 0;
                        for (int ci = 0; ci < g.InChannels; ci++)
                        {
                            for (int kh = 0; kh < g.KernelHeight; kh++)
                            {
                                for (int kw = 0; kw < g.KernelWidth; kw++)
                                {
                                    if (InputIndex(g, b, ci, oh, ow, kh, kw) is int xi)
                                    {
                                        sum += (double)x[xi] * w[WeightIndex(g, co, ci, kh, kw)];
                                    }
                                }
                            }
                        }
                        y[OutputIndex(g, b, co, oh, ow)] = (float)sum;
                    }
                }
            }
        }
        return y;
    }

    /// <summary>dx += dL/dx given dy = dL/dy.</summary>
    public static void BackwardInput(ConvGeometry g, float[] dy, float[] w, float[] dx)
    {
        g.Validate();
        var sum = new double[g.InputLength];
        ForEachTap(g, (yi, wi, xi) => sum[xi] += (double)dy[yi] * w[wi]);
        for (int i = 0; i < dx.Length; i++)
        {
            dx[i] = (float)(dx[i] + sum[i]);
        }
    }

    /// <summary>dw += dL/dw given dy = dL/dy and the forward input x.</summary>
    public static void BackwardWeight(ConvGeometry g, float[] dy, float[] x, float[] dw)
    {
        g.Validate();
        var sum = new double[g.WeightLength];
        ForEachTap(g, (yi, wi, xi) => sum[wi] += (double)dy[yi] * x[xi]);
        for (int i = 0; i < dw.Length; i++)
        {
            dw[i] = (float)(dw[i] + sum[i]);
        }
    }

    /// <summary>Calls <paramref name="tap"/>(output index, weight index, input index) for every in-image tap.</summary>
    private static void ForEachTap(ConvGeometry g, Action<int, int, int> tap)
    {
        for (int b = 0; b < g.Batch; b++)
        {
            for (int co = 0; co < g.OutChannels; co++)
            {
                for (int oh = 0; oh < g.OutHeight; oh++)
                {
                    for (int ow = 0; ow < g.OutWidth; ow++)
                    {
                        int yi = OutputIndex(g, b, co, oh, ow);
                        for (int ci = 0; ci < g.InChannels; ci++)
                        {
                            for (int kh = 0; kh < g.KernelHeight; kh++)
                            {
                                for (int kw = 0; kw < g.KernelWidth; kw++)
                                {
                                    if (InputIndex(g, b, ci, oh, ow, kh, kw) is int xi)
                                    {
                                        tap(yi, WeightIndex(g, co, ci, kh, kw), xi);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    private static int? InputIndex(ConvGeometry g, int b, int ci, int oh, int ow, int kh, int kw)
    {
        int ih = oh * g.Stride - g.Padding + kh;
        int iw = ow * g.Stride - g.Padding + kw;
        if (ih < 0 || ih >= g.InHeight || iw < 0 || iw >= g.InWidth)
        {
            return null;
        }
        return ((b * g.InChannels + ci) * g.InHeight + ih) * g.InWidth + iw;
    }

    private static int WeightIndex(ConvGeometry g, int co, int ci, int kh, int kw)
        => ((co * g.InChannels + ci) * g.KernelHeight + kh) * g.KernelWidth + kw;

    private static int OutputIndex(ConvGeometry g, int b, int co, int oh, int ow)
        => ((b * g.OutChannels + co) * g.OutHeight + oh) * g.OutWidth + ow;
}
