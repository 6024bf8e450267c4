using ZeroFL.Engine.Models;
using ZeroFL.Engine.Training;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Engine;

/// <summary>Every model trains: a few SGD steps on a tiny fixed batch lower the loss.</summary>
[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Specs))]
public sealed class ModelTrainingTests(string device) : DeviceTest(device)
{
    [TestCase("cnn", 1, 28, 10, 0.05f)]
    [TestCase("femnist-cnn", 1, 28, 62, 0.02f)]
    [TestCase("resnet18", 3, 16, 10, 0.05f)]
    public void LossDecreasesOverAFewSteps(string name, int channels, int size, int classes, float lr)
    {
        const int batch = 8;
        var features = Numerics.Random(batch * channels * size * size, 11);
        var labels = Enumerable.Range(0, batch).Select(i => i % classes).ToArray();
        using var model = ModelCatalog.Create(Device, name, channels, size, classes, seed: 3);
        using var data = new DeviceDataset(Device, features, labels, [channels, size, size], classes);
        using var trainer = new Trainer(model, new Sgd(lr, 0.9f, 0f));
        var all = Enumerable.Range(0, batch).ToArray();
        var losses = new List<float>();
        for (int step = 0; step < 8; step++)
        {
            losses.Add(trainer.Step(data, all));
        }
        Assert.That(losses.All(float.IsFinite), Is.True, string.Join(", ", losses));
        Assert.That(losses[^1], Is.LessThan(losses[0] * 0.7f), $"losses: {string.Join(", ", losses)}");
    }

    [Test]
    public void ResNet18HasTorchvisionNamesAndSize()
    {
        using var model = ModelCatalog.Create(Device, "resnet18", 3, 32, 10, seed: 1);
        var names = model.Store.Parameters.Select(p => p.FullName).ToList();
        Assert.That(names, Does.Contain("conv1.weight"));
        Assert.That(names, Does.Contain("layer1.0.conv1.weight"));
        Assert.That(names, Does.Contain("layer2.0.downsample.0.weight"));
        Assert.That(names, Does.Contain("layer4.1.bn2.running_var"));
        Assert.That(names, Does.Contain("fc.bias"));
        // torchvision's CIFAR ResNet-18 with 10 classes has 11,173,962 trainable parameters.
        Assert.That(model.Store.TrainableLength, Is.EqualTo(11_173_962));
    }

    [Test]
    public void EvaluationCountsCorrectPredictions()
    {
        var features = Numerics.Random(6 * 28 * 28, 12);
        int[] labels = [0, 1, 2, 3, 4, 5];
        using var model = ModelCatalog.Create(Device, "cnn", 1, 28, 10, seed: 2);
        using var data = new DeviceDataset(Device, features, labels, [1, 28, 28], 10);
        using var trainer = new Trainer(model, new Sgd(0.05f, 0.9f, 0f));
        var all = Enumerable.Range(0, 6).ToArray();
        for (int i = 0; i < 30; i++)
        {
            trainer.Step(data, all);
        }
        var evaluation = trainer.Evaluate(data, batchSize: 4);
        Assert.That(evaluation.Samples, Is.EqualTo(6));
        Assert.That(evaluation.Accuracy, Is.EqualTo(1.0), "a memorised batch of 6 is classified perfectly");
    }

    [Test]
    public void BadInputShapeIsRejectedBeforeAnyLaunch()
    {
        using var model = ModelCatalog.Create(Device, "cnn", 1, 28, 10, seed: 2);
        using var data = new DeviceDataset(Device, new float[2 * 3 * 28 * 28], [0, 1], [3, 28, 28], 10);
        using var trainer = new Trainer(model, new Sgd(0.05f, 0.9f, 0f));
        var ex = Assert.Throws<ArgumentException>(() => trainer.Step(data, [0, 1]));
        Assert.That(ex!.Message, Does.Contain("expects input"));
        Assert.Throws<ArgumentOutOfRangeException>(() => trainer.Step(data, [0, 5]));
    }
}
