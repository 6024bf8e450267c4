using ZeroFL.Kernels;
using ZeroFL.Kernels.Reference;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Kernels;

[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Specs))]
public sealed class BatchNormKernelTests(string device) : DeviceTest(device)
{
    private const float Momentum = 0.1f;
    private const float Epsilon = 1e-5f;

    /// <summary>Inputs with a channel-independent offset and scale so that mean and variance are not trivial.</summary>
    private static float[] Input(int length, int seed) => Numerics.Random(length, seed, 2f).Select(v => v + 0.7f).ToArray();

    private static float[] Positive(int length, int seed) => Numerics.Random(length, seed).Select(v => 1.2f + v).ToArray();

    [TestCase(2, 3, 5)]
    [TestCase(1, 4, 7)]
    [TestCase(5, 2, 1)]
    [TestCase(3, 5, 49)]
    public void ForwardTrainingAndBackwardMatchReference(int batch, int channels, int spatial)
    {
        int n = batch * channels * spatial;
        var x = Input(n, 1);
        var gamma = Positive(channels, 2);
        var beta = Numerics.Random(channels, 3);
        var runningMean = Numerics.Random(channels, 4);
        var runningVar = Positive(channels, 5);
        var k = Device.Kernels.BatchNorm;

        var xView = Upload(x);
        var gammaView = Upload(gamma);
        var y = Zeros(n);
        var saveMean = Zeros(channels);
        var saveInvStd = Zeros(channels);
        var runningMeanView = Upload(runningMean);
        var runningVarView = Upload(runningVar);
        k.ForwardTraining(xView, y, gammaView, Upload(beta), saveMean, saveInvStd, runningMeanView, runningVarView,
            batch, channels, spatial, Momentum, Epsilon);

        var expectedY = new float[n];
        var expectedMean = new float[channels];
        var expectedInvStd = new float[channels];
        BatchNormReference.ForwardTraining(x, expectedY, gamma, beta, expectedMean, expectedInvStd, runningMean, runningVar,
            batch, channels, spatial, Momentum, Epsilon);
        Numerics.AssertClose(expectedY, Download(y), 1e-4f, 1e-4f, "batch norm forward output");
        Numerics.AssertClose(expectedMean, Download(saveMean), 1e-5f, 1e-5f, "batch norm saved mean");
        Numerics.AssertClose(expectedInvStd, Download(saveInvStd), 1e-4f, 1e-5f, "batch norm saved inverse std");
        Numerics.AssertClose(runningMean, Download(runningMeanView), 1e-5f, 1e-5f, "batch norm running mean");
        Numerics.AssertClose(runningVar, Download(runningVarView), 1e-5f, 1e-5f, "batch norm running variance");

        var dy = Numerics.Random(n, 6);
        var dx0 = Numerics.Random(n, 7);
        var dGamma0 = Numerics.Random(channels, 8);
        var dBeta0 = Numerics.Random(channels, 9);
        var dx = Upload(dx0);
        var dGamma = Upload(dGamma0);
        var dBeta = Upload(dBeta0);
        k.Backward(xView, Upload(dy), gammaView, saveMean, saveInvStd, dx, dGamma, dBeta, batch, channels, spatial);

        var expectedDx = (float[])dx0.Clone();
        var expectedDGamma = (float[])dGamma0.Clone();
        var expectedDBeta = (float[])dBeta0.Clone();
        BatchNormReference.Backward(x, dy, gamma, Download(saveMean), Download(saveInvStd),
            expectedDx, expectedDGamma, expectedDBeta, batch, channels, spatial);
        Numerics.AssertClose(expectedDx, Download(dx), 1e-4f, 1e-4f, "batch norm input gradient");
        Numerics.AssertClose(expectedDGamma, Download(dGamma), 1e-4f, 1e-4f, "batch norm gamma gradient");
        Numerics.AssertClose(expectedDBeta, Download(dBeta), 1e-4f, 1e-4f, "batch norm beta gradient");
    }

    /// <summary>
    /// The fused epilogue: y = max(bn(x) + residual, 0) forward; backward masks dy by y &gt; 0, gives
    /// that to the residual, and runs the plain backward on it. Written (overwrite) or added, and dx
    /// may be skipped. Planes of 37 floats leave a scalar tail after the 8-wide passes.
    /// </summary>
    [TestCase(2, 3, 37, true, true, false)]
    [TestCase(3, 5, 16, false, true, true)]
    [TestCase(2, 4, 9, true, false, false)]
    [TestCase(4, 2, 64, true, true, true)]
    public void FusedResidualAndReluMatchTheOpsInSequence(int batch, int channels, int spatial, bool withResidual, bool relu, bool overwrite)
    {
        int n = batch * channels * spatial;
        var x = Input(n, 21);
        var residual = Numerics.Random(n, 22);
        var gamma = Positive(channels, 23);
        var beta = Numerics.Random(channels, 24);
        var k = Device.Kernels.BatchNorm;
        var xView = Upload(x);
        var gammaView = Upload(gamma);
        var y = Zeros(n);
        var saveMean = Zeros(channels);
        var saveInvStd = Zeros(channels);
        var epilogue = new BatchNormEpilogue(withResidual ? Upload(residual) : default, relu);
        k.ForwardTraining(xView, y, gammaView, Upload(beta), saveMean, saveInvStd, Zeros(channels), Upload(Positive(channels, 25)),
            batch, channels, spatial, Momentum, Epsilon, epilogue);

        var expectedY = new float[n];
        BatchNormReference.ForwardTraining(x, expectedY, gamma, beta, new float[channels], new float[channels], new float[channels], Positive(channels, 25),
            batch, channels, spatial, Momentum, Epsilon);
        for (int i = 0; i < n; i++)
        {
            float v = expectedY[i] + (withResidual ? residual[i] : 0f);
            expectedY[i] = relu ? MathF.Max(v, 0f) : v;
        }
        var yHost = Download(y);
        Numerics.AssertClose(expectedY, yHost, 1e-4f, 1e-4f, "fused forward output");
        if (relu)
        {
            Assert.That(yHost.Count(v => v == 0f), Is.GreaterThan(n / 8), "the ReLU clips a fair share, so the mask matters");
        }

        var dy = Numerics.Random(n, 26);
        var dx0 = Numerics.Random(n, 27);
        var dr0 = Numerics.Random(n, 28);
        var dx = Upload(dx0);
        var dResidual = Upload(dr0);
        var dGamma = Zeros(channels);
        var dBeta = Zeros(channels);
        k.Backward(xView, y, Upload(dy), gammaView, saveMean, saveInvStd, dx, overwrite, dGamma, dBeta,
            new BatchNormEpilogue(withResidual ? dResidual : default, relu), overwrite, batch, channels, spatial);

        var dz = dy.Select((g, i) => relu && yHost[i] <= 0f ? 0f : g).ToArray();
        var expectedDx = overwrite ? new float[n] : (float[])dx0.Clone();
        var expectedDGamma = new float[channels];
        var expectedDBeta = new float[channels];
        BatchNormReference.Backward(x, dz, gamma, Download(saveMean), Download(saveInvStd), expectedDx, expectedDGamma, expectedDBeta, batch, channels, spatial);
        Numerics.AssertClose(expectedDx, Download(dx), 1e-4f, 1e-4f, "fused input gradient");
        Numerics.AssertClose(expectedDGamma, Download(dGamma), 1e-4f, 1e-4f, "fused gamma gradient");
        Numerics.AssertClose(expectedDBeta, Download(dBeta), 1e-4f, 1e-4f, "fused beta gradient");
        var expectedDr = withResidual ? dz.Select((g, i) => overwrite ? g : dr0[i] + g).ToArray() : dr0;
        Numerics.AssertClose(expectedDr, Download(dResidual), 1e-6f, 1e-6f, withResidual ? "residual gradient gets dz" : "no residual: untouched");

        // Without an input gradient only the parameters' gradients (and the residual's) are produced.
        var dGammaOnly = Zeros(channels);
        k.Backward(xView, y, Upload(dy), gammaView, saveMean, saveInvStd, default, false, dGammaOnly, Zeros(channels),
            new BatchNormEpilogue(default, relu), false, batch, channels, spatial);
        Numerics.AssertClose(expectedDGamma, Download(dGammaOnly), 1e-4f, 1e-4f, "gamma gradient without dx");
    }

    [Test]
    public void FusedInferenceAddsTheResidualAndClips()
    {
        const int batch = 2, channels = 3, spatial = 11;
        int n = batch * channels * spatial;
        var x = Input(n, 31);
        var residual = Numerics.Random(n, 32);
        var gamma = Positive(channels, 33);
        var beta = Numerics.Random(channels, 34);
        var runningMean = Numerics.Random(channels, 35);
        var runningVar = Positive(channels, 36);
        var y = Zeros(n);
        Device.Kernels.BatchNorm.ForwardInference(Upload(x), y, Upload(gamma), Upload(beta), Upload(runningMean), Upload(runningVar),
            batch, channels, spatial, Epsilon, new BatchNormEpilogue(Upload(residual), true));
        var expected = new float[n];
        BatchNormReference.ForwardInference(x, expected, gamma, beta, runningMean, runningVar, batch, channels, spatial, Epsilon);
        Numerics.AssertClose(expected.Select((v, i) => MathF.Max(v + residual[i], 0f)).ToArray(), Download(y), 1e-4f, 1e-4f, "fused inference");
    }

    [TestCase(2, 3, 5)]
    [TestCase(1, 2, 6)]
    [TestCase(4, 1, 1)]
    public void BackwardMatchesFiniteDifferences(int batch, int channels, int spatial)
    {
        int n = batch * channels * spatial;
        var x = Input(n, 10);
        var gamma = Positive(channels, 11);
        var beta = Numerics.Random(channels, 12);
        var r = Numerics.Random(n, 13);
        var k = Device.Kernels.BatchNorm;

        var xView = Upload(x);
        var gammaView = Upload(gamma);
        var saveMean = Zeros(channels);
        var saveInvStd = Zeros(channels);
        k.ForwardTraining(xView, Zeros(n), gammaView, Upload(beta), saveMean, saveInvStd, Zeros(channels), Zeros(channels),
            batch, channels, spatial, Momentum, Epsilon);
        var dx = Zeros(n);
        var dGamma = Zeros(channels);
        var dBeta = Zeros(channels);
        k.Backward(xView, Upload(r), gammaView, saveMean, saveInvStd, dx, dGamma, dBeta, batch, channels, spatial);

        double Loss()
        {
            var y = new float[n];
            BatchNormReference.ForwardTraining(x, y, gamma, beta, new float[channels], new float[channels],
                new float[channels], new float[channels], batch, channels, spatial, Momentum, Epsilon);
            return FiniteDifference.Dot(y, r);
        }

        Numerics.AssertClose(FiniteDifference.Gradient(x, Loss), Download(dx), 1e-2f, 2e-3f, "batch norm input gradient");
        Numerics.AssertClose(FiniteDifference.Gradient(gamma, Loss), Download(dGamma), 1e-2f, 2e-3f, "batch norm gamma gradient");
        Numerics.AssertClose(FiniteDifference.Gradient(beta, Loss), Download(dBeta), 1e-2f, 2e-3f, "batch norm beta gradient");
    }

    [Test]
    public void RunningStatisticsAfterSeveralStepsMatchReferenceAndDriveInference()
    {
        const int batch = 4, channels = 3, spatial = 9, steps = 5;
        int n = batch * channels * spatial;
        var gamma = Positive(channels, 20);
        var beta = Numerics.Random(channels, 21);
        var runningMean = new float[channels];
        var runningVar = Enumerable.Repeat(1f, channels).ToArray();
        var k = Device.Kernels.BatchNorm;

        var gammaView = Upload(gamma);
        var betaView = Upload(beta);
        var runningMeanView = Upload(runningMean);
        var runningVarView = Upload(runningVar);
        var y = Zeros(n);
        for (int step = 0; step < steps; step++)
        {
            var x = Input(n, 30 + step);
            k.ForwardTraining(Upload(x), y, gammaView, betaView, Zeros(channels), Zeros(channels), runningMeanView, runningVarView,
                batch, channels, spatial, Momentum, Epsilon);
            BatchNormReference.ForwardTraining(x, new float[n], gamma, beta, new float[channels], new float[channels],
                runningMean, runningVar, batch, channels, spatial, Momentum, Epsilon);
        }
        Numerics.AssertClose(runningMean, Download(runningMeanView), 1e-5f, 1e-5f, "batch norm running mean");
        Numerics.AssertClose(runningVar, Download(runningVarView), 1e-5f, 1e-5f, "batch norm running variance");

        var test = Input(n, 40);
        var testView = Upload(test);
        var inferred = Zeros(n);
        k.ForwardInference(testView, inferred, gammaView, betaView, runningMeanView, runningVarView, batch, channels, spatial, Epsilon);
        var expected = new float[n];
        BatchNormReference.ForwardInference(test, expected, gamma, beta, runningMean, runningVar, batch, channels, spatial, Epsilon);
        var inferredHost = Download(inferred);
        Numerics.AssertClose(expected, inferredHost, 1e-4f, 1e-4f, "batch norm inference");

        // Training mode on the same input normalises with batch statistics instead: a different result.
        k.ForwardTraining(testView, y, gammaView, betaView, Zeros(channels), Zeros(channels), Zeros(channels), Zeros(channels),
            batch, channels, spatial, Momentum, Epsilon);
        Assert.That(Download(y).Zip(inferredHost, (a, b) => MathF.Abs(a - b)).Max(), Is.GreaterThan(1e-2f));
    }

    [Test]
    public void BadShapesAreRejectedOnTheHost()
    {
        var k = Device.Kernels.BatchNorm;
        var ex = Assert.Throws<ArgumentException>(() => k.ForwardTraining(Zeros(11), Zeros(12), Zeros(2), Zeros(2),
            Zeros(2), Zeros(2), Zeros(2), Zeros(2), 2, 2, 3, Momentum, Epsilon));
        Assert.That(ex!.Message, Does.Contain("batch norm forward"));
        ex = Assert.Throws<ArgumentException>(() => k.ForwardTraining(Zeros(2), Zeros(2), Zeros(2), Zeros(2),
            Zeros(2), Zeros(2), Zeros(2), Zeros(1), 1, 2, 1, Momentum, Epsilon));
        Assert.That(ex!.Message, Does.Contain("more than one value per channel"));
        ex = Assert.Throws<ArgumentException>(() => k.ForwardTraining(Zeros(12), Zeros(12), Zeros(2), Zeros(2),
            Zeros(2), Zeros(2), Zeros(2), Zeros(1), 2, 2, 3, Momentum, Epsilon));
        Assert.That(ex!.Message, Does.Contain("batch norm forward running variance"));
        ex = Assert.Throws<ArgumentException>(() => k.ForwardInference(Zeros(12), Zeros(12), Zeros(2), Zeros(2),
            Zeros(2), Zeros(2), 2, 2, 3, 0f));
        Assert.That(ex!.Message, Does.Contain("batch norm inference"));
        ex = Assert.Throws<ArgumentException>(() => k.Backward(Zeros(12), Zeros(12), Zeros(2), Zeros(2), Zeros(2),
            Zeros(11), Zeros(2), Zeros(2), 2, 2, 3));
        Assert.That(ex!.Message, Does.Contain("batch norm backward"));
    }
}
