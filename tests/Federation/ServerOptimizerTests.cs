using ZeroFL.Engine.Models;
using ZeroFL.Engine.Modules;
using ZeroFL.Engine.Sparsity;
using ZeroFL.Federation.Simulation;
using ZeroFL.Federation.Uplink;
using ServerOptimizerReference = ZeroFL.Kernels.Reference.ServerOptimizerReference;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Federation;

/// <summary>
/// The server optimizers on the device: FedAvg's aggregate (host reference <see cref="FedAvg"/>)
/// turned into a pseudo-gradient and stepped by the host reference of the kernels, round after round.
/// </summary>
[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Specs))]
public sealed class ServerOptimizerTests(string device) : DeviceTest(device)
{
    private static IEnumerable<TestCaseData> KindsAndStrategies() =>
        new[] { ServerOptimizerKind.FedAdam, ServerOptimizerKind.FedYogi, ServerOptimizerKind.FedAdagrad }
            .SelectMany(kind => new[] { UplinkStrategy.TopKWeights, UplinkStrategy.DiffOnTopKWeights }.Select(strategy => new TestCaseData(kind, strategy)));

    private float[] Flatten(UplinkModel uplink, IReadOnlyList<float[]> layers)
    {
        var values = new float[uplink.Parameters.Sum(p => p.Length)];
        for (int l = 0; l < layers.Count; l++)
        {
            layers[l].CopyTo(values, uplink.Parameters[l].Offset);
        }
        return values;
    }

    private static float[][] Layers(UplinkModel uplink, float[] values) =>
        uplink.Parameters.Select(p => values.AsSpan((int)p.Offset, (int)p.Length).ToArray()).ToArray();

    /// <summary>Three clients' uploads of a round (the global values plus seeded noise), encoded on the device and by the host reference.</summary>
    private (List<WireUpload> Wire, List<ClientUpload> Host) Uploads(UplinkModel uplink, UplinkSettings settings, float[] global, int round)
    {
        using var encoder = new DeviceUplinkEncoder(Device, uplink, settings);
        var globalView = Upload(global);
        long[] examples = [30, 50, 20];
        var wire = new List<WireUpload>();
        var host = new List<ClientUpload>();
        for (int c = 0; c < examples.Length; c++)
        {
            var noise = Numerics.Random(global.Length, 100 * round + c, 0.05f);
            var trained = global.Select((x, i) => x + noise[i]).ToArray();
            var upload = encoder.Encode(c, examples[c], Upload(trained), globalView);
            WireValidator.Validate(uplink.Layout, upload, settings);
            wire.Add(upload);
            host.Add(UplinkReference.Encode(uplink.Layout, settings, Layers(uplink, trained), Layers(uplink, global), examples[c]));
        }
        return (wire, host);
    }

    [TestCaseSource(nameof(KindsAndStrategies))]
    public void ThreeRoundsEqualFedAvgFollowedByTheReferenceStep(ServerOptimizerKind kind, UplinkStrategy strategy)
    {
        using var global = ModelCatalog.Create(Device, "cnn", 1, 8, 4, 1);
        SwatRules.Apply(global, new SparsitySettings(0.9f));
        var uplink = new UplinkModel(global.Store, SwatRules.SparseWeights(global).ToList());
        var settings = new UplinkSettings(strategy, 0.9, 0.1);
        var optimizerSettings = ServerOptimizerSettings.Defaults(kind) with { LearningRate = 0.02 };
        using var optimizer = new ServerOptimizer(Device, optimizerSettings, uplink);
        using var aggregator = new DeviceAggregator(Device, uplink);
        Assert.That(optimizer.Length, Is.EqualTo(global.Store.TotalLength), "the small CNN has no running statistics");

        var expected = global.Store.Download();
        var globalView = Upload(expected);
        float[] m = new float[expected.Length], v = new float[expected.Length];
        bool differences = strategy.SendsDifferences();
        float[] fedAvg = [];
        for (int round = 1; round <= 3; round++)
        {
            var (wire, host) = Uploads(uplink, settings, Download(globalView), round);
            aggregator.Begin();
            wire.ForEach(aggregator.Add);
            aggregator.Finish(globalView, strategy, optimizer, round);

            fedAvg = Flatten(uplink, FedAvg.Aggregate(uplink.Layout, Layers(uplink, expected), host).Weights);
            // The pseudo-gradient's source: FedAvg's new model, or for the diff strategies the average difference.
            var aggregate = differences ? fedAvg.Select((x, i) => x - expected[i]).ToArray() : fedAvg;
            ServerOptimizerReference.Step(expected, aggregate, m, v, optimizerSettings.StepFor(round, differences));
        }
        var actual = Download(globalView);
        Numerics.AssertClose(expected, actual, 1e-4f, 2e-5f, $"{kind}, {strategy.Name()}: model after 3 rounds");
        var state = optimizer.Download();
        Numerics.AssertClose(m, state[..m.Length], 1e-3f, 1e-6f, "m");
        Numerics.AssertClose(v, state[m.Length..], 1e-3f, 1e-9f, "v");
        Assert.That(actual.Zip(fedAvg).Max(p => MathF.Abs(p.First - p.Second)), Is.GreaterThan(1e-3f), "not FedAvg's model");
    }

    [Test]
    public void RunningStatisticsArePlainAveragedWhileTheTrainableValuesStep()
    {
        using var model = new Model(Device, "conv-bn", new Sequential(new Conv2d(1, 4, 3, 1, 1), new BatchNorm2d(4)), [1, 8, 8], 4, 3);
        var uplink = new UplinkModel(model.Store, []);
        var settings = new UplinkSettings(UplinkStrategy.Dense, 0, 0);
        var optimizerSettings = ServerOptimizerSettings.Defaults(ServerOptimizerKind.FedAdam);
        using var optimizer = new ServerOptimizer(Device, optimizerSettings, uplink);
        using var aggregator = new DeviceAggregator(Device, uplink);
        long trainable = model.Store.TrainableLength;
        Assert.That(optimizer.Length, Is.EqualTo(trainable));
        Assert.That(model.Store.TotalLength - trainable, Is.EqualTo(8), "running mean and variance of 4 channels");

        var before = model.Store.Download();
        var globalView = Upload(before);
        var (wire, host) = Uploads(uplink, settings, before, round: 1);
        aggregator.Begin();
        wire.ForEach(aggregator.Add);
        aggregator.Finish(globalView, UplinkStrategy.Dense, optimizer, 1);
        var actual = Download(globalView);

        var average = Flatten(uplink, FedAvg.Aggregate(uplink.Layout, Layers(uplink, before), host).Weights);
        Numerics.AssertClose(average[(int)trainable..], actual[(int)trainable..], 1e-6f, 1e-7f, "running statistics: FedAvg's average");
        var expected = before[..(int)trainable];
        ServerOptimizerReference.Step(expected, average[..(int)trainable], new float[trainable], new float[trainable], optimizerSettings.StepFor(1, false));
        Numerics.AssertClose(expected, actual[..(int)trainable], 1e-4f, 1e-6f, "trainable values: one FedAdam step");
        Assert.That(optimizer.Download().Skip((int)trainable).All(x => x > 0f), Is.True, "v of every trainable value moved");
    }

    [Test]
    public void FedAvgIsTheAggregatorsOwnResult()
    {
        using var global = ModelCatalog.Create(Device, "cnn", 1, 8, 4, 1);
        SwatRules.Apply(global, new SparsitySettings(0.9f));
        var uplink = new UplinkModel(global.Store, SwatRules.SparseWeights(global).ToList());
        var settings = new UplinkSettings(UplinkStrategy.TopKWeights, 0.9, 0.1);
        var before = global.Store.Download();
        var (wire, _) = Uploads(uplink, settings, before, round: 1);
        float[] Finish(bool explicitRound)
        {
            using var aggregator = new DeviceAggregator(Device, uplink);
            var view = Upload(before);
            aggregator.Begin();
            wire.ForEach(aggregator.Add);
            _ = explicitRound ? aggregator.Finish(view, settings.Strategy, null, 1) : aggregator.Finish(view, settings.Strategy);
            return Download(view);
        }
        Assert.That(Finish(explicitRound: true), Is.EqualTo(Finish(explicitRound: false)), "no optimizer: FedAvg, bit for bit");
        Assert.Throws<ArgumentException>(() => new ServerOptimizer(Device, ServerOptimizerSettings.FedAvg, uplink));
    }
}

/// <summary>The server optimizers' settings: Flower's defaults and FedAdam's bias-corrected step.</summary>
public sealed class ServerOptimizerSettingsTests
{
    [Test]
    public void DefaultsAreFlowers()
    {
        Assert.That(ServerOptimizerSettings.Defaults(ServerOptimizerKind.FedAdam), Is.EqualTo(new ServerOptimizerSettings(ServerOptimizerKind.FedAdam, 0.1, 0.9, 0.99, 1e-3)));
        Assert.That(ServerOptimizerSettings.Defaults(ServerOptimizerKind.FedYogi), Is.EqualTo(new ServerOptimizerSettings(ServerOptimizerKind.FedYogi, 0.01, 0.9, 0.99, 1e-3)));
        Assert.That(ServerOptimizerSettings.Defaults(ServerOptimizerKind.FedAdagrad), Is.EqualTo(new ServerOptimizerSettings(ServerOptimizerKind.FedAdagrad, 0.1, 0, 0, 1e-3)));
    }

    [Test]
    public void FedAdamsStepIsBiasCorrectedWithFlowersExponentOnly()
    {
        var adam = ServerOptimizerSettings.Defaults(ServerOptimizerKind.FedAdam);
        // Round 1: Flower's exponent is t + 1 = 2: 0.1 sqrt(1 - 0.99^2) / (1 - 0.9^2).
        Assert.That(adam.StepSize(1), Is.EqualTo(0.1 * Math.Sqrt(1 - 0.9801) / 0.19).Within(1e-12));
        Assert.That(adam.StepSize(1000), Is.EqualTo(0.1).Within(1e-5), "the correction fades");
        Assert.That(ServerOptimizerSettings.Defaults(ServerOptimizerKind.FedYogi).StepSize(1), Is.EqualTo(0.01));
        Assert.That(ServerOptimizerSettings.Defaults(ServerOptimizerKind.FedAdagrad).StepSize(3), Is.EqualTo(0.1));
    }

    [Test]
    public void BadSettingsAreOneLineErrors()
    {
        var adam = ServerOptimizerSettings.Defaults(ServerOptimizerKind.FedAdam);
        Assert.Throws<ArgumentException>(() => (adam with { Tau = 0 }).Validate());
        Assert.Throws<ArgumentException>(() => (adam with { Beta2 = 1 }).Validate());
        Assert.Throws<ArgumentException>(() => (adam with { LearningRate = -0.1 }).Validate());
        Assert.DoesNotThrow(() => ServerOptimizerSettings.FedAvg.Validate());
        Assert.That(ServerOptimizers.TryParse("fedyogi", out var kind) && kind == ServerOptimizerKind.FedYogi, Is.True);
        Assert.That(ServerOptimizers.TryParse("adam", out _), Is.False);
    }
}
