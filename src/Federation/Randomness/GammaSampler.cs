namespace ZeroFL.Federation.Randomness;

/// <summary>
/// Gamma and Dirichlet variates. Gamma(shape, 1) uses Marsaglia and Tsang (2000) for shape &gt;= 1 and
/// the boost Gamma(a) = Gamma(a + 1) * U^(1/a) for shape &lt; 1. Samples are produced as logarithms,
/// so that tiny shapes (alpha = 0.01 gives U^100, which underflows a double) still give a valid
/// Dirichlet vector after normalising in log space.
/// </summary>
internal static class GammaSampler
{
    /// <summary>log X for X ~ Gamma(<paramref name="shape"/>, 1); shape must be positive and finite.</summary>
    public static double LogGamma(double shape, ref SplitMix64 random)
    {
        if (!(shape > 0 && double.IsFinite(shape)))
        {
            throw new ArgumentOutOfRangeException(nameof(shape), shape, "gamma shape must be positive and finite");
        }
        if (shape < 1)
        {
            double boosted = LogGamma(shape + 1, ref random);
            return boosted + Math.Log(random.NextOpenDouble()) / shape;
        }
        double d = shape - 1.0 / 3.0;
        double c = 1.0 / Math.Sqrt(9.0 * d);
        while (true)
        {
            double x = random.NextNormal();
            double v = 1.0 + c * x;
            if (v <= 0)
            {
                continue;
            }
            v = v * v * v;
            double u = random.NextOpenDouble();
            double x2 = x * x;
            if (u < 1.0 - 0.0331 * x2 * x2 || Math.Log(u) < 0.5 * x2 + d * (1.0 - v + Math.Log(v)))
            {
                return Math.Log(d) + Math.Log(v);
            }
        }
    }

    /// <summary>X ~ Gamma(<paramref name="shape"/>, 1).</summary>
    public static double Gamma(double shape, ref SplitMix64 random) => Math.Exp(LogGamma(shape, ref random));

    /// <summary>
    /// q ~ Dirichlet(<paramref name="concentration"/>). A zero concentration gives q = 0 in that
    /// coordinate (the class is absent); +infinity everywhere is not allowed (use the mean instead).
    /// At least one concentration must be positive.
    /// </summary>
    public static double[] Dirichlet(ReadOnlySpan<double> concentration, ref SplitMix64 random)
    {
        var logs = new double[concentration.Length];
        double max = double.NegativeInfinity;
        for (int c = 0; c < concentration.Length; c++)
        {
            double a = concentration[c];
            if (!(a >= 0 && double.IsFinite(a)))
            {
                throw new ArgumentOutOfRangeException(nameof(concentration), a, "Dirichlet concentrations must be finite and non-negative");
            }
            logs[c] = a == 0 ? double.NegativeInfinity : LogGamma(a, ref random);
            max = Math.Max(max, logs[c]);
        }
        if (double.IsNegativeInfinity(max))
        {
            throw new ArgumentException("Dirichlet: every concentration is zero", nameof(concentration));
        }
        double sum = 0;
        for (int c = 0; c < logs.Length; c++)
        {
            logs[c] = Math.Exp(logs[c] - max);
            sum += logs[c];
        }
        for (int c = 0; c < logs.Length; c++)
        {
            logs[c] /= sum;
        }
        return logs;
    }
}
