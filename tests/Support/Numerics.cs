namespace ZeroFL.Tests.Support;

/// <summary>Seeded random inputs and tolerant comparisons for kernel tests.</summary>
public static class Numerics
{
    /// <summary>Uniform values in [-scale, scale) from a fixed seed.</summary>
    public static float[] Random(int length, int seed, float scale = 1f)
    {
        var random = new Random(seed);
        var values = new float[length];
        for (int i = 0; i < length; i++)
        {
            values[i] = (float)(random.NextDouble() * 2 - 1) * scale;
        }
        return values;
    }

    /// <summary>
    /// Asserts |actual - expected| &lt;= atol + rtol * |expected| everywhere, naming the first
    /// element that differs.
    /// </summary>
    public static void AssertClose(float[] expected, float[] actual, float rtol = 1e-4f, float atol = 1e-5f, string what = "")
    {
        Assert.That(actual, Has.Length.EqualTo(expected.Length), $"{what}: length");
        for (int i = 0; i < expected.Length; i++)
        {
            float tolerance = atol + rtol * MathF.Abs(expected[i]);
            if (!(MathF.Abs(actual[i] - expected[i]) <= tolerance))
            {
                Assert.Fail($"{what}: element {i} is {actual[i]}, expected {expected[i]} (tolerance {tolerance})");
            }
        }
    }
}
