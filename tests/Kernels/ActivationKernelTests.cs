using ZeroFL.Kernels.Reference;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Kernels;

[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Specs))]
public sealed class ActivationKernelTests(string device) : DeviceTest(device)
{
    [TestCase(1)]
    [TestCase(7)]
    [TestCase(10_001)]
    public void ReluForwardAndBackwardMatchReference(int n)
    {
        var x = Numerics.Random(n, 1);
        var dy = Numerics.Random(n, 2);
        var dx0 = Numerics.Random(n, 3);
        var k = Device.Kernels.Activation;

        var y = Zeros(n);
        k.ReluForward(Upload(x), y);
        var yHost = Download(y);
        Numerics.AssertClose(ActivationReference.ReluForward(x), yHost, 0, 0, "relu forward");

        var dx = Upload(dx0);
        k.ReluBackward(y, Upload(dy), dx);
        var expected = (float[])dx0.Clone();
        ActivationReference.ReluBackward(yHost, dy, expected);
        Numerics.AssertClose(expected, Download(dx), 0, 0, "relu backward");
    }

    [TestCase(1)]
    [TestCase(31)]
    [TestCase(64)]
    [TestCase(10_001)]
    public void PositiveMaskPacksAndMasksLikeTheReference(int n)
    {
        var y = Numerics.Random(n, 6);
        y[0] = 0f;
        if (n > 2)
        {
            y[1] = -0f;
        }
        var dy = Numerics.Random(n, 7);
        var k = Device.Kernels.Activation;
        var bits = Upload(Enumerable.Repeat(-1, (int)ZeroFL.Kernels.ActivationKernels.MaskLength(n)).ToArray());
        k.PackPositive(Upload(y), bits);
        var expectedBits = ActivationReference.PackPositive(y);
        Assert.That(bits.Download(Device), Is.EqualTo(expectedBits), "the mask, unused high bits zero");

        var masked = Upload(dy);
        k.KeepWhereSet(bits, masked);
        var expected = (float[])dy.Clone();
        ActivationReference.KeepWhereSet(expectedBits, expected);
        Assert.That(Download(masked), Is.EqualTo(expected));
        var reluBackward = Zeros(n);
        k.ReluBackward(Upload(y), Upload(dy), reluBackward);
        Assert.That(Download(masked), Is.EqualTo(Download(reluBackward)), "the same gradient as the ReLU backward from y");
    }

    [Test]
    public void BiasForwardAndBackwardMatchReference()
    {
        const int batch = 3, channels = 5, spatial = 7;
        var y0 = Numerics.Random(batch * channels * spatial, 4);
        var bias = Numerics.Random(channels, 5);
        var k = Device.Kernels.Activation;

        var y = Upload(y0);
        k.BiasForward(y, Upload(bias), batch, channels, spatial);
        var expected = (float[])y0.Clone();
        ActivationReference.BiasForward(expected, bias, batch, channels, spatial);
        Numerics.AssertClose(expected, Download(y), 1e-6f, 1e-6f, "bias forward");

        var dBias0 = Numerics.Random(channels, 6);
        var dBias = Upload(dBias0);
        k.BiasBackward(Upload(y0), dBias, batch, channels, spatial);
        var expectedGrad = (float[])dBias0.Clone();
        ActivationReference.BiasBackward(y0, expectedGrad, batch, channels, spatial);
        Numerics.AssertClose(expectedGrad, Download(dBias), 1e-5f, 1e-5f, "bias backward");
    }

    [Test]
    public void AddAndAxpyMatchReference()
    {
        var a = Numerics.Random(1000, 7);
        var b = Numerics.Random(1000, 8);
        var k = Device.Kernels.Activation;
        var c = Zeros(1000);
        k.Add(Upload(a), Upload(b), c);
        Numerics.AssertClose(a.Zip(b, (p, q) => p + q).ToArray(), Download(c), 0, 0, "add");

        var y = Upload(b);
        k.Axpy(Upload(a), y, 0.5f);
        Numerics.AssertClose(a.Zip(b, (p, q) => q + 0.5f * p).ToArray(), Download(y), 1e-6f, 1e-6f, "axpy");
    }

    [Test]
    public void MismatchedLengthsAreRejectedOnTheHost()
    {
        var k = Device.Kernels.Activation;
        var ex = Assert.Throws<ArgumentException>(() => k.ReluForward(Zeros(10), Zeros(9)));
        Assert.That(ex!.Message, Does.Contain("relu forward"));
        Assert.Throws<ArgumentException>(() => k.BiasForward(Zeros(10), Zeros(2), 1, 2, 6));
    }
}
