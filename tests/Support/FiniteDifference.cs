namespace ZeroFL.Tests.Support;

/// <summary>Central finite differences of a scalar loss computed on the CPU references.</summary>
public static class FiniteDifference
{
    /// <summary>
    /// d loss / d x[i] for every i by (loss(x + h e_i) - loss(x - h e_i)) / (actual step), where the
    /// actual step is measured after rounding x +- h to float. <paramref name="x"/> is restored.
    /// </summary>
    public static float[] Gradient(float[] x, Func<double> loss, float h = 1e-3f)
    {
        var gradient = new float[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            float saved = x[i];
            float plus = saved + h;
            float minus = saved - h;
            x[i] = plus;
            double lossPlus = loss();
            x[i] = minus;
            double lossMinus = loss();
            x[i] = saved;
            gradient[i] = (float)((lossPlus - lossMinus) / ((double)plus - minus));
        }
        return gradient;
    }

    /// <summary>sum of y[i] * r[i] in double: a loss whose output gradient is r.</summary>
    public static double Dot(float[] y, float[] r)
    {
        double sum = 0;
        for (int i = 0; i < y.Length; i++)
        {
            sum += (double)y[i] * r[i];
        }
        return sum;
    }
}
