using ZeroFL.Federation;

namespace ZeroFL.Tests.Federation;

public sealed class ScheduleAndSamplingTests
{
    [Test]
    public void ExponentialDecayHitsBothEndpoints()
    {
        var cifar = new ExponentialDecay(0.1, 0.01, 700);
        Assert.That(cifar.At(0), Is.EqualTo(0.1));
        Assert.That(cifar.At(699), Is.EqualTo(0.01));
        var rates = Enumerable.Range(0, 700).Select(cifar.At).ToArray();
        Assert.That(rates, Is.Ordered.Descending);
        // Constant ratio between rounds: (end / start)^(1 / (R - 1)).
        double ratio = Math.Pow(0.1, 1.0 / 699);
        for (int r = 1; r < 699; r++)
        {
            Assert.That(rates[r] / rates[r - 1], Is.EqualTo(ratio).Within(1e-12));
        }
        var three = new ExponentialDecay(0.004, 0.001, 3);
        Assert.That(three.At(1), Is.EqualTo(0.002).Within(1e-15), "the geometric mean halfway");
        Assert.That(new ExponentialDecay(0.01, 0.001, 1).At(0), Is.EqualTo(0.01), "one round: start");
        Assert.That(new ExponentialDecay(0.05, 0.05, 10).At(4), Is.EqualTo(0.05).Within(1e-17), "start = end: constant");
    }

    [Test]
    public void ExponentialDecayRejectsBadArguments()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new ExponentialDecay(0, 0.01, 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new ExponentialDecay(0.1, -1, 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new ExponentialDecay(0.1, 0.01, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ExponentialDecay(0.1, 0.01, 10).At(10));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ExponentialDecay(0.1, 0.01, 10).At(-1));
    }

    [Test]
    public void ClientsPerRoundFollowFlowersRule()
    {
        Assert.That(ClientSampling.Fixed(10).CountFor(100), Is.EqualTo(10));
        Assert.That(ClientSampling.OfFraction(0.1).CountFor(100), Is.EqualTo(10));
        Assert.That(ClientSampling.OfFraction(0.3).CountFor(10), Is.EqualTo(3), "0.3 * 10 is exactly 3");
        Assert.That(ClientSampling.OfFraction(0.1, minimum: 5).CountFor(35), Is.EqualTo(5), "floor(3.5) = 3 is below the minimum");
        Assert.That(ClientSampling.OfFraction(0.01).CountFor(50), Is.EqualTo(1), "at least one");
        Assert.That(ClientSampling.OfFraction(1.0).CountFor(7), Is.EqualTo(7));
        Assert.Throws<ArgumentException>(() => ClientSampling.Fixed(11).CountFor(10));
        Assert.Throws<ArgumentException>(() => ClientSampling.OfFraction(0.5, minimum: 20).CountFor(10));
        Assert.Throws<ArgumentOutOfRangeException>(() => ClientSampling.OfFraction(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => ClientSampling.OfFraction(1.5));
        Assert.Throws<ArgumentOutOfRangeException>(() => ClientSampling.Fixed(0));
    }

    [Test]
    public void SamplingIsDeterministicPerSeedAndRound()
    {
        var sampling = ClientSampling.Fixed(10);
        var round3 = sampling.Sample(100, round: 3, seed: 1);
        Assert.That(round3, Has.Length.EqualTo(10));
        Assert.That(round3, Is.Unique.And.Ordered.Ascending.And.All.InRange(0, 99));
        Assert.That(sampling.Sample(100, 3, 1), Is.EqualTo(round3));
        Assert.That(ClientSampling.OfFraction(0.1).Sample(100, 3, 1), Is.EqualTo(round3), "same count, same draw");
        Assert.That(sampling.Sample(100, 4, 1), Is.Not.EqualTo(round3));
        Assert.That(sampling.Sample(100, 3, 2), Is.Not.EqualTo(round3));
    }

    [Test]
    public void SamplingIsRoughlyUniform()
    {
        var sampling = ClientSampling.Fixed(10);
        var picks = new int[100];
        for (int round = 0; round < 5000; round++)
        {
            foreach (int id in sampling.Sample(100, round, 42))
            {
                picks[id]++;
            }
        }
        // Each client is picked with probability 1/10 per round: 500 of 5000, standard deviation about 21.
        Assert.That(picks, Is.All.InRange(400, 600));
    }

    [Test]
    public void SamplingEveryClientGivesAll()
    {
        Assert.That(ClientSampling.OfFraction(1.0).Sample(12, 0, 0), Is.EqualTo(Enumerable.Range(0, 12)));
    }
}
