using ILGPU;
using ILGPU.Runtime;
using ZeroFL.Data;
using ZeroFL.Engine.Models;
using ZeroFL.Engine.Sparsity;
using ZeroFL.Federation;
using ZeroFL.Federation.Partitioning;
using ZeroFL.Federation.Simulation;
using ZeroFL.Federation.Uplink;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Federation;

/// <summary>The device uplink and aggregation against the host reference of ZEROFL.md.</summary>
[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Specs))]
public sealed class DeviceFederationTests(string device) : DeviceTest(device)
{
    private static readonly UplinkStrategy[] AllStrategies =
        [UplinkStrategy.Dense, UplinkStrategy.Swat, UplinkStrategy.TopKWeights, UplinkStrategy.DiffOnTopKWeights, UplinkStrategy.TopKWeightsDiff];

    private Model NewModel(int seed)
    {
        var model = ModelCatalog.Create(Device, "cnn", 1, 8, 4, seed);
        SwatRules.Apply(model, new SparsitySettings(0.9f));
        return model;
    }

    private static float[][] Layers(UplinkModel uplink, float[] values) =>
        uplink.Parameters.Select(p => values.AsSpan((int)p.Offset, (int)p.Length).ToArray()).ToArray();

    [TestCaseSource(nameof(AllStrategies))]
    public void EachStrategysUploadAndAggregateEqualTheHostReference(UplinkStrategy strategy)
    {
        using var global = NewModel(1);
        var uplink = new UplinkModel(global.Store, SwatRules.SparseWeights(global).ToList());
        var settings = new UplinkSettings(strategy, strategy == UplinkStrategy.Dense ? 0 : 0.9, strategy.SparsifiesUpload() ? 0.1 : 0);
        var globalHost = global.Store.Download();
        var clients = new[] { 2, 3, 4 }.Select(seed =>
        {
            var trained = (float[])globalHost.Clone();
            var noise = Numerics.Random(trained.Length, seed, 0.05f);
            for (int i = 0; i < trained.Length; i++)
            {
                trained[i] += noise[i];
            }
            return trained;
        }).ToArray();
        long[] examples = [30, 50, 20];

        using var encoder = new DeviceUplinkEncoder(Device, uplink, settings);
        using var aggregator = new DeviceAggregator(Device, uplink);
        var globalView = Upload(globalHost);
        var references = new List<ClientUpload>();
        aggregator.Begin();
        for (int c = 0; c < clients.Length; c++)
        {
            var wire = encoder.Encode(c, examples[c], Upload(clients[c]), globalView);
            WireValidator.Validate(uplink.Layout, wire, settings);
            var reference = UplinkReference.Encode(uplink.Layout, settings, Layers(uplink, clients[c]), Layers(uplink, globalHost), examples[c]);
            var device = WireValidator.ToClientUpload(uplink.Layout, wire, settings);
            for (int l = 0; l < uplink.Layout.Layers.Count; l++)
            {
                var spec = uplink.Layout.Layers[l];
                Assert.That(device.Layers[l].Positions.ToArray(), Is.EqualTo(reference.Layers[l].Positions.ToArray()), $"{spec.Name}: positions");
                Numerics.AssertClose(reference.Layers[l].Values.ToArray(), device.Layers[l].Values.ToArray(), 1e-6f, 1e-7f, $"{spec.Name}: values");
            }
            Assert.That(wire.Bytes, Is.EqualTo(reference.Bytes), "bytes on the wire follow the CSR formula");
            references.Add(reference);
            aggregator.Add(wire);
        }
        var ratios = aggregator.Finish(globalView, strategy)!;
        var expected = FedAvg.Aggregate(uplink.Layout, Layers(uplink, globalHost), references);
        var actual = Layers(uplink, Download(globalView));
        for (int l = 0; l < actual.Length; l++)
        {
            Numerics.AssertClose(expected.Weights[l], actual[l], 1e-4f, 1e-6f, uplink.Layout.Layers[l].Name);
        }
        var sparseRatios = expected.NonZeroRatio.Where((_, l) => uplink.Layout.Layers[l].Sparse).ToArray();
        if (strategy.SparsifiesUpload())
        {
            Assert.That(ratios, Is.EqualTo(sparseRatios).Within(1e-9));
            Assert.That(ratios.All(r => r > 0.2 && r < 0.6), Is.True, "three clients' 20% masks overlap partly");
        }
    }

    [TestCase(UplinkStrategy.TopKWeights)]
    [TestCase(UplinkStrategy.DiffOnTopKWeights)]
    [TestCase(UplinkStrategy.TopKWeightsDiff)]
    public void MaskRatioEqualToSparsityGivesTheDenseUploadResult(UplinkStrategy strategy)
    {
        using var global = NewModel(1);
        var uplink = new UplinkModel(global.Store, SwatRules.SparseWeights(global).ToList());
        var globalHost = global.Store.Download();
        var trained = globalHost.Select((v, i) => v + 0.01f * MathF.Sin(i)).ToArray();
        float[] Aggregate(UplinkSettings settings)
        {
            using var encoder = new DeviceUplinkEncoder(Device, uplink, settings);
            using var aggregator = new DeviceAggregator(Device, uplink);
            var globalView = Upload(globalHost);
            aggregator.Begin();
            var wire = encoder.Encode(0, 10, Upload(trained), globalView);
            Assert.That(wire.Layers.All(l => !l.IsCsr), Is.EqualTo(settings.KeepFraction == 1m), "r_mask = sp sends every layer whole");
            aggregator.Add(wire);
            aggregator.Finish(globalView, settings.Strategy);
            return Download(globalView);
        }
        var full = Aggregate(new UplinkSettings(strategy, 0.9, 0.9));
        var swat = Aggregate(new UplinkSettings(UplinkStrategy.Swat, 0.9, 0));
        Numerics.AssertClose(swat, full, 1e-5f, 1e-6f, "r_mask = sparsity versus the dense (SWAT) upload");
    }

    /// <summary>
    /// The device sends exactly the chosen positions, a chosen entry whose value is exactly 0
    /// included (dead weights for Top-K-Weights; unchanged weights, d = 0, for the diff strategies):
    /// K entries per sparse layer, the host reference's positions, and the CSR byte count of K.
    /// </summary>
    [TestCase(UplinkStrategy.TopKWeights)]
    [TestCase(UplinkStrategy.DiffOnTopKWeights)]
    [TestCase(UplinkStrategy.TopKWeightsDiff)]
    public void ChosenEntriesWhoseValueIsZeroAreSent(UplinkStrategy strategy)
    {
        using var global = NewModel(1);
        var uplink = new UplinkModel(global.Store, SwatRules.SparseWeights(global).ToList());
        var settings = new UplinkSettings(strategy, 0.9, 0.1);
        var globalHost = global.Store.Download();
        var trained = (float[])globalHost.Clone();
        foreach (var p in uplink.Parameters.Where((_, l) => uplink.Layout.Layers[l].Sparse))
        {
            // One in ten weights moves; the rest stay (d = 0) or, for Top-K-Weights, die (w = 0).
            for (int i = 0; i < p.Length; i++)
            {
                int at = (int)p.Offset + i;
                trained[at] = i % 10 == 0 ? globalHost[at] + 0.5f : strategy == UplinkStrategy.TopKWeights ? 0f : globalHost[at];
            }
        }
        using var encoder = new DeviceUplinkEncoder(Device, uplink, settings);
        var wire = encoder.Encode(0, 10, Upload(trained), Upload(globalHost));
        WireValidator.Validate(uplink.Layout, wire, settings);
        var reference = UplinkReference.Encode(uplink.Layout, settings, Layers(uplink, trained), Layers(uplink, globalHost), 10);
        var device = WireValidator.ToClientUpload(uplink.Layout, wire, settings);
        int zerosSent = 0;
        for (int l = 0; l < uplink.Layout.Layers.Count; l++)
        {
            var spec = uplink.Layout.Layers[l];
            if (!spec.Sparse)
            {
                continue;
            }
            int k = (int)Math.Ceiling(0.2 * spec.Length - 1e-9);
            Assert.That(wire.Layers[l].Values, Has.Length.EqualTo(k), $"{spec.Name}: K = 20% of {spec.Length}");
            Assert.That(device.Layers[l].Positions.ToArray(), Is.EqualTo(reference.Layers[l].Positions.ToArray()), $"{spec.Name}: positions");
            Assert.That(device.Layers[l].Values.ToArray(), Is.EqualTo(reference.Layers[l].Values.ToArray()), $"{spec.Name}: values");
            zerosSent += wire.Layers[l].Values.Count(v => v == 0f);
        }
        Assert.That(zerosSent, Is.GreaterThan(0), "some chosen entries are exactly 0");
        Assert.That(wire.Bytes, Is.EqualTo(reference.Bytes));
        Assert.That(wire.Bytes, Is.EqualTo(UplinkBytes.Expected(uplink.Layout, settings)), "every client sends the bytes of K entries per sparse layer");
    }

    [TestCase("row pointer count")]
    [TestCase("row pointers not monotone")]
    [TestCase("last row pointer")]
    [TestCase("column out of range")]
    [TestCase("columns not increasing")]
    [TestCase("value not finite")]
    [TestCase("missing layer")]
    [TestCase("whole layer too short")]
    [TestCase("example count")]
    [TestCase("dense layer as CSR")]
    [TestCase("more entries than K")]
    public void MalformedUploadsAreRejectedBeforeTouchingTheModel(string corruption)
    {
        using var global = NewModel(1);
        var uplink = new UplinkModel(global.Store, SwatRules.SparseWeights(global).ToList());
        var settings = new UplinkSettings(UplinkStrategy.TopKWeights, 0.9, 0.1);
        using var encoder = new DeviceUplinkEncoder(Device, uplink, settings);
        var before = global.Store.Download();
        var wire = encoder.Encode(7, 10, global.Store.Values, global.Store.Values);
        int sparse = Enumerable.Range(0, uplink.Layout.Layers.Count).First(l => uplink.Layout.Layers[l].Sparse);
        int dense = Enumerable.Range(0, uplink.Layout.Layers.Count).First(l => !uplink.Layout.Layers[l].Sparse);
        var layers = wire.Layers.ToList();
        var s = layers[sparse];
        var bad = corruption switch
        {
            "row pointer count" => wire with { Layers = Replace(layers, sparse, s with { RowPointers = s.RowPointers![..^1] }) },
            "row pointers not monotone" => wire with { Layers = Replace(layers, sparse, s with { RowPointers = Swap(s.RowPointers!, 1, 2) }) },
            "last row pointer" => wire with { Layers = Replace(layers, sparse, s with { RowPointers = Set(s.RowPointers!, s.RowPointers!.Length - 1, 999_999) }) },
            "column out of range" => wire with { Layers = Replace(layers, sparse, s with { Columns = Set(s.Columns!, 0, int.MaxValue) }) },
            "columns not increasing" => wire with { Layers = Replace(layers, sparse, s with { Columns = Set(s.Columns!, 1, s.Columns![0]) }) },
            "value not finite" => wire with { Layers = Replace(layers, sparse, s with { Values = Set(s.Values, 0, float.NaN) }) },
            "missing layer" => wire with { Layers = layers.Take(layers.Count - 1).ToList() },
            "whole layer too short" => wire with { Layers = Replace(layers, dense, layers[dense] with { Values = layers[dense].Values[..^1] }) },
            "example count" => wire with { ExampleCount = -5 },
            "dense layer as CSR" => wire with { Layers = Replace(layers, dense, s) },
            // A well-formed upload of a larger slice (r_mask 0.2 where the round asked for 0.1).
            "more entries than K" => WiderUpload(uplink, global, new UplinkSettings(UplinkStrategy.TopKWeights, 0.9, 0.2)),
            _ => throw new ArgumentException(corruption),
        };
        Assert.Throws<MalformedUploadException>(() => WireValidator.Validate(uplink.Layout, bad, settings));
        Assert.That(global.Store.Download(), Is.EqualTo(before), "the global model is untouched");
    }

    [Test]
    public void DeviceMemoryDoesNotGrowWithTheNumberOfClients()
    {
        var (train, test) = TinyData(3600, 100);
        long BytesFor(int clients)
        {
            var options = Options(clients, clientsPerRound: 3);
            var partition = IidPartitioner.Create(train, clients, new PartitionOptions(1));
            using var server = new FederatedServer(Device, options, train, test, partition);
            server.RunRound(1);
            return server.DeviceBytes;
        }
        long few = BytesFor(36), many = BytesFor(3600);
        Assert.That(many, Is.EqualTo(few), "36 vs 3600 clients: the same device memory");
    }

    [Test]
    public void ARoundRecordsUploadBytesFlopsAndNonZeroRatios()
    {
        var (train, test) = TinyData(200, 40);
        var options = Options(10, clientsPerRound: 4);
        var partition = DirichletPartitioner.Create(train, 10, 1.0, new PartitionOptions(2));
        using var server = new FederatedServer(Device, options, train, test, partition);
        var m = server.RunRound(1);
        Assert.That(m.Failures, Is.Empty);
        Assert.That(m.Clients, Is.EqualTo(4));
        Assert.That(m.UploadBytes, Is.GreaterThan(0).And.LessThan(m.DenseUploadBytes));
        Assert.That(m.TrainFlops, Is.GreaterThan(0).And.LessThan(m.DenseTrainFlops));
        Assert.That(m.NonZeroRatios, Has.Count.EqualTo(2));
        Assert.That(m.TestAccuracy, Is.Not.Null, "evaluated after the last round");
    }

    [Test]
    public void EveryKindOfInjectedCorruptionIsRejectedByTheServer()
    {
        using var global = NewModel(1);
        var uplink = new UplinkModel(global.Store, SwatRules.SparseWeights(global).ToList());
        var settings = new UplinkSettings(UplinkStrategy.TopKWeights, 0.9, 0.1);
        using var encoder = new DeviceUplinkEncoder(Device, uplink, settings);
        var wire = encoder.Encode(3, 10, global.Store.Values, global.Store.Values);
        WireValidator.Validate(uplink.Layout, wire, settings);
        for (int kind = 0; kind < UploadCorruption.Kinds.Count; kind++)
        {
            for (int layer = 0; layer < wire.Layers.Count; layer++)
            {
                var bad = UploadCorruption.Apply(wire, kind, layer);
                Assert.Throws<MalformedUploadException>(() => WireValidator.Validate(uplink.Layout, bad, settings),
                    $"{UploadCorruption.Kinds[kind]} at layer {layer}");
            }
        }
        WireValidator.Validate(uplink.Layout, wire, settings); // the original is untouched
    }

    [Test]
    public void ThousandsOfRandomlyCorruptedUploadsNeverGetPastTheValidatorOrCrashIt()
    {
        using var global = NewModel(1);
        var uplink = new UplinkModel(global.Store, SwatRules.SparseWeights(global).ToList());
        var settings = new UplinkSettings(UplinkStrategy.TopKWeights, 0.9, 0.1);
        using var encoder = new DeviceUplinkEncoder(Device, uplink, settings);
        using var aggregator = new DeviceAggregator(Device, uplink);
        var wire = encoder.Encode(3, 10, global.Store.Values, global.Store.Values);
        var random = new Random(21);
        int rejected = 0, accepted = 0;
        aggregator.Begin();
        for (int trial = 0; trial < 3000; trial++)
        {
            var layers = wire.Layers.ToList();
            int l = random.Next(layers.Count);
            var layer = layers[l];
            int edit = random.Next(layer.IsCsr ? 6 : 3);
            int Pick(int length) => length == 0 ? 0 : random.Next(length);
            int Noise() => random.Next(4) switch { 0 => -1, 1 => int.MaxValue, 2 => int.MinValue, _ => random.Next(-100, 100_000) };
            layers[l] = edit switch
            {
                0 => layer with { Values = Set(layer.Values, Pick(layer.Values.Length), random.Next(3) switch { 0 => float.NaN, 1 => float.PositiveInfinity, _ => (float)random.NextDouble() }) },
                1 => layer with { Values = layer.Values[..Pick(layer.Values.Length)] },
                2 => layer with { Values = [.. layer.Values, 1f] },
                3 => layer with { Columns = Set(layer.Columns!, Pick(layer.Columns!.Length), Noise()) },
                4 => layer with { RowPointers = Set(layer.RowPointers!, Pick(layer.RowPointers!.Length), Noise()) },
                _ => layer with { Columns = layer.Columns![..Pick(layer.Columns.Length)] },
            };
            var bad = wire with { Layers = layers, ExampleCount = random.Next(20) == 0 ? -random.Next(5) : wire.ExampleCount };
            try
            {
                WireValidator.Validate(uplink.Layout, bad, settings);
                aggregator.Add(bad); // what passes is well-formed and goes through the device aggregation
                accepted++;
            }
            catch (MalformedUploadException)
            {
                rejected++;
            }
        }
        aggregator.Finish(Upload(global.Store.Download()), UplinkStrategy.TopKWeights);
        Assert.That(rejected, Is.GreaterThan(2500), $"{accepted} corruptions happened to leave a valid upload (a finite value changed, a column set to a valid one)");
    }

    [Test]
    public void InjectedFaultsAreRecordedByReasonAndLeftOutOfTheRound()
    {
        var (train, test) = TinyData(300, 40);
        var options = Options(12, clientsPerRound: 6) with { Rounds = 4, LearningRate = new ExponentialDecay(0.05, 0.01, 4), Faults = new FaultInjection(0.3, 0.3) };
        var partition = IidPartitioner.Create(train, 12, new PartitionOptions(3));
        using var server = new FederatedServer(Device, options, train, test, partition);
        var reasons = new List<string>();
        for (int round = 1; round <= 4; round++)
        {
            var m = server.RunRound(round);
            reasons.AddRange(m.Failures.Select(f => f.Reason));
            Assert.That(m.Failures.Count, Is.LessThan(m.Clients), "at least one client made it");
        }
        Assert.That(reasons, Does.Contain(ClientFailure.TrainingFailed));
        Assert.That(reasons, Does.Contain(ClientFailure.MalformedUpload));
        Assert.That(float.IsFinite(server.Global.Store.Download().Sum()), Is.True, "no corrupt value reached the model");
    }

    [Test]
    public void ARoundWithTooFewSuccessfulClientsIsRetriedWithAFreshSample()
    {
        var (train, test) = TinyData(300, 40);
        var options = Options(12, clientsPerRound: 3) with { Rounds = 6, LearningRate = new ExponentialDecay(0.05, 0.01, 6), Faults = new FaultInjection(0.35, 0), MinSuccessfulClients = 3, MaxRoundAttempts = 20 };
        var partition = IidPartitioner.Create(train, 12, new PartitionOptions(3));
        using var server = new FederatedServer(Device, options, train, test, partition);
        var attempts = Enumerable.Range(1, 6).Select(r => server.RunRound(r)).Select(m => m.Attempts).ToList();
        Assert.That(attempts.Max(), Is.GreaterThan(1), "some round needed another sample");

        var hopeless = options with { Faults = new FaultInjection(0.99, 0), MaxRoundAttempts = 3 };
        using var failing = new FederatedServer(Device, hopeless, train, test, partition);
        var error = Assert.Throws<InvalidOperationException>(() => failing.RunRound(1));
        Assert.That(error!.Message, Does.Contain("fewer than 3 clients succeeded in each of 3 samples"));
    }

    private static FederatedOptions Options(int clients, int clientsPerRound) => new(
        "cnn", clients, ClientSampling.Fixed(clientsPerRound), Rounds: 1, LocalEpochs: 1, BatchSize: 8,
        new ExponentialDecay(0.05, 0.01, 1), 0.9f, 5e-4f, new UplinkSettings(UplinkStrategy.TopKWeights, 0.9, 0.1),
        new SparsitySettings(0.9f), PartitionScheme.Iid, 1.0, EvaluateEvery: 1, Seed: 1);

    /// <summary>Random 8x8 images of 4 classes: a training and a test set (also used by the cross-device tests).</summary>
    internal static (Dataset Train, Dataset Test) TinyData(int trainCount, int testCount)
    {
        Dataset Make(int count, int seed)
        {
            var random = new Random(seed);
            var pixels = new byte[count * 8 * 8];
            random.NextBytes(pixels);
            var labels = new byte[count];
            for (int i = 0; i < count; i++)
            {
                labels[i] = (byte)random.Next(4);
            }
            return Dataset.FromBytes("tiny", pixels, labels, 8, 8, 4, Normalization.FashionMnist);
        }
        return (Make(trainCount, 1), Make(testCount, 2));
    }

    /// <summary>An upload encoded under <paramref name="wider"/>, checked to be well-formed there.</summary>
    private WireUpload WiderUpload(UplinkModel uplink, Model global, UplinkSettings wider)
    {
        using var encoder = new DeviceUplinkEncoder(Device, uplink, wider);
        var wire = encoder.Encode(7, 10, global.Store.Values, global.Store.Values);
        WireValidator.Validate(uplink.Layout, wire, wider);
        return wire;
    }

    private static List<WireLayer> Replace(List<WireLayer> layers, int index, WireLayer layer)
    {
        var copy = layers.ToList();
        copy[index] = layer;
        return copy;
    }

    private static T[] Set<T>(T[] array, int index, T value)
    {
        var copy = (T[])array.Clone();
        copy[index] = value;
        return copy;
    }

    private static int[] Swap(int[] array, int i, int j)
    {
        var copy = (int[])array.Clone();
        (copy[i], copy[j]) = (copy[j] + 5, copy[i]);
        return copy;
    }
}
