namespace ZeroFL.Kernels.Reference;

/// <summary>Plain-loop references for <see cref="ActivationKernels"/>: the truth tests compare against.</summary>
public static class ActivationReference
{
    /// <summary>y = max(x, 0).</summary>
    public static float[] ReluForward(float[] x) => x.Select(v => v > 0f ? v : 0f).ToArray();

    /// <summary>dx += dy where y &gt; 0.</summary>
    public static void ReluBackward(float[] y, float[] dy, float[] dx)
    {
        for (int i = 0; i < y.Length; i++)
        {
            if (y[i] > 0f)
            {
                dx[i] += dy[i];
            }
        }
    }

    /// <summary>Bit i % 32 of int i / 32 set where y[i] &gt; 0.</summary>
    public static int[] PackPositive(float[] y)
    {
        var bits = new int[(y.Length + 31) / 32];
        for (int i = 0; i < y.Length; i++)
        {
            if (y[i] > 0f)
            {
                bits[i / 32] |= 1 << (i % 32);
            }
        }
        return bits;
    }

    /// <summary>dy[i] = 0 where bit i of the mask is clear.</summary>
    public static void KeepWhereSet(int[] bits, float[] dy)
    {
        for (int i = 0; i < dy.Length; i++)
        {
            if ((bits[i / 32] & (1 << (i % 32))) == 0)
            {
                dy[i] = 0f;
            }
        }
    }

    /// <summary>y[b, c, s] += bias[c].</summary>
    public static void BiasForward(float[] y, float[] bias, int batch, int channels, int spatial)
    {
        for (int b = 0; b < batch; b++)
        {
            for (int c = 0; c < channels; c++)
            {
                for (int s = 0; s < spatial; s++)
                {
                    y[(b * channels + c) * spatial + s] += bias[c];
                }
            }
        }
    }

    /// <summary>dBias[c] += sum of dy[b, c, s].</summary>
    public static void BiasBackward(float[] dy, float[] dBias, int batch, int channels, int spatial)
    {
        for (int b = 0; b < batch; b++)
        {
            for (int c = 0; c < channels; c++)
            {
                for (int s = 0; s < spatial; s++)
                {
                    dBias[c] += dy[(b * channels + c) * spatial + s];
                }
            }
        }
    }
}
