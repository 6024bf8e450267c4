using ZeroFL.Engine.Devices;
using ZeroFL.Engine.Memory;
using ZeroFL.Engine.Models;
using ZeroFL.Engine.Modules;
using ZeroFL.Engine.Sparsity;
using ZeroFL.Engine.Training;
using ZeroFL.Federation;
using ZeroFL.Federation.Partitioning;
using ZeroFL.Federation.Simulation;
using ZeroFL.Federation.Uplink;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Federation;

/// <summary>
/// The strategy pieces of the round: FedAvgStrategy's AggregateFit against the host FedAvg
/// reference, a refused sample, and the round loop handing the strategy typed failures from a
/// backend and from its own validation.
/// </summary>
[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Specs))]
public sealed class StrategyTests(string device) : DeviceTest(device)
{
    private static FederatedOptions Options(int clients, int clientsPerRound) => new(
        "cnn", clients, ClientSampling.Fixed(clientsPerRound), Rounds: 1, LocalEpochs: 1, BatchSize: 8,
        new ExponentialDecay(0.05, 0.01, 1), 0.9f, 5e-4f, new UplinkSettings(UplinkStrategy.TopKWeights, 0.9, 0.1),
        new SparsitySettings(0.9f), PartitionScheme.Iid, 1.0, EvaluateEvery: 1, Seed: 1);

    private static float[][] Layers(UplinkModel uplink, float[] values) =>
        uplink.Parameters.Select(p => values.AsSpan((int)p.Offset, (int)p.Length).ToArray()).ToArray();

    /// <summary>A global model, its uplink, and three clients' uploads (the global values plus noise) with their host references.</summary>
    private (Model Global, UplinkModel Uplink, float[] GlobalHost, List<WireUpload> Wires, List<ClientUpload> References) ThreeUploads(FederatedOptions options)
    {
        var global = ModelCatalog.Create(Device, "cnn", 1, 8, 4, 1);
        SwatRules.Apply(global, options.Sparsity);
        var uplink = new UplinkModel(global.Store, SwatRules.SparseWeights(global, options.Sparsity.Layers).ToList());
        var globalHost = global.Store.Download();
        using var encoder = new DeviceUplinkEncoder(Device, uplink, options.Uplink);
        var wires = new List<WireUpload>();
        var references = new List<ClientUpload>();
        long[] examples = [30, 50, 20];
        for (int c = 0; c < 3; c++)
        {
            var trained = (float[])globalHost.Clone();
            var noise = Numerics.Random(trained.Length, c + 2, 0.05f);
            for (int i = 0; i < trained.Length; i++)
            {
                trained[i] += noise[i];
            }
            wires.Add(encoder.Encode(c, examples[c], Upload(trained), global.Store.Values));
            references.Add(UplinkReference.Encode(uplink.Layout, options.Uplink, Layers(uplink, trained), Layers(uplink, globalHost), examples[c]));
        }
        return (global, uplink, globalHost, wires, references);
    }

    private StrategyContext Context(FederatedOptions options, Model global, UplinkModel uplink) =>
        new(Device, options, options.Clients, global, uplink, () => throw new AssertionException("no test set here"), () => throw new AssertionException("no test set here"));

    [Test]
    public void AggregateFitAveragesTheResultsOnTheDeviceLikeTheHostReference()
    {
        var options = Options(6, 3);
        var (global, uplink, globalHost, wires, references) = ThreeUploads(options);
        using (global)
        using (var strategy = new FedAvgStrategy(Context(options, global, uplink)))
        {
            var results = wires.Select((w, c) => ClientResult.Succeeded(c, w, (int)w.ExampleCount, new FitMetrics(c + 1.0, 10, 100))).ToList();
            var failures = new List<ClientFailure> { new(5, FailureKind.WorkerLost, "silo a: no answer in time") };
            var aggregate = strategy.AggregateFit(1, results, failures);

            Assert.That(aggregate, Is.Not.Null);
            Assert.That(aggregate!.Clients, Is.EqualTo(new[] { 0, 1, 2 }));
            Assert.That(aggregate.TrainLoss, Is.EqualTo((1.0 * 30 + 2.0 * 50 + 3.0 * 20) / 100).Within(1e-12), "losses weighted by examples");
            var expected = FedAvg.Aggregate(uplink.Layout, Layers(uplink, globalHost), references);
            var actual = Layers(uplink, global.Store.Download());
            for (int l = 0; l < actual.Length; l++)
            {
                Numerics.AssertClose(expected.Weights[l], actual[l], 1e-4f, 1e-6f, uplink.Layout.Layers[l].Name);
            }
            Assert.That(aggregate.NonZeroRatios, Is.EqualTo(expected.NonZeroRatio.Where((_, l) => uplink.Layout.Layers[l].Sparse).ToArray()).Within(1e-9));
            Assert.That(strategy.ConfigureEvaluate(1, aggregate), Is.EqualTo(aggregate.Clients), "FedAvg evaluates on the fit clients");
        }
    }

    [Test]
    public void ASampleWithTooFewResultsIsRefusedAndLeavesTheModelAlone()
    {
        var options = Options(6, 3) with { MinSuccessfulClients = 3 };
        var (global, uplink, globalHost, wires, _) = ThreeUploads(options);
        using (global)
        using (var strategy = new FedAvgStrategy(Context(options, global, uplink)))
        {
            var results = wires.Take(2).Select((w, c) => ClientResult.Succeeded(c, w, (int)w.ExampleCount, new FitMetrics(1, 0, 0)));
            var failures = new List<ClientFailure> { new(2, FailureKind.NonFiniteUpdate, "non-finite training loss NaN") };
            Assert.That(strategy.AggregateFit(1, results, failures), Is.Null);
            Assert.That(global.Store.Download(), Is.EqualTo(globalHost), "a refused sample does not reach the model");
        }
    }

    [Test]
    public void ConfigureFitSamplesAsTheOptionsSay()
    {
        var options = Options(20, 4) with { Rounds = 10, EvaluateEvery = 5, LearningRate = new ExponentialDecay(0.1, 0.01, 10) };
        using var global = ModelCatalog.Create(Device, "cnn", 1, 8, 4, 1);
        var uplink = new UplinkModel(global.Store, SwatRules.SparseWeights(global, options.Sparsity.Layers).ToList());
        using var strategy = new FedAvgStrategy(Context(options, global, uplink));
        var fit = strategy.ConfigureFit(3, 1);
        Assert.That(fit.Round, Is.EqualTo(3));
        Assert.That(fit.Attempt, Is.EqualTo(1));
        Assert.That(fit.Clients, Is.EqualTo(options.Sampling.Sample(20, 3, options.Seed, 1)));
        Assert.That(fit.LearningRate, Is.EqualTo((float)options.LearningRate.At(2)));
        Assert.That(strategy.ConfigureFit(3, 2).Clients, Is.Not.EqualTo(fit.Clients), "another attempt, another sample");
        Assert.That(strategy.Evaluate(3), Is.Null, "rounds between evaluations (every 5th and the last) have none");
    }

    /// <summary>
    /// A backend that trains in process but reports one client's worker as lost and corrupts
    /// another's upload: the round loop records both, typed, leaves them out and hands the same
    /// failures to the strategy; the strategy reads the results once.
    /// </summary>
    [Test]
    public void TheRoundLoopHandsTheStrategyTypedFailuresAndOnlyValidatedUploads()
    {
        var (train, test) = DeviceFederationTests.TinyData(120, 20);
        var options = Options(6, 4) with { MinSuccessfulClients = 2 };
        var partition = IidPartitioner.Create(train, 6, new PartitionOptions(3));
        var backend = new FaultyBackend();
        RecordingStrategy? recording = null;
        using var server = new FederatedServer(Device, options, train, test, partition, backend, context => recording = new RecordingStrategy(new FedAvgStrategy(context)));
        using var workspace = new Workspace(Device);
        using var data = new DeviceDataset(Device, train.Features, train.Labels, [1, 8, 8], 4);
        using var runner = new ClientRunner(Device, options, [1, 8, 8], 4, server.Uplink, workspace);
        backend.Inner = new InProcessFit(runner, data, partition, options);

        var m = server.RunRound(1);

        var sampled = options.Sampling.Sample(6, 1, options.Seed, 0);
        Assert.That(m.Failures.Select(f => (f.ClientId, f.Kind)), Is.EqualTo(new[] { (sampled[1], FailureKind.WorkerLost), (sampled[2], FailureKind.MalformedUpload) }));
        Assert.That(m.Failures[0].ToString(), Is.EqualTo($"client {sampled[1]}: worker lost: silo test: no answer in time"));
        Assert.That(m.Failures[1].Reason, Is.EqualTo("malformed upload"));
        Assert.That(recording!.FailuresAfterReading, Is.EqualTo(m.Failures), "the strategy saw the round's failures once it had read the results");
        Assert.That(recording.Aggregated, Is.EqualTo(new[] { sampled[0], sampled[3] }));
        Assert.That(m.Clients, Is.EqualTo(4));
        Assert.That(Assert.Throws<InvalidOperationException>(() => recording.ReadAgain!.GetEnumerator())!.Message, Does.Contain("read once"));
    }

    [Test]
    public void AStrategyThatSamplesClientsOutsideThePartitionStopsTheRoundInOneLine()
    {
        var (train, test) = DeviceFederationTests.TinyData(60, 10);
        var options = Options(3, 2);
        var partition = IidPartitioner.Create(train, 3, new PartitionOptions(3));
        foreach (var clients in new[] { new[] { 0, 3 }, [1, 1], [] })
        {
            using var server = new FederatedServer(Device, options, train, test, partition, null, context => new RecordingStrategy(new FedAvgStrategy(context), clients));
            var error = Assert.Throws<InvalidOperationException>(() => server.RunRound(1));
            Assert.That(error!.Message, Does.StartWith($"round 1: the strategy sampled clients [{string.Join(", ", clients)}]; each must be one of the 3 clients"));
        }
    }

    /// <summary>In-process training, except that the sample's second client's worker is lost and the third's upload arrives corrupted.</summary>
    private sealed class FaultyBackend : IFitBackend
    {
        public InProcessFit? Inner { get; set; }

        public IEnumerable<ClientResult> Fit(FitInstructions instructions, ParameterStore global)
        {
            int i = 0;
            foreach (var result in Inner!.Fit(instructions, global))
            {
                yield return i++ switch
                {
                    1 => ClientResult.Failed(result.ClientId, FailureKind.WorkerLost, "silo test: no answer in time"),
                    2 => result with { Upload = UploadCorruption.Apply(result.Upload!, instructions.Round, instructions.Attempt, 7) },
                    _ => result,
                };
            }
        }
    }

    /// <summary>A strategy that passes everything to FedAvg (the sampled clients aside, when given) and keeps what AggregateFit saw.</summary>
    private sealed class RecordingStrategy(FedAvgStrategy inner, IReadOnlyList<int>? clients = null) : IStrategy
    {
        public List<ClientFailure> FailuresAfterReading { get; } = [];

        public List<int> Aggregated { get; } = [];

        public IEnumerable<ClientResult>? ReadAgain { get; private set; }

        public long DeviceBytes => inner.DeviceBytes;

        public FitInstructions ConfigureFit(int round, int attempt) =>
            clients is null ? inner.ConfigureFit(round, attempt) : inner.ConfigureFit(round, attempt) with { Clients = clients };

        public FitAggregate? AggregateFit(int round, IEnumerable<ClientResult> results, IReadOnlyList<ClientFailure> failures)
        {
            var aggregate = inner.AggregateFit(round, results.Select(r =>
            {
                Aggregated.Add(r.ClientId);
                return r;
            }), failures);
            FailuresAfterReading.AddRange(failures);
            ReadAgain = results;
            return aggregate;
        }

        public IReadOnlyList<int> ConfigureEvaluate(int round, FitAggregate fit) => inner.ConfigureEvaluate(round, fit);

        public Evaluation? AggregateEvaluate(int round, IReadOnlyList<Evaluation> results) => inner.AggregateEvaluate(round, results);

        public CentralEvaluation? Evaluate(int round) => inner.Evaluate(round);

        public void Dispose() => inner.Dispose();
    }
}
