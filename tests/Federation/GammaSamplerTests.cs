using ZeroFL.Federation.Randomness;

namespace ZeroFL.Tests.Federation;

public sealed class GammaSamplerTests
{
    [TestCase(0.05)]
    [TestCase(0.3)]
    [TestCase(1.0)]
    [TestCase(2.5)]
    [TestCase(100.0)]
    public void GammaHasMeanAndVarianceShape(double shape)
    {
        const int n = 40_000;
        var random = new SplitMix64(12345);
        double sum = 0, sumSquares = 0;
        for (int i = 0; i < n; i++)
        {
            double x = GammaSampler.Gamma(shape, ref random);
            Assert.That(x, Is.GreaterThanOrEqualTo(0).And.Not.NaN);
            sum += x;
            sumSquares += x * x;
        }
        double mean = sum / n;
        double variance = sumSquares / n - mean * mean;
        // Gamma(a, 1): mean a, variance a; the sample mean's standard error is sqrt(a / n).
        Assert.That(mean, Is.EqualTo(shape).Within(5 * Math.Sqrt(shape / n)), "mean");
        Assert.That(variance, Is.EqualTo(shape).Within(0.1 * shape), "variance");
    }

    [Test]
    public void ShapeOneIsExponential()
    {
        const int n = 40_000;
        var random = new SplitMix64(7);
        int below = 0;
        for (int i = 0; i < n; i++)
        {
            below += GammaSampler.Gamma(1.0, ref random) < 1.0 ? 1 : 0;
        }
        double expected = 1 - Math.Exp(-1);
        Assert.That((double)below / n, Is.EqualTo(expected).Within(5 * Math.Sqrt(expected * (1 - expected) / n)));
    }

    [Test]
    public void DirichletSumsToOneWithTheRightMeans()
    {
        const int n = 20_000;
        double[] concentration = [0.5, 1.5, 3.0, 0.0];
        var random = new SplitMix64(99);
        var means = new double[concentration.Length];
        for (int i = 0; i < n; i++)
        {
            var q = GammaSampler.Dirichlet(concentration, ref random);
            Assert.That(q.Sum(), Is.EqualTo(1.0).Within(1e-12));
            Assert.That(q[3], Is.Zero, "a zero concentration is an absent class");
            for (int c = 0; c < q.Length; c++)
            {
                means[c] += q[c] / n;
            }
        }
        Assert.That(means[0], Is.EqualTo(0.1).Within(0.005));
        Assert.That(means[1], Is.EqualTo(0.3).Within(0.005));
        Assert.That(means[2], Is.EqualTo(0.6).Within(0.005));
    }

    [Test]
    public void TinyConcentrationsStillGiveAProbabilityVector()
    {
        // Gamma(0.001) underflows a double almost always; the log-space draw keeps q valid.
        var random = new SplitMix64(3);
        int concentrated = 0;
        for (int i = 0; i < 1000; i++)
        {
            var q = GammaSampler.Dirichlet([0.001, 0.001, 0.001, 0.001, 0.001], ref random);
            Assert.That(q, Is.All.GreaterThanOrEqualTo(0.0).And.Not.NaN);
            Assert.That(q.Sum(), Is.EqualTo(1.0).Within(1e-12));
            concentrated += q.Max() > 0.99 ? 1 : 0;
        }
        // alpha -> 0 puts (almost) all mass on one class: the top two log-gammas are log(U)/alpha
        // apart, so only about 2% of draws have a runner-up above 1%.
        Assert.That(concentrated, Is.GreaterThan(950));
    }

    [Test]
    public void BadShapesAreRejected()
    {
        var random = new SplitMix64(1);
        Assert.Throws<ArgumentOutOfRangeException>(() => GammaSampler.LogGamma(0, ref random));
        Assert.Throws<ArgumentOutOfRangeException>(() => GammaSampler.LogGamma(double.NaN, ref random));
        Assert.Throws<ArgumentException>(() => GammaSampler.Dirichlet([0.0, 0.0], ref random));
    }
}
