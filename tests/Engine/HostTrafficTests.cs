using ZeroFL.Engine.Models;
using ZeroFL.Engine.Sparsity;
using ZeroFL.Engine.Training;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Engine;

/// <summary>
/// What a training step makes the host wait for, counted by <see cref="ZeroFL.Kernels.HostTraffic"/>:
/// a dense step that does not read its loss waits for nothing; reading the loss is one sync of
/// one float per sample.
/// </summary>
[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Specs))]
[NonParallelizable]
public sealed class HostTrafficTests(string device) : DeviceTest(device)
{
    [Test]
    public void ADenseStepWaitsOnlyToReadItsLoss()
    {
        const int batch = 6;
        var features = Numerics.Random(batch * 28 * 28, 5);
        var labels = Enumerable.Range(0, batch).Select(i => i % 10).ToArray();
        using var model = ModelCatalog.Create(Device, "cnn", 1, 28, 10, seed: 2);
        using var data = new DeviceDataset(Device, features, labels, [1, 28, 28], 10);
        using var trainer = new Trainer(model, new Sgd(0.01f, 0.9f, 0f));
        var all = Enumerable.Range(0, batch).ToArray();
        trainer.Step(data, all); // sizes the workspace

        var before = Device.Traffic.Snapshot();
        Assert.That(trainer.Step(data, all, readLoss: false), Is.Null);
        Assert.That(Device.Traffic.Syncs - before.Syncs, Is.EqualTo(0), "syncs of a step that does not read its loss");
        Assert.That(Device.Traffic.DeviceToHostBytes - before.DeviceToHostBytes, Is.EqualTo(0));
        Assert.That(Device.Traffic.HostToDeviceBytes - before.HostToDeviceBytes, Is.EqualTo(batch * sizeof(int)), "the batch's sample indices");

        before = Device.Traffic.Snapshot();
        Assert.That(trainer.Step(data, all), Is.Positive);
        Assert.That(Device.Traffic.Syncs - before.Syncs, Is.EqualTo(1));
        Assert.That(Device.Traffic.DeviceToHostBytes - before.DeviceToHostBytes, Is.EqualTo(batch * sizeof(float)));
    }
}

/// <summary>
/// What a SWAT step makes a GPU backend wait for: nothing. GPU backends only; the CPU accelerator
/// plans on the host, where a read is free.
/// </summary>
[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.GpuSpecs))]
[NonParallelizable]
public sealed class GpuHostTrafficTests(string device) : DeviceTest(device)
{
    /// <summary>
    /// A SWAT step on a GPU backend selects, encodes and compresses on the device: with the loss not
    /// read it waits for nothing and reads nothing (sparse kernels at density 0.1, masked dense ones
    /// at 0.3).
    /// </summary>
    [TestCase("cnn", 1, 28, 0.9f)]
    [TestCase("cnn", 1, 28, 0.7f)]
    [TestCase("femnist-cnn", 1, 28, 0.9f)]
    [TestCase("resnet18", 3, 16, 0.9f)]
    public void ASwatStepOnAGpuBackendWaitsForNothing(string name, int channels, int size, float sparsity)
    {
        const int batch = 2;
        var features = Numerics.Random(batch * channels * size * size, 8);
        var labels = Enumerable.Range(0, batch).ToArray();
        using var model = ModelCatalog.Create(Device, name, channels, size, 10, seed: 4);
        SwatRules.Apply(model, new SparsitySettings(sparsity));
        using var data = new DeviceDataset(Device, features, labels, [channels, size, size], 10);
        using var trainer = new Trainer(model, new Sgd(0.01f, 0.9f, 0f));
        var all = Enumerable.Range(0, batch).ToArray();
        trainer.Step(data, all); // sizes the workspace
        trainer.Workspace.Reset(); // and merges what the first step outgrew

        var before = Device.Traffic.Snapshot();
        trainer.Step(data, all, readLoss: false);
        Assert.That(Device.Traffic.Syncs - before.Syncs, Is.EqualTo(0), "syncs of a SWAT step that does not read its loss");
        Assert.That(Device.Traffic.DeviceToHostBytes - before.DeviceToHostBytes, Is.EqualTo(0));
    }
}
