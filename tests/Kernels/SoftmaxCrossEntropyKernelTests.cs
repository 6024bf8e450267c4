using ZeroFL.Kernels.Reference;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Kernels;

[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Specs))]
public sealed class SoftmaxCrossEntropyKernelTests(string device) : DeviceTest(device)
{
    private static int[] Labels(int batch, int classes, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, batch).Select(_ => random.Next(classes)).ToArray();
    }

    [TestCase(1, 1)]
    [TestCase(1, 10)]
    [TestCase(7, 3)]
    [TestCase(33, 10)]
    [TestCase(5, 101)]
    public void ForwardBackwardMatchesReference(int batch, int classes)
    {
        var logits = Numerics.Random(batch * classes, 1, 4f);
        var labels = Labels(batch, classes, 2);
        float gradScale = 1f / batch;

        var loss = Zeros(batch);
        var dLogits = Upload(Numerics.Random(batch * classes, 3));
        Device.Kernels.SoftmaxCrossEntropy.ForwardBackward(Upload(logits), Upload(labels), loss, dLogits, batch, classes, gradScale);

        var expectedLoss = new float[batch];
        var expectedGrad = new float[batch * classes];
        SoftmaxCrossEntropyReference.ForwardBackward(logits, labels, expectedLoss, expectedGrad, batch, classes, gradScale);
        Numerics.AssertClose(expectedLoss, Download(loss), 1e-4f, 1e-5f, "softmax cross-entropy loss");
        Numerics.AssertClose(expectedGrad, Download(dLogits), 1e-4f, 1e-6f, "softmax cross-entropy gradient");
    }

    [TestCase(1, 5)]
    [TestCase(4, 3)]
    [TestCase(6, 10)]
    public void GradientOfTheMeanLossMatchesFiniteDifferences(int batch, int classes)
    {
        var logits = Numerics.Random(batch * classes, 4, 2f);
        var labels = Labels(batch, classes, 5);
        var dLogits = Zeros(batch * classes);
        Device.Kernels.SoftmaxCrossEntropy.ForwardBackward(Upload(logits), Upload(labels), Zeros(batch), dLogits, batch, classes, 1f / batch);

        double MeanLoss()
        {
            var loss = new float[batch];
            SoftmaxCrossEntropyReference.ForwardBackward(logits, labels, loss, new float[batch * classes], batch, classes, 1f);
            return loss.Sum(v => (double)v) / batch;
        }

        Numerics.AssertClose(FiniteDifference.Gradient(logits, MeanLoss), Download(dLogits), 1e-2f, 1e-3f, "softmax cross-entropy gradient");
    }

    [Test]
    public void HugeLogitsGiveFiniteLoss()
    {
        var logits = new float[] { 1e4f, 0f, -1e4f, 1e4f, 1e4f, -1e4f, -1e4f, -1e4f, 1e4f };
        var labels = new[] { 1, 0, 2 };
        var loss = Zeros(3);
        var dLogits = Zeros(9);
        Device.Kernels.SoftmaxCrossEntropy.ForwardBackward(Upload(logits), Upload(labels), loss, dLogits, 3, 3, 1f / 3);

        var lossHost = Download(loss);
        var gradHost = Download(dLogits);
        Assert.That(lossHost.Concat(gradHost).All(float.IsFinite), Is.True, "finite loss and gradient");
        var expectedLoss = new float[3];
        var expectedGrad = new float[9];
        SoftmaxCrossEntropyReference.ForwardBackward(logits, labels, expectedLoss, expectedGrad, 3, 3, 1f / 3);
        Numerics.AssertClose(expectedLoss, lossHost, 1e-5f, 1e-3f, "huge-logit loss");
        Numerics.AssertClose(expectedGrad, gradHost, 1e-5f, 1e-6f, "huge-logit gradient");
        Assert.That(lossHost[0], Is.EqualTo(1e4f).Within(1e-2f));
        Assert.That(lossHost[1], Is.EqualTo(MathF.Log(2f)).Within(1e-5f));
    }

    [Test]
    public void OutOfRangeLabelsGiveNaNLossWithoutCrashing()
    {
        const int batch = 4, classes = 3;
        var logits = Numerics.Random(batch * classes, 6);
        var labels = new[] { -1, 2, classes, int.MaxValue };
        var loss = Zeros(batch);
        var dLogits = Zeros(batch * classes);
        Device.Kernels.SoftmaxCrossEntropy.ForwardBackward(Upload(logits), Upload(labels), loss, dLogits, batch, classes, 1f);

        var lossHost = Download(loss);
        var gradHost = Download(dLogits);
        Assert.That(float.IsNaN(lossHost[0]) && float.IsNaN(lossHost[2]) && float.IsNaN(lossHost[3]), Is.True, "NaN for bad labels");
        Assert.That(float.IsFinite(lossHost[1]), Is.True, "the valid sample is unaffected");
        Assert.That(gradHost.Skip(classes).Take(classes).All(float.IsFinite), Is.True);
        Assert.That(float.IsNaN(gradHost[0]), Is.True);
    }

    [Test]
    public void GradientMayOverwriteTheLogits()
    {
        const int batch = 3, classes = 4;
        var logits = Numerics.Random(batch * classes, 7);
        var labels = Labels(batch, classes, 8);
        var inPlace = Upload(logits);
        var loss = Zeros(batch);
        Device.Kernels.SoftmaxCrossEntropy.ForwardBackward(inPlace, Upload(labels), loss, inPlace, batch, classes, 0.5f);

        var expectedLoss = new float[batch];
        var expectedGrad = new float[batch * classes];
        SoftmaxCrossEntropyReference.ForwardBackward(logits, labels, expectedLoss, expectedGrad, batch, classes, 0.5f);
        Numerics.AssertClose(expectedLoss, Download(loss), 1e-4f, 1e-5f, "in-place loss");
        Numerics.AssertClose(expectedGrad, Download(inPlace), 1e-4f, 1e-6f, "in-place gradient");
    }

    [TestCase(1, 1)]
    [TestCase(9, 10)]
    [TestCase(100, 7)]
    public void PredictAndCountCorrectMatchReference(int batch, int classes)
    {
        var logits = Numerics.Random(batch * classes, 9);
        var labels = Labels(batch, classes, 10);
        var k = Device.Kernels.SoftmaxCrossEntropy;
        var logitsView = Upload(logits);
        var labelsView = Upload(labels);

        var predictions = Upload(new int[batch]);
        k.Predict(logitsView, predictions, batch, classes);
        Assert.That(predictions.Download(Device), Is.EqualTo(SoftmaxCrossEntropyReference.Predict(logits, batch, classes)));

        var count = Upload(new[] { 5 });
        k.CountCorrect(logitsView, labelsView, count, batch, classes);
        k.CountCorrect(logitsView, labelsView, count, batch, classes);
        int expected = SoftmaxCrossEntropyReference.CountCorrect(logits, labels, batch, classes);
        Assert.That(count.Download(Device)[0], Is.EqualTo(5 + 2 * expected), "count accumulates");
    }

    [Test]
    public void PredictTakesTheFirstMaximumOnTiesAndBadLabelsCountAsWrong()
    {
        var logits = new float[] { 1, 3, 3, 2, 2, 2, 0, 5, 1 };
        var predictions = Upload(new int[3]);
        var k = Device.Kernels.SoftmaxCrossEntropy;
        k.Predict(Upload(logits), predictions, 3, 3);
        Assert.That(predictions.Download(Device), Is.EqualTo(new[] { 1, 0, 1 }));

        var count = Upload(new int[1]);
        k.CountCorrect(Upload(logits), Upload(new[] { 1, -1, 7 }), count, 3, 3);
        Assert.That(count.Download(Device)[0], Is.EqualTo(1));
    }

    [Test]
    public void BadShapesAreRejectedOnTheHost()
    {
        var k = Device.Kernels.SoftmaxCrossEntropy;
        var ex = Assert.Throws<ArgumentException>(() => k.ForwardBackward(Zeros(11), Upload(new int[4]), Zeros(4), Zeros(12), 4, 3, 1f));
        Assert.That(ex!.Message, Does.Contain("softmax cross-entropy"));
        ex = Assert.Throws<ArgumentException>(() => k.ForwardBackward(Zeros(12), Upload(new int[3]), Zeros(4), Zeros(12), 4, 3, 1f));
        Assert.That(ex!.Message, Does.Contain("softmax cross-entropy labels"));
        ex = Assert.Throws<ArgumentException>(() => k.ForwardBackward(Zeros(12), Upload(new int[4]), Zeros(4), Zeros(11), 4, 3, 1f));
        Assert.That(ex!.Message, Does.Contain("softmax cross-entropy"));
        ex = Assert.Throws<ArgumentException>(() => k.Predict(Zeros(12), Upload(new int[3]), 4, 3));
        Assert.That(ex!.Message, Does.Contain("softmax predict"));
        ex = Assert.Throws<ArgumentException>(() => k.CountCorrect(Zeros(12), Upload(new int[4]), Upload(new int[2]).SubView(0, 0), 4, 3));
        Assert.That(ex!.Message, Does.Contain("softmax count correct"));
    }
}
