using ZeroFL.Data;
using ZeroFL.Engine.Models;
using ZeroFL.Engine.Sparsity;
using ZeroFL.Engine.Training;
using ZeroFL.Federation;
using ZeroFL.Federation.Partitioning;
using ZeroFL.Federation.Simulation;
using ZeroFL.Federation.Uplink;
using ZeroFL.Kernels.Reference;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Federation;

/// <summary>
/// The server's analyses: dense vs top-K evaluation, the clients' validation (Flower's evaluate
/// round with the fit clients), mask stability every N rounds and its state across a resume; and
/// that none of them changes the model.
/// </summary>
[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Specs))]
public sealed class RunAnalysesTests(string device) : DeviceTest(device)
{
    private static readonly (Dataset Train, Dataset Test) Data = DeviceFederationTests.TinyData(300, 60);

    private static FederatedOptions Options(int rounds, UplinkStrategy strategy = UplinkStrategy.TopKWeights) => new(
        "cnn", 12, ClientSampling.Fixed(4), rounds, LocalEpochs: 1, BatchSize: 8,
        new ExponentialDecay(0.05, 0.01, rounds), 0.9f, 5e-4f,
        new UplinkSettings(strategy, strategy == UplinkStrategy.Dense ? 0 : 0.9, strategy.SparsifiesUpload() ? 0.1 : 0),
        new SparsitySettings(strategy == UplinkStrategy.Dense ? 0f : 0.9f), PartitionScheme.Iid, 1.0, EvaluateEvery: 1, Seed: 3);

    private static Partition NewPartition(double validationFraction = 0.1) => IidPartitioner.Create(Data.Train, 12, new PartitionOptions(4, validationFraction));

    private FederatedServer NewServer(FederatedOptions options, Partition? partition = null) =>
        new(Device, options, Data.Train, Data.Test, partition ?? NewPartition());

    private DeviceDataset OnDevice(Dataset data) =>
        new(Device, data.Features, data.Labels, [data.Channels, data.Height, data.Width], data.ClassCount);

    /// <summary>A model of the server's architecture holding the global model's values, dense or with SWAT 0.9.</summary>
    private Model CopyOfGlobal(FederatedServer server, float sparsity)
    {
        var model = ModelCatalog.Create(Device, "cnn", 1, 8, 4, seed: 99);
        SwatRules.Apply(model, new SparsitySettings(sparsity));
        model.Store.Upload(server.Global.Store.Download());
        return model;
    }

    /// <summary>Each sparse layer's weights (layout order) of a downloaded store.</summary>
    private static float[][] SparseLayers(FederatedServer server, float[] values) =>
        Enumerable.Range(0, server.Uplink.Layout.Layers.Count).Where(l => server.Uplink.Layout.Layers[l].Sparse)
            .Select(l => values.AsSpan((int)server.Uplink.Parameters[l].Offset, (int)server.Uplink.Parameters[l].Length).ToArray()).ToArray();

    [Test]
    public void DenseWeightsEvaluationRunsTheSparseLayersDenseAndLeavesTheModelAsItWas()
    {
        using var server = NewServer(Options(1));
        server.RunRound(1);
        var values = server.Global.Store.Download();
        var sparse = server.Evaluate();
        var dense = server.EvaluateDenseWeights();
        using var test = OnDevice(Data.Test);
        using var plain = CopyOfGlobal(server, 0f);
        using var trainer = new Trainer(plain, new Sgd(1f, 0f, 0f));
        var expected = trainer.Evaluate(test);
        Assert.That(dense, Is.EqualTo(expected), "the same as a dense copy of the model");
        Assert.That(dense.Loss, Is.Not.EqualTo(sparse.Loss), "and not the top-K evaluation");
        Assert.That(server.Evaluate(), Is.EqualTo(sparse), "the SWAT states are back");
        Assert.That(server.Global.Store.Download(), Is.EqualTo(values), "the model is untouched");
        Assert.Throws<ArgumentException>(() => trainer.Evaluate(test, [0, test.Count]), "a sample past the data is refused on the host");
    }

    [Test]
    public void ADenseModelsTwoAccuraciesAreOneAndItRecordsNoMasks()
    {
        using var server = NewServer(Options(2, UplinkStrategy.Dense) with { MaskRecordEvery = 1 });
        var m = server.RunRound(1);
        Assert.That(m.TestAccuracy, Is.Not.Null);
        Assert.That(m.TestAccuracyDenseWeights, Is.EqualTo(m.TestAccuracy));
        Assert.That(m.MaskStability, Is.Null);
        Assert.That(server.SaveMaskRecord(), Is.Null);
    }

    [Test]
    public void ValidationIsTheFitClientsSplitsWeightedByTheirExamples()
    {
        var options = Options(1);
        var partition = NewPartition();
        using var server = NewServer(options, partition);
        var m = server.RunRound(1);
        var fit = options.Sampling.Sample(partition.ClientCount, 1, options.Seed, 0);
        Assert.That(m.Failures, Is.Empty);

        using var train = OnDevice(Data.Train);
        using var copy = CopyOfGlobal(server, 0.9f);
        using var trainer = new Trainer(copy, new Sgd(1f, 0f, 0f));
        double correct = 0, loss = 0;
        int examples = 0;
        foreach (int id in fit)
        {
            var samples = partition.Clients[id].Validation;
            var e = trainer.Evaluate(train, samples);
            correct += e.Accuracy * samples.Length;
            loss += e.Loss * samples.Length;
            examples += samples.Length;
        }
        Assert.That(examples, Is.Positive);
        Assert.That(m.ValidationAccuracy, Is.EqualTo(correct / examples).Within(1e-12));
        Assert.That(m.ValidationLoss, Is.EqualTo(loss / examples).Within(1e-9));

        // The union of the splits in one list gives the same share right (the loss up to rounding).
        var union = fit.SelectMany(id => partition.Clients[id].Validation).ToArray();
        Assert.That(trainer.Evaluate(train, union).Accuracy, Is.EqualTo(m.ValidationAccuracy!.Value).Within(1e-12));
    }

    [Test]
    public void WithoutAValidationSplitThereIsNoValidation()
    {
        using var server = NewServer(Options(1), NewPartition(0));
        var m = server.RunRound(1);
        Assert.That(m.ValidationAccuracy, Is.Null);
        Assert.That(m.ValidationLoss, Is.Null);
    }

    [Test]
    public void MasksAreRecordedEveryNRoundsAgainstTheReference()
    {
        using var server = NewServer(Options(4) with { MaskRecordEvery = 2 });
        var snapshots = new List<float[][]> { SparseLayers(server, server.Global.Store.Download()) };
        var metrics = new List<RoundMetrics>();
        for (int round = 1; round <= 4; round++)
        {
            metrics.Add(server.RunRound(round));
            if (round % 2 == 0)
            {
                snapshots.Add(SparseLayers(server, server.Global.Store.Download()));
            }
        }
        Assert.That(metrics[0].MaskStability, Is.Null);
        Assert.That(metrics[2].MaskStability, Is.Null);
        var settings = new SparsitySettings(0.9f);
        for (int record = 1; record <= 2; record++)
        {
            var stability = metrics[2 * record - 1].MaskStability!;
            Assert.That(stability, Has.Count.EqualTo(2), "both sparse layers of the small CNN");
            for (int l = 0; l < stability.Count; l++)
            {
                var before = snapshots[record - 1][l];
                var after = snapshots[record][l];
                Assert.That(stability[l], Is.EqualTo(MaskReference.Stability(before, after, settings.KeepCount(before.Length))), $"record {record} (round {2 * record}), layer {l}");
            }
        }
    }

    [Test]
    public void AResumedServerWithTheCheckpointsRecordWritesTheUninterruptedStability()
    {
        // The CPU accelerator trains bit for bit the same each time; a GPU need not (the sparse
        // backward's transposed CSR is filled through atomic cursors). Rusticl passed it when tried.
        Assume.That(Device.IsCpu, "bit-identical training across servers");
        var options = Options(4) with { MaskRecordEvery = 2 };
        using var whole = NewServer(options);
        var rounds = new List<RoundMetrics>();
        float[] afterOne = [], afterThree = [];
        MaskRecord? record = null;
        for (int round = 1; round <= 4; round++)
        {
            rounds.Add(whole.RunRound(round));
            if (round == 1)
            {
                afterOne = whole.Global.Store.Download();
            }
            if (round == 3)
            {
                afterThree = whole.Global.Store.Download();
                record = whole.SaveMaskRecord();
            }
        }
        Assert.That(record!.Round, Is.EqualTo(2));

        using var resumed = NewServer(options);
        resumed.Global.Store.Upload(afterThree);
        Assert.That(resumed.RestoreMaskRecord(record, 3), Is.Null);
        Assert.That(resumed.RunRound(4).MaskStability, Is.EqualTo(rounds[3].MaskStability));

        // A checkpoint from before mask records: the initial model's record is right until the first record round passes.
        using var early = NewServer(options);
        early.Global.Store.Upload(afterOne);
        Assert.That(early.RestoreMaskRecord(null, 1), Is.Null);
        Assert.That(early.RunRound(2).MaskStability, Is.EqualTo(rounds[1].MaskStability));
        using var late = NewServer(options);
        late.Global.Store.Upload(afterThree);
        Assert.That(late.RestoreMaskRecord(null, 3), Is.Null);
        Assert.That(late.RunRound(4).MaskStability, Is.Null, "no predecessor");

        using var damaged = NewServer(options);
        Assert.That(damaged.RestoreMaskRecord(record with { Round = 4 }, 3), Does.Contain("does not fit"));
        Assert.That(damaged.RestoreMaskRecord(record with { Layers = [record.Layers[0]] }, 3), Does.Contain("no predecessor"));
    }

    [Test]
    public void TheAnalysesOnlyReadTheModel()
    {
        Assume.That(Device.IsCpu, "bit-identical training across servers");
        var partition = NewPartition();
        using var busy = NewServer(Options(3) with { MaskRecordEvery = 1 }, partition);
        using var quiet = NewServer(Options(3) with { EvaluateEvery = 100, MaskRecordEvery = 100 }, partition);
        for (int round = 1; round <= 3; round++)
        {
            busy.RunRound(round);
            busy.EvaluateDenseWeights();
            busy.EvaluateClients(Enumerable.Range(0, partition.ClientCount));
            busy.SaveMaskRecord();
            quiet.RunRound(round);
        }
        Assert.That(busy.Global.Store.Download(), Is.EqualTo(quiet.Global.Store.Download()));
    }
}

/// <summary>Flower's aggregate_evaluate: the example-weighted mean of the clients' evaluations.</summary>
public sealed class FederatedEvaluationTests
{
    [Test]
    public void ClientsAreWeightedByTheirValidationExamples()
    {
        // 3 of 4 right and 1 of 1 right: 4 of 5, not the mean of 0.75 and 1.
        var mean = FederatedEvaluation.Aggregate([new Evaluation(0.75, 2.0, 4), new Evaluation(1.0, 0.5, 1), new Evaluation(0, 0, 0)])!.Value;
        Assert.That(mean.Accuracy, Is.EqualTo(0.8).Within(1e-15));
        Assert.That(mean.Loss, Is.EqualTo((2.0 * 4 + 0.5) / 5).Within(1e-15));
        Assert.That(mean.Samples, Is.EqualTo(5));
    }

    [Test]
    public void NoExamplesMeansNoValidation()
    {
        Assert.That(FederatedEvaluation.Aggregate([]), Is.Null);
        Assert.That(FederatedEvaluation.Aggregate([new Evaluation(0, 0, 0)]), Is.Null);
        Assert.Throws<ArgumentException>(() => FederatedEvaluation.Aggregate([new Evaluation(1, 1, -1)]));
    }
}
