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

    private static IEnumerable<TestCaseData> StrategiesAndModes() =>
        AllStrategies.SelectMany(s => new[]
        {
            (UplinkEncodingMode.Auto, UploadValues.Fp32), (UplinkEncodingMode.Csr32, UploadValues.Fp32),
            (UplinkEncodingMode.Auto, UploadValues.Fp16), (UplinkEncodingMode.Auto, UploadValues.Bf16), (UplinkEncodingMode.Csr32, UploadValues.Fp16),
        }.Select(m => new TestCaseData(s, m.Item1, m.Item2)));

    [TestCaseSource(nameof(StrategiesAndModes))]
    public void EachStrategysUploadAndAggregateEqualTheHostReference(UplinkStrategy strategy, UplinkEncodingMode mode, UploadValues width)
    {
        using var global = NewModel(1);
        var uplink = new UplinkModel(global.Store, SwatRules.SparseWeights(global).ToList());
        var settings = new UplinkSettings(strategy, strategy == UplinkStrategy.Dense ? 0 : 0.9, strategy.SparsifiesUpload() ? 0.1 : 0) { Encoding = mode, Values = width };
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
                var expectedWidth = spec.Sparse && strategy.SparsifiesUpload() ? width : UploadValues.Fp32;
                Assert.That(wire.Layers[l].ValueFormat, Is.EqualTo(expectedWidth), $"{spec.Name}: value width");
                if (expectedWidth != UploadValues.Fp32)
                {
                    Assert.That(device.Layers[l].Values.ToArray(), Is.EqualTo(reference.Layers[l].Values.ToArray()), $"{spec.Name}: rounded like the reference, bit for bit");
                }
            }
            Assert.That(wire.Bytes, Is.EqualTo(UplinkBytes.ExpectedOnWire(uplink.Layout, settings)), "bytes as sent, headers included");
            if (mode == UplinkEncodingMode.Csr32 && width == UploadValues.Fp32)
            {
                Assert.That(wire.PayloadBytes, Is.EqualTo(reference.Bytes), "csr32: the paper's CSR bytes");
                Assert.That(wire.Layers.Where(l => l.IsSparse).Select(l => l.Encoding), Is.All.EqualTo(LayerEncoding.Csr32));
            }
            else if (strategy.SparsifiesUpload() && mode == UplinkEncodingMode.Auto)
            {
                Assert.That(wire.Layers.Where((_, l) => uplink.Layout.Layers[l].Sparse).Select(l => l.Encoding), Is.All.EqualTo(LayerEncoding.Bitmap),
                    "at 20% kept a bitmap (1 bit per entry) beats 16-bit columns (2 B per kept entry)");
                Assert.That(wire.Bytes, Is.LessThan(reference.Bytes));
            }
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
        Assert.That(reference.Bytes, Is.EqualTo(UplinkBytes.Expected(uplink.Layout, settings)));
        Assert.That(wire.Bytes, Is.EqualTo(UplinkBytes.ExpectedOnWire(uplink.Layout, settings)), "every client sends the bytes of K entries per sparse layer");
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
        var settings = new UplinkSettings(UplinkStrategy.TopKWeights, 0.9, 0.1) { Encoding = UplinkEncodingMode.Csr32 };
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

    /// <summary>Settings under which the device sends both sparse layers of the test model in each layout, with each value width.</summary>
    private static IEnumerable<TestCaseData> Layouts()
    {
        foreach (var width in Enum.GetValues<UploadValues>())
        {
            string suffix = width == UploadValues.Fp32 ? string.Empty : $"+{width.Name()}";
            yield return new TestCaseData(LayerEncoding.Csr32, new UplinkSettings(UplinkStrategy.TopKWeights, 0.9, 0.1) { Encoding = UplinkEncodingMode.Csr32, Values = width }).SetArgDisplayNames($"csr32{suffix}");
            yield return new TestCaseData(LayerEncoding.Csr16, new UplinkSettings(UplinkStrategy.TopKWeights, 0.95, 0) { Values = width }).SetArgDisplayNames($"csr16{suffix} (5% kept)");
            yield return new TestCaseData(LayerEncoding.Bitmap, new UplinkSettings(UplinkStrategy.TopKWeights, 0.9, 0.1) { Values = width }).SetArgDisplayNames($"bitmap{suffix} (20% kept)");
            yield return new TestCaseData(LayerEncoding.Dense, new UplinkSettings(UplinkStrategy.TopKWeights, 0.1, 0.08) { Values = width }).SetArgDisplayNames($"dense{suffix} (98% kept)");
        }
    }

    /// <summary>
    /// Each layout carries the reference's positions and values, costs what <see cref="UplinkBytes.Encoded"/>
    /// says, and aggregates to exactly (bit for bit) what the same selection sent as CSR32 gives.
    /// </summary>
    [TestCaseSource(nameof(Layouts))]
    public void EachLayoutSendsTheSameEntriesAndAggregatesBitForBitLikeCsr32(LayerEncoding layout, UplinkSettings settings)
    {
        using var global = NewModel(1);
        var uplink = new UplinkModel(global.Store, SwatRules.SparseWeights(global).ToList());
        var globalHost = global.Store.Download();
        var trained = globalHost.Select((v, i) => i % 7 == 0 ? 0f : v + 0.01f * MathF.Sin(i)).ToArray();
        float[] Aggregate(UplinkSettings chosen, Action<WireUpload> check)
        {
            using var encoder = new DeviceUplinkEncoder(Device, uplink, chosen);
            using var aggregator = new DeviceAggregator(Device, uplink);
            var globalView = Upload(globalHost);
            aggregator.Begin();
            for (int c = 0; c < 2; c++)
            {
                var wire = encoder.Encode(c, 10 + c, Upload(c == 0 ? trained : trained.Select(v => -v).ToArray()), globalView);
                WireValidator.Validate(uplink.Layout, wire, settings);
                check(wire);
                aggregator.Add(wire);
            }
            aggregator.Finish(globalView, chosen.Strategy);
            return Download(globalView);
        }
        var asLaidOut = Aggregate(settings, wire =>
        {
            var reference = UplinkReference.Encode(uplink.Layout, settings, Layers(uplink, trained.Select(v => wire.ClientId == 0 ? v : -v).ToArray()), Layers(uplink, globalHost), 10);
            var decoded = WireValidator.ToClientUpload(uplink.Layout, wire, settings);
            for (int l = 0; l < uplink.Layout.Layers.Count; l++)
            {
                var spec = uplink.Layout.Layers[l];
                if (!spec.Sparse)
                {
                    Assert.That(wire.Layers[l].Encoding, Is.EqualTo(LayerEncoding.Dense));
                    continue;
                }
                Assert.That(wire.Layers[l].Encoding, Is.EqualTo(layout), spec.Name);
                Assert.That(wire.Layers[l].ValueFormat, Is.EqualTo(settings.Values), spec.Name);
                Assert.That(wire.Layers[l].Bytes, Is.EqualTo(UplinkBytes.Encoded(layout, spec, settings.KeepCount(spec.Length), settings.Values)), spec.Name);
                Assert.That(decoded.Layers[l].ToDense(), Is.EqualTo(reference.Layers[l].ToDense()), $"{spec.Name}: the same entries");
            }
        });
        var asCsr32 = Aggregate(settings with { Encoding = UplinkEncodingMode.Csr32 }, _ => { });
        Assert.That(asLaidOut, Is.EqualTo(asCsr32), "lossless: the same model bit for bit");
    }

    /// <summary>
    /// At least 1,000 random corruptions of a layer in each layout and value width (plus some of
    /// any layer): each upload is rejected with a one-line reason or, when still well-formed,
    /// aggregated on the device; none crashes the validator or the aggregation.
    /// </summary>
    [TestCaseSource(nameof(Layouts))]
    public void ThousandsOfRandomlyCorruptedUploadsNeverGetPastTheValidatorOrCrashIt(LayerEncoding layout, UplinkSettings settings)
    {
        using var global = NewModel(1);
        var uplink = new UplinkModel(global.Store, SwatRules.SparseWeights(global).ToList());
        using var encoder = new DeviceUplinkEncoder(Device, uplink, settings);
        using var aggregator = new DeviceAggregator(Device, uplink);
        var wire = encoder.Encode(3, 10, global.Store.Values, global.Store.Values);
        WireValidator.Validate(uplink.Layout, wire, settings);
        var target = Enumerable.Range(0, wire.Layers.Count).Where(l => uplink.Layout.Layers[l].Sparse && wire.Layers[l].Encoding == layout).ToArray();
        Assert.That(target, Is.Not.Empty);
        var random = new Random(21 + (int)layout + 10 * (int)settings.Values);
        int rejected = 0, accepted = 0, onLayout = 0;
        aggregator.Begin();
        for (int trial = 0; trial < 1300; trial++)
        {
            var layers = wire.Layers.ToList();
            int l = trial < 1000 ? target[random.Next(target.Length)] : random.Next(layers.Count);
            onLayout += layers[l].Encoding == layout ? 1 : 0;
            layers[l] = Corrupt(layers[l], random);
            var bad = wire with { Layers = layers, ExampleCount = random.Next(20) == 0 ? -random.Next(5) : wire.ExampleCount };
            try
            {
                WireValidator.Validate(uplink.Layout, bad, settings);
                aggregator.Add(bad); // what passes is well-formed and goes through the device aggregation
                accepted++;
            }
            catch (MalformedUploadException e)
            {
                Assert.That(e.Message, Is.Not.Empty.And.Not.Contain("\n"));
                rejected++;
            }
        }
        aggregator.Finish(Upload(global.Store.Download()), UplinkStrategy.TopKWeights);
        string name = $"{layout.Name()} with {settings.Values.Name()} values";
        TestContext.Out.WriteLine($"{name}: {onLayout} corruptions of a {layout.Name()} layer; {rejected} rejected, {accepted} still well-formed and aggregated");
        Assert.That(onLayout, Is.GreaterThanOrEqualTo(1000));
        Assert.That(rejected, Is.GreaterThan(700), $"{accepted} corruptions happened to leave a valid upload (a finite value changed, an index set to a valid one)");
    }

    /// <summary>One random edit of a layer: its values, its tags (layout, value width), or one of its index or value arrays (changed, cut, dropped or added).</summary>
    private static WireLayer Corrupt(WireLayer layer, Random random)
    {
        if (random.Next(4) == 0)
        {
            return CorruptValues(layer, random);
        }
        int Pick(int length) => length == 0 ? 0 : random.Next(length);
        int Noise() => random.Next(5) switch { 0 => -1, 1 => int.MaxValue, 2 => int.MinValue, 3 => random.Next(), _ => random.Next(-100, 100_000) };
        int[] Edit(int[] array) => array.Length == 0 ? [Noise()] : random.Next(3) switch
        {
            0 => Set(array, Pick(array.Length), Noise()),
            1 => Set(array, Pick(array.Length), array[Pick(array.Length)] ^ 1 << random.Next(32)),
            _ => array[..Pick(array.Length)],
        };
        return random.Next(9) switch
        {
            0 => layer with { Values = layer.Values.Length == 0 ? [float.NaN] : Set(layer.Values, Pick(layer.Values.Length), random.Next(3) switch { 0 => float.NaN, 1 => float.PositiveInfinity, _ => (float)random.NextDouble() }) },
            1 => layer with { Values = layer.Values[..Pick(layer.Values.Length)] },
            2 => layer with { Values = [.. layer.Values, 1f] },
            3 => layer with { Encoding = (LayerEncoding)random.Next(-1, 6) },
            4 => layer with { RowPointers = layer.RowPointers is { } rows ? Edit(rows) : [0, 0] },
            5 => layer.Encoding switch
            {
                LayerEncoding.Csr32 => layer with { Columns = Edit(layer.Columns!) },
                LayerEncoding.Csr16 => layer with { Columns16 = Edit(layer.Columns16!) },
                LayerEncoding.Bitmap => layer with { Bitmap = Edit(layer.Bitmap!) },
                _ => layer.Values16 is { Length: > 0 } bits
                    ? layer with { Values16 = Set(bits, Pick(bits.Length), (ushort)0x3800) } // 0.5 in fp16, 0.5 + a little in bf16
                    : layer with { Values = layer.Values.Length == 0 ? [0.5f] : Set(layer.Values, Pick(layer.Values.Length), 0.5f) },
            },
            6 => layer with { Columns = null, Columns16 = null, Bitmap = null },
            7 => layer with { Bitmap = layer.Bitmap ?? new int[Pick(4096)] },
            _ => layer with { Columns16 = layer.Columns16 ?? (layer.Columns is { } c ? c[..((c.Length + 1) / 2)] : [0]) },
        };
    }

    /// <summary>An edit of the value arrays and the width tag (16-bit patterns: any, infinities, NaNs; arrays cut, grown, swapped, doubled).</summary>
    private static WireLayer CorruptValues(WireLayer layer, Random random)
    {
        ushort Pattern() => random.Next(4) switch { 0 => (ushort)0x7C00, 1 => (ushort)0x7FC0, 2 => (ushort)0xFE01, _ => (ushort)random.Next(1 << 16) };
        ushort[] bits = layer.Values16 ?? [];
        return random.Next(6) switch
        {
            0 => layer with { Values16 = bits.Length == 0 ? [Pattern()] : Set(bits, random.Next(bits.Length), Pattern()) },
            1 => layer with { Values16 = bits[..random.Next(bits.Length + 1)] },
            2 => layer with { Values16 = [.. bits, Pattern()] },
            3 => layer with { ValueFormat = (UploadValues)random.Next(-1, 5) },
            4 => layer.ValueFormat == UploadValues.Fp32
                ? layer with { Values16 = layer.Values.Select(v => (ushort)BitConverter.HalfToUInt16Bits((System.Half)v)).ToArray(), ValueFormat = UploadValues.Fp16 }
                : layer with { Values = bits.Select(h => (float)BitConverter.UInt16BitsToHalf(h)).ToArray(), Values16 = random.Next(2) == 0 ? null : bits },
            _ => layer with { Values16 = null, Values = bits.Length > 0 ? new float[bits.Length] : layer.Values },
        };
    }

    /// <summary>
    /// A top-K value beyond fp16's range (|x| of 65520 or more) becomes an fp16 infinity: the
    /// client's upload then holds a non-finite value (reported as a non-finite update) and the
    /// server rejects it, never a clamped or wrapped value. 65504, the largest fp16, goes through;
    /// bf16 (fp32's range) carries the large value rounded.
    /// </summary>
    [Test]
    public void ValuesBeyondTheFp16RangeAreNonFiniteNeverClamped()
    {
        using var global = NewModel(1);
        var uplink = new UplinkModel(global.Store, SwatRules.SparseWeights(global).ToList());
        int sparse = Enumerable.Range(0, uplink.Layout.Layers.Count).First(l => uplink.Layout.Layers[l].Sparse);
        var values = global.Store.Download();
        long at = uplink.Parameters[sparse].Offset;
        values[at] = 65504f;
        values[at + 1] = -65519f;
        var big = (float[])values.Clone();
        big[at + 2] = 1e5f;
        WireUpload EncodeWith(UploadValues width, float[] trained)
        {
            var settings = new UplinkSettings(UplinkStrategy.TopKWeights, 0.9, 0.1) { Values = width };
            using var encoder = new DeviceUplinkEncoder(Device, uplink, settings);
            return encoder.Encode(0, 10, Upload(trained), Upload(trained));
        }
        var fits = EncodeWith(UploadValues.Fp16, values);
        Assert.That(fits.Layers.Any(l => l.HasNonFiniteValue()), Is.False);
        var sent = WireValidator.ToClientUpload(uplink.Layout, fits, new UplinkSettings(UplinkStrategy.TopKWeights, 0.9, 0.1) { Values = UploadValues.Fp16 });
        Assert.That(sent.Layers[sparse].Values.ToArray(), Does.Contain(65504f).And.Contain(-65504f), "65504 exact, -65519 rounds to -65504");

        var overflow = EncodeWith(UploadValues.Fp16, big);
        Assert.That(overflow.Layers[sparse].HasNonFiniteValue(), Is.True);
        Assert.That(overflow.Layers[sparse].Values16, Does.Contain((ushort)0x7C00), "1e5 is fp16 infinity");
        var error = Assert.Throws<MalformedUploadException>(() => WireValidator.Validate(uplink.Layout, overflow, new UplinkSettings(UplinkStrategy.TopKWeights, 0.9, 0.1) { Values = UploadValues.Fp16 }));
        Assert.That(error!.Message, Does.Contain("(0x7C00 in fp16) is not finite"));

        var bf16 = EncodeWith(UploadValues.Bf16, big);
        var decoded = WireValidator.ToClientUpload(uplink.Layout, bf16, new UplinkSettings(UplinkStrategy.TopKWeights, 0.9, 0.1) { Values = UploadValues.Bf16 });
        Assert.That(decoded.Layers[sparse].Values.ToArray(), Does.Contain(99840f), "1e5 in bf16 (8 significant bits)");
    }

    /// <summary>A client whose update holds a value fp16 cannot carry is recorded as a non-finite update, not sent.</summary>
    [Test]
    public void AClientWhoseValuesOverflowFp16IsANonFiniteUpdate()
    {
        var (train, test) = TinyData(60, 10);
        var options = Options(2, clientsPerRound: 1) with { Uplink = new UplinkSettings(UplinkStrategy.TopKWeights, 0.9, 0.1) { Values = UploadValues.Fp16 } };
        using var global = NewModel(1);
        var uplink = new UplinkModel(global.Store, SwatRules.SparseWeights(global, options.Sparsity.Layers).ToList());
        int sparse = Enumerable.Range(0, uplink.Layout.Layers.Count).First(l => uplink.Layout.Layers[l].Sparse);
        var values = global.Store.Download();
        values[uplink.Parameters[sparse].Offset] = 7e4f;
        var shard = IidPartitioner.Create(train, 2, new PartitionOptions(1)).Clients[0];
        using var workspace = new ZeroFL.Engine.Memory.Workspace(Device);
        using var data = new ZeroFL.Engine.Training.DeviceDataset(Device, train.Features, train.Labels, [1, 8, 8], 4);
        using var runner = new ClientRunner(Device, options, [1, 8, 8], 4, uplink, workspace);
        var result = runner.Fit(shard, data, Upload(values), learningRate: 0f, round: 1);
        Assert.That(result.Upload, Is.Null);
        Assert.That(result.Failure!.Kind, Is.EqualTo(FailureKind.NonFiniteUpdate));
        Assert.That(result.Failure.Detail, Does.StartWith("non-finite update: layer ").And.Contain("not finite in fp16"));

        using var fp32 = new ClientRunner(Device, options with { Uplink = options.Uplink with { Values = UploadValues.Fp32 } }, [1, 8, 8], 4, uplink, workspace);
        Assert.That(fp32.Fit(shard, data, Upload(values), learningRate: 0f, round: 1).Upload, Is.Not.Null, "fp32 carries 7e4");
    }

    [Test]
    public void InjectedFaultsAreRecordedByReasonAndLeftOutOfTheRound()
    {
        var (train, test) = TinyData(300, 40);
        var options = Options(12, clientsPerRound: 6) with { Rounds = 4, LearningRate = new ExponentialDecay(0.05, 0.01, 4), Faults = new FaultInjection(0.3, 0.3) };
        var partition = IidPartitioner.Create(train, 12, new PartitionOptions(3));
        using var server = new FederatedServer(Device, options, train, test, partition);
        var kinds = new List<FailureKind>();
        for (int round = 1; round <= 4; round++)
        {
            var m = server.RunRound(round);
            kinds.AddRange(m.Failures.Select(f => f.Kind));
            Assert.That(m.Failures.Count, Is.LessThan(m.Clients), "at least one client made it");
        }
        Assert.That(kinds, Does.Contain(FailureKind.TrainingFailed));
        Assert.That(kinds, Does.Contain(FailureKind.MalformedUpload));
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
