using System.Globalization;

namespace ZeroFL.Federation;

/// <summary>
/// Counts from fractions without float rounding: a fraction is read as the shortest decimal that
/// round-trips to the given double or float (what was typed: 0.1 means one tenth, so 10% of 10 is
/// exactly 1), and products, sums and roundings are done in <see cref="decimal"/>.
/// </summary>
public static class ExactFraction
{
    /// <summary>The shortest decimal that round-trips to <paramref name="value"/> (finite, |value| &lt; 1e28).</summary>
    public static decimal ToDecimal(double value)
    {
        if (!double.IsFinite(value) || Math.Abs(value) >= 1e28)
        {
            throw new ArgumentOutOfRangeException(nameof(value), value, "value must be finite and below 1e28 in magnitude");
        }
        return decimal.Parse(value.ToString("R", CultureInfo.InvariantCulture), NumberStyles.Float, CultureInfo.InvariantCulture);
    }

    /// <summary>The shortest decimal that round-trips to the float <paramref name="value"/> (0.9f reads as 0.9).</summary>
    public static decimal ToDecimal(float value)
    {
        if (!float.IsFinite(value) || Math.Abs(value) >= 1e28f)
        {
            throw new ArgumentOutOfRangeException(nameof(value), value, "value must be finite and below 1e28 in magnitude");
        }
        return decimal.Parse(value.ToString("R", CultureInfo.InvariantCulture), NumberStyles.Float, CultureInfo.InvariantCulture);
    }

    /// <summary>ceil(<paramref name="fraction"/> * <paramref name="n"/>) clamped to [0, n]; fraction in [0, 1].</summary>
    public static long CeilingOf(decimal fraction, long n)
    {
        CheckArguments(fraction, n);
        return (long)Math.Clamp(decimal.Ceiling(fraction * n), 0m, n);
    }

    /// <summary>floor(<paramref name="fraction"/> * <paramref name="n"/>) clamped to [0, n]; fraction in [0, 1].</summary>
    public static long FloorOf(decimal fraction, long n)
    {
        CheckArguments(fraction, n);
        return (long)Math.Clamp(decimal.Floor(fraction * n), 0m, n);
    }

    private static void CheckArguments(decimal fraction, long n)
    {
        if (fraction < 0m || fraction > 1m)
        {
            throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "fraction must be in [0, 1]");
        }
        if (n < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(n), n, "count must not be negative");
        }
    }
}
