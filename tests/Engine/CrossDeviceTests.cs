using ZeroFL.Engine.Devices;
using ZeroFL.Engine.Models;
using ZeroFL.Engine.Sparsity;
using ZeroFL.Engine.Training;
using ZeroFL.Federation;
using ZeroFL.Federation.Partitioning;
using ZeroFL.Federation.Simulation;
using ZeroFL.Federation.Uplink;
using ZeroFL.Tests.Federation;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Engine;

/// <summary>
/// The GPU code paths against the CPU accelerator: the same training steps of every model (dense
/// and SWAT) and the same two federated rounds on each GPU device this machine has (OpenCL through
/// Mesa rusticl in CI), compared within float tolerance. The GPU kernels add in another order
/// (atomics, tiles), so the results agree closely, not bit for bit.
/// </summary>
[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.GpuSpecs))]
[NonParallelizable]
public sealed class CrossDeviceTests(string device)
{
    private ComputeDevice Gpu => TestDevices.Get(device);

    private static ComputeDevice Cpu => TestDevices.Get("cpu");

    [TestCase("cnn", 1, 28, 10, 0f)]
    [TestCase("cnn", 1, 28, 10, 0.9f)]
    [TestCase("femnist-cnn", 1, 28, 62, 0f)]
    [TestCase("femnist-cnn", 1, 28, 62, 0.9f)]
    [TestCase("resnet18", 3, 16, 10, 0f)]
    [TestCase("resnet18", 3, 16, 10, 0.9f)]
    public void TrainingStepsMatchTheCpu(string name, int channels, int size, int classes, float sparsity)
    {
        var (cpuLosses, cpuValues) = Train(Cpu, name, channels, size, classes, sparsity);
        var (gpuLosses, gpuValues) = Train(Gpu, name, channels, size, classes, sparsity);
        // Float sums in another order: a top-K decision at a near-tie may flip, so SWAT gets more room.
        float rtol = sparsity > 0 ? 2e-2f : 2e-3f;
        Numerics.AssertClose(cpuLosses, gpuLosses, rtol, 1e-4f, $"{name} losses");
        double norm = Math.Sqrt(cpuValues.Sum(v => (double)v * v));
        double diff = Math.Sqrt(cpuValues.Zip(gpuValues, (a, b) => (double)(a - b) * (a - b)).Sum());
        Assert.That(diff / norm, Is.LessThan(sparsity > 0 ? 1e-2 : 1e-3), $"{name}: relative parameter difference after the steps");
    }

    [Test]
    public void TwoFederatedRoundsMatchTheCpu()
    {
        var (cpuModel, cpuRounds) = RunRounds(Cpu);
        var (gpuModel, gpuRounds) = RunRounds(Gpu);
        for (int r = 0; r < cpuRounds.Count; r++)
        {
            Assert.That(gpuRounds[r].Failures, Is.Empty, $"round {r + 1}");
            Assert.That(gpuRounds[r].Clients, Is.EqualTo(cpuRounds[r].Clients), $"round {r + 1}");
            Assert.That(gpuRounds[r].TrainLoss, Is.EqualTo(cpuRounds[r].TrainLoss).Within(2).Percent, $"round {r + 1} train loss");
            Assert.That(gpuRounds[r].UploadBytes, Is.EqualTo(cpuRounds[r].UploadBytes).Within(1).Percent, $"round {r + 1} upload bytes");
        }
        double norm = Math.Sqrt(cpuModel.Sum(v => (double)v * v));
        double diff = Math.Sqrt(cpuModel.Zip(gpuModel, (a, b) => (double)(a - b) * (a - b)).Sum());
        Assert.That(diff / norm, Is.LessThan(2e-2), "relative difference of the global models after two rounds");
    }

    private static (float[] Losses, float[] Values) Train(ComputeDevice device, string name, int channels, int size, int classes, float sparsity)
    {
        const int batch = 4;
        var features = Numerics.Random(batch * channels * size * size, 11);
        var labels = Enumerable.Range(0, batch).Select(i => i % classes).ToArray();
        using var model = ModelCatalog.Create(device, name, channels, size, classes, seed: 3);
        if (sparsity > 0)
        {
            SwatRules.Apply(model, new SparsitySettings(sparsity));
        }
        using var data = new DeviceDataset(device, features, labels, [channels, size, size], classes);
        using var trainer = new Trainer(model, new Sgd(0.02f, 0.9f, 5e-4f));
        var all = Enumerable.Range(0, batch).ToArray();
        var losses = new float[3];
        for (int step = 0; step < losses.Length; step++)
        {
            losses[step] = trainer.Step(data, all);
        }
        return (losses, model.Store.Download());
    }

    private static (float[] Model, List<RoundMetrics> Rounds) RunRounds(ComputeDevice device)
    {
        var (train, test) = DeviceFederationTests.TinyData(240, 40);
        var options = new FederatedOptions(
            "cnn", 8, ClientSampling.Fixed(3), Rounds: 2, LocalEpochs: 1, BatchSize: 8,
            new ExponentialDecay(0.05, 0.01, 2), 0.9f, 5e-4f, new UplinkSettings(UplinkStrategy.TopKWeights, 0.9, 0.1),
            new SparsitySettings(0.9f), PartitionScheme.Iid, 1.0, EvaluateEvery: 1, Seed: 1);
        var partition = IidPartitioner.Create(train, 8, new PartitionOptions(1));
        using var server = new FederatedServer(device, options, train, test, partition);
        var rounds = new List<RoundMetrics> { server.RunRound(1), server.RunRound(2) };
        return (server.Global.Store.Download(), rounds);
    }
}
