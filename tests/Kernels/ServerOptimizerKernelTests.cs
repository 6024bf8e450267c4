using ZeroFL.Kernels;
using ZeroFL.Kernels.Reference;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Kernels;

/// <summary>FedAdam / FedYogi / FedAdagrad server steps against the float reference (equal bits on the CPU accelerator).</summary>
[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Specs))]
public sealed class ServerOptimizerKernelTests(string device) : DeviceTest(device)
{
    /// <summary>Exact on the CPU accelerator (same float operations in the same order); OpenCL runs with relaxed math.</summary>
    private (float Rtol, float Atol) Tolerance => Device.IsCpu ? (0f, 0f) : (1e-4f, 1e-6f);

    private static IEnumerable<TestCaseData> RulesAndAggregates() =>
        Enum.GetValues<SecondMomentRule>().SelectMany(rule => new[] { false, true }.Select(difference => new TestCaseData(rule, difference)));

    [TestCaseSource(nameof(RulesAndAggregates))]
    public void SixRoundsMatchTheReference(SecondMomentRule rule, bool aggregateIsDifference)
    {
        const int n = 1001;
        var model = Numerics.Random(n, 1, 0.3f);
        float[] m = new float[n], v = new float[n];
        var modelView = Upload(model);
        var mView = Zeros(n);
        var vView = Zeros(n);
        for (int round = 1; round <= 6; round++)
        {
            // A pseudo-gradient shrinking over the rounds (so Yogi's v meets d^2 from both sides),
            // exactly zero on every 7th entry (an entry no client moved: m and v decay, the value
            // moves only by its momentum).
            var delta = Numerics.Random(n, 10 + round, 0.05f / round);
            var aggregate = new float[n];
            for (int i = 0; i < n; i++)
            {
                float d = i % 7 == 0 ? 0f : delta[i];
                aggregate[i] = aggregateIsDifference ? d : model[i] + d;
            }
            float learningRate = 0.05f * round; // the caller's per-round step size (FedAdam's bias correction)
            var step = new ServerStep(rule, learningRate, rule == SecondMomentRule.Adagrad ? 0f : 0.9f, 0.99f, 1e-3f, aggregateIsDifference);
            Device.Kernels.ServerOptimizer.Step(modelView, Upload(aggregate), mView, vView, step);
            ServerOptimizerReference.Step(model, aggregate, m, v, step);
        }
        var (rtol, atol) = Tolerance;
        Numerics.AssertClose(m, Download(mView), rtol, atol, $"{rule}: m");
        Numerics.AssertClose(v, Download(vView), rtol, atol, $"{rule}: v");
        Numerics.AssertClose(model, Download(modelView), rtol, atol, $"{rule}: model");
        Assert.That(v.All(x => x >= 0f), Is.True, $"{rule}: v stays non-negative");
    }

    [TestCase(SecondMomentRule.Adam, 0.9f, 0.1f * 0.05f / (0.05f + 1e-3f))]
    [TestCase(SecondMomentRule.Yogi, 0.9f, 0.1f * 0.05f / (0.05f + 1e-3f))]
    [TestCase(SecondMomentRule.Adagrad, 0f, 0.1f * 0.5f / (0.5f + 1e-3f))]
    public void FirstStepFromZeroMomentsIsKnownByHand(SecondMomentRule rule, float beta1, float expectedMove)
    {
        // d = 0.5: m = (1 - beta1) d; Adam v = 0.01 d^2, Yogi v = 0 - 0.01 d^2 sign(0 - d^2) = 0.01 d^2,
        // Adagrad v = d^2; x += 0.1 m / (sqrt(v) + 1e-3).
        var model = Upload([1f, 2f]);
        var m = Zeros(2);
        var v = Zeros(2);
        Device.Kernels.ServerOptimizer.Step(model, Upload([1.5f, 2f]), m, v, new ServerStep(rule, 0.1f, beta1, 0.99f, 1e-3f, false));
        var after = Download(model);
        Assert.That(after[0], Is.EqualTo(1f + expectedMove).Within(2e-6f), "moved towards the aggregate");
        Assert.That(after[1], Is.EqualTo(2f), "d = 0 from zero moments: 0 / (0 + tau), no move");
        Assert.That(Download(m)[0], Is.EqualTo((1f - beta1) * 0.5f).Within(1e-7f));
    }

    [Test]
    public void BadArgumentsAreRejectedOnTheHost()
    {
        var k = Device.Kernels.ServerOptimizer;
        var ok = new ServerStep(SecondMomentRule.Adam, 0.1f, 0.9f, 0.99f, 1e-3f, false);
        var ex = Assert.Throws<ArgumentException>(() => k.Step(Zeros(10), Zeros(9), Zeros(10), Zeros(10), ok));
        Assert.That(ex!.Message, Does.Contain("server step model and aggregate"));
        ex = Assert.Throws<ArgumentException>(() => k.Step(Zeros(10), Zeros(10), Zeros(10), Zeros(11), ok));
        Assert.That(ex!.Message, Does.Contain("second moment"));
        ex = Assert.Throws<ArgumentException>(() => k.Step(Zeros(10), Zeros(10), Zeros(10), Zeros(10), ok with { Tau = 0f }));
        Assert.That(ex!.Message, Does.Contain("tau"));
        ex = Assert.Throws<ArgumentException>(() => k.Step(Zeros(10), Zeros(10), Zeros(10), Zeros(10), ok with { Beta1 = 1f }));
        Assert.That(ex!.Message, Does.Contain("beta1"));
        ex = Assert.Throws<ArgumentException>(() => k.Step(Zeros(10), Zeros(10), Zeros(10), Zeros(10), ok with { LearningRate = float.NaN }));
        Assert.That(ex!.Message, Does.Contain("learning rate"));
    }
}
