using ZeroFL.Kernels.Reference;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Kernels;

[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Specs))]
public sealed class PoolKernelTests(string device) : DeviceTest(device)
{
    /// <summary>Distinct values (no ties) spaced 0.01 apart in a seeded random order.</summary>
    private static float[] DistinctValues(int length, int seed)
    {
        var values = Enumerable.Range(0, length).Select(i => (i - length / 2) * 0.01f).ToArray();
        new Random(seed).Shuffle(values);
        return values;
    }

    [TestCase(1, 1, 2, 2)]
    [TestCase(1, 3, 5, 7)]
    [TestCase(2, 3, 8, 6)]
    [TestCase(3, 4, 9, 3)]
    [TestCase(2, 3, 28, 28)]
    [TestCase(1, 2, 7, 37)]
    [TestCase(64, 4, 4, 34)]
    public void MaxPoolForwardAndBackwardMatchReference(int batch, int channels, int height, int width)
    {
        int inputLength = batch * channels * height * width;
        int outputLength = batch * channels * (height / 2) * (width / 2);
        var x = Numerics.Random(inputLength, 1);
        var dy = Numerics.Random(outputLength, 2);
        var dx0 = Numerics.Random(inputLength, 3);
        var k = Device.Kernels.Pool;

        var y = Zeros(outputLength);
        var argmax = Upload(new int[outputLength]);
        k.MaxPool2x2Forward(Upload(x), y, argmax, batch, channels, height, width);
        var (expectedY, expectedArgmax) = PoolReference.MaxPool2x2Forward(x, batch, channels, height, width);
        Numerics.AssertClose(expectedY, Download(y), 0, 0, "max pool forward");
        Assert.That(argmax.Download(Device), Is.EqualTo(expectedArgmax), "max pool argmax");

        var dx = Upload(dx0);
        k.MaxPool2x2Backward(Upload(dy), argmax, dx);
        var expectedDx = (float[])dx0.Clone();
        PoolReference.MaxPool2x2Backward(dy, expectedArgmax, expectedDx);
        Numerics.AssertClose(expectedDx, Download(dx), 0, 0, "max pool backward");
    }

    [Test]
    public void MaxPoolTakesTheFirstMaximumOnTies()
    {
        // One window [[1, 3], [3, 3]] and one all-equal window [[2, 2], [2, 2]] side by side.
        var x = new float[] { 1, 3, 2, 2, 3, 3, 2, 2 };
        var y = Zeros(2);
        var argmax = Upload(new int[2]);
        Device.Kernels.Pool.MaxPool2x2Forward(Upload(x), y, argmax, 1, 1, 2, 4);
        Assert.That(Download(y), Is.EqualTo(new float[] { 3, 2 }));
        Assert.That(argmax.Download(Device), Is.EqualTo(new[] { 1, 2 }));
    }

    /// <summary>
    /// Rows of 8 outputs and more (the CPU engine's 8-wide path and its scalar tails) with many ties
    /// (and on the CPU accelerator some NaN): the same values and argmax as the reference, bit for bit.
    /// </summary>
    [TestCase(3, 2, 10, 40)]
    [TestCase(2, 5, 6, 33)]
    public void MaxPoolWideRowsKeepTiesAndNaNLikeTheReference(int batch, int channels, int height, int width)
    {
        int inputLength = batch * channels * height * width;
        var random = new Random(7);
        // NaN only on the CPU accelerator: OpenCL compiles comparisons with relaxed math, where a
        // NaN's order is not defined (rusticl picks another window element there).
        bool nan = Device.IsCpu;
        var x = Enumerable.Range(0, inputLength).Select(_ => nan && random.Next(50) == 0 ? float.NaN : random.Next(-2, 3) * 0.5f).ToArray();
        int outputLength = batch * channels * (height / 2) * (width / 2);
        var y = Zeros(outputLength);
        var argmax = Upload(new int[outputLength]);
        Device.Kernels.Pool.MaxPool2x2Forward(Upload(x), y, argmax, batch, channels, height, width);
        var (expectedY, expectedArgmax) = PoolReference.MaxPool2x2Forward(x, batch, channels, height, width);
        Assert.That(argmax.Download(Device), Is.EqualTo(expectedArgmax), "argmax: the first maximum in window order");
        Assert.That(Download(y).Select(BitConverter.SingleToInt32Bits), Is.EqualTo(expectedY.Select(BitConverter.SingleToInt32Bits)), "values, NaN included");
    }

    [TestCase(1, 2, 5, 7)]
    [TestCase(2, 3, 4, 4)]
    public void MaxPoolBackwardMatchesFiniteDifferences(int batch, int channels, int height, int width)
    {
        int inputLength = batch * channels * height * width;
        int outputLength = batch * channels * (height / 2) * (width / 2);
        var x = DistinctValues(inputLength, 4);
        var r = Numerics.Random(outputLength, 5);

        var argmax = Upload(new int[outputLength]);
        var dx = Zeros(inputLength);
        var k = Device.Kernels.Pool;
        k.MaxPool2x2Forward(Upload(x), Zeros(outputLength), argmax, batch, channels, height, width);
        k.MaxPool2x2Backward(Upload(r), argmax, dx);

        var numeric = FiniteDifference.Gradient(
            x, () => FiniteDifference.Dot(PoolReference.MaxPool2x2Forward(x, batch, channels, height, width).Y, r));
        Numerics.AssertClose(numeric, Download(dx), 1e-3f, 1e-3f, "max pool gradient");
    }

    [TestCase(1, 1, 1)]
    [TestCase(1, 5, 9)]
    [TestCase(3, 7, 49)]
    public void GlobalAvgPoolForwardAndBackwardMatchReference(int batch, int channels, int spatial)
    {
        var x = Numerics.Random(batch * channels * spatial, 6);
        var dy = Numerics.Random(batch * channels, 7);
        var dx0 = Numerics.Random(batch * channels * spatial, 8);
        var k = Device.Kernels.Pool;

        var y = Zeros(batch * channels);
        k.GlobalAvgPoolForward(Upload(x), y, batch, channels, spatial);
        Numerics.AssertClose(PoolReference.GlobalAvgPoolForward(x, batch, channels, spatial), Download(y), 1e-5f, 1e-6f, "global average pool forward");

        var dx = Upload(dx0);
        k.GlobalAvgPoolBackward(Upload(dy), dx, batch, channels, spatial);
        var expected = (float[])dx0.Clone();
        PoolReference.GlobalAvgPoolBackward(dy, expected, batch, channels, spatial);
        Numerics.AssertClose(expected, Download(dx), 1e-6f, 1e-6f, "global average pool backward");
    }

    [Test]
    public void GlobalAvgPoolBackwardMatchesFiniteDifferences()
    {
        const int batch = 2, channels = 3, spatial = 5;
        var x = Numerics.Random(batch * channels * spatial, 9);
        var r = Numerics.Random(batch * channels, 10);
        var dx = Zeros(x.Length);
        Device.Kernels.Pool.GlobalAvgPoolBackward(Upload(r), dx, batch, channels, spatial);

        var numeric = FiniteDifference.Gradient(
            x, () => FiniteDifference.Dot(PoolReference.GlobalAvgPoolForward(x, batch, channels, spatial), r));
        Numerics.AssertClose(numeric, Download(dx), 1e-3f, 1e-3f, "global average pool gradient");
    }

    [Test]
    public void BadShapesAreRejectedOnTheHost()
    {
        var k = Device.Kernels.Pool;
        var ex = Assert.Throws<ArgumentException>(() => k.MaxPool2x2Forward(Zeros(16), Zeros(3), Upload(new int[4]), 1, 1, 4, 4));
        Assert.That(ex!.Message, Does.Contain("max pool forward"));
        ex = Assert.Throws<ArgumentException>(() => k.MaxPool2x2Forward(Zeros(4), Zeros(2), Upload(new int[2]), 1, 1, 1, 4));
        Assert.That(ex!.Message, Does.Contain("max pool"));
        ex = Assert.Throws<ArgumentException>(() => k.MaxPool2x2Backward(Zeros(4), Upload(new int[3]), Zeros(16)));
        Assert.That(ex!.Message, Does.Contain("max pool backward"));
        ex = Assert.Throws<ArgumentException>(() => k.MaxPool2x2Backward(Zeros(4), Upload(new int[4]), Zeros(15)));
        Assert.That(ex!.Message, Does.Contain("max pool backward"));
        ex = Assert.Throws<ArgumentException>(() => k.GlobalAvgPoolForward(Zeros(11), Zeros(2), 1, 2, 6));
        Assert.That(ex!.Message, Does.Contain("global average pool forward"));
        ex = Assert.Throws<ArgumentException>(() => k.GlobalAvgPoolBackward(Zeros(2), Zeros(11), 1, 2, 6));
        Assert.That(ex!.Message, Does.Contain("global average pool backward"));
    }

    [Test]
    public void OutOfRangeArgmaxIsSkippedInsteadOfCrashing()
    {
        var dx = Zeros(4);
        Device.Kernels.Pool.MaxPool2x2Backward(Upload(new float[] { 5 }), Upload(new[] { 99 }), dx);
        Assert.That(Download(dx), Is.EqualTo(new float[4]));
    }
}
