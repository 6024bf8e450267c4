using ILGPU;
using ZeroFL.Kernels.Reference;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Kernels;

[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Specs))]
public sealed class SgdKernelTests(string device) : DeviceTest(device)
{
    [TestCase(1, 0.9f, 0.01f)]
    [TestCase(1001, 0.9f, 5e-4f)]
    [TestCase(37, 0.5f, 0f)]
    public void SeveralStepsWithMomentumAndWeightDecayMatchReference(int n, float momentum, float weightDecay)
    {
        const float learningRate = 0.05f;
        const int steps = 6;
        var parameters = Numerics.Random(n, 1);
        var buffer = new float[n];
        var parametersView = Upload(parameters);
        var bufferView = Zeros(n);
        for (int step = 0; step < steps; step++)
        {
            var gradients = Numerics.Random(n, 10 + step);
            var gradientsView = Upload(gradients);
            Device.Kernels.Sgd.Step(parametersView, gradientsView, bufferView, learningRate, momentum, weightDecay);
            SgdReference.Step(parameters, gradients, buffer, learningRate, momentum, weightDecay);
            Numerics.AssertClose(gradients, Download(gradientsView), 0, 0, "sgd leaves gradients alone");
        }
        Numerics.AssertClose(parameters, Download(parametersView), 1e-5f, 1e-6f, "sgd parameters");
        Numerics.AssertClose(buffer, Download(bufferView), 1e-5f, 1e-6f, "sgd momentum buffer");
    }

    [Test]
    public void FirstStepFromAZeroBufferIsPlainSgd()
    {
        var parameters = new float[] { 1f, -2f, 3f };
        var gradients = new float[] { 0.5f, 0.25f, -1f };
        var parametersView = Upload(parameters);
        Device.Kernels.Sgd.Step(parametersView, Upload(gradients), Zeros(3), 0.1f, 0.9f, 0.1f);
        // g = grad + 0.1 p = {0.6, 0.05, -0.7}; p -= 0.1 g.
        Numerics.AssertClose(new[] { 0.94f, -2.005f, 3.07f }, Download(parametersView), 1e-6f, 1e-6f, "first sgd step");
    }

    [Test]
    public void WithoutMomentumTheBufferIsNotNeeded()
    {
        var parameters = Numerics.Random(50, 2);
        var gradients = Numerics.Random(50, 3);
        var parametersView = Upload(parameters);
        Device.Kernels.Sgd.Step(parametersView, Upload(gradients), ArrayView<float>.Empty, 0.1f, 0f, 0.01f);
        SgdReference.Step(parameters, gradients, Array.Empty<float>(), 0.1f, 0f, 0.01f);
        Numerics.AssertClose(parameters, Download(parametersView), 1e-6f, 1e-6f, "sgd without momentum");
    }

    [Test]
    public void BadArgumentsAreRejectedOnTheHost()
    {
        var k = Device.Kernels.Sgd;
        var ex = Assert.Throws<ArgumentException>(() => k.Step(Zeros(10), Zeros(9), Zeros(10), 0.1f, 0.9f, 0f));
        Assert.That(ex!.Message, Does.Contain("sgd step"));
        ex = Assert.Throws<ArgumentException>(() => k.Step(Zeros(10), Zeros(10), Zeros(9), 0.1f, 0.9f, 0f));
        Assert.That(ex!.Message, Does.Contain("sgd step"));
        ex = Assert.Throws<ArgumentException>(() => k.Step(Zeros(10), Zeros(10), Zeros(10), float.NaN, 0.9f, 0f));
        Assert.That(ex!.Message, Does.Contain("sgd step: learning rate"));
        ex = Assert.Throws<ArgumentException>(() => k.Step(Zeros(10), Zeros(10), Zeros(10), 0.1f, -0.1f, 0f));
        Assert.That(ex!.Message, Does.Contain("sgd step: momentum"));
    }
}
