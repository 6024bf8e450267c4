using ZeroFL.Federation.Uplink;

namespace ZeroFL.Tests.Federation;

public sealed class UplinkEncodeTests
{
    // A sparse conv weight [2, 1, 1, 5] (2 x 5 as CSR) and a dense bias [2].
    private static readonly ModelLayout Layout = new([new LayerSpec("conv.weight", [2, 1, 1, 5], sparse: true), new LayerSpec("conv.bias", [2], sparse: false)]);

    //                                          0     1     2    3     4     5    6     7     8     9
    private static readonly float[] TrainedConv = [0.5f, -0.9f, 0.1f, 0.9f, -0.2f, 0.3f, 0f, -0.3f, 0.7f, 0.05f];
    private static readonly float[] GlobalConv = [0.4f, -0.9f, 0.3f, 0.5f, -0.2f, 0f, 0f, 0.3f, 0.7f, -0.5f];
    private static readonly float[][] Trained = [TrainedConv, [1f, 2f]];
    private static readonly float[][] Global = [GlobalConv, [0.5f, 0.5f]];

    private static float[] Difference(float[] a, float[] b) => a.Select((x, i) => x - b[i]).ToArray();

    private static ClientUpload Encode(UplinkStrategy strategy, double sparsity, double maskRatio) =>
        UplinkReference.Encode(Layout, new UplinkSettings(strategy, sparsity, maskRatio), Trained, Global, exampleCount: 7);

    [TestCase("dense", UplinkStrategy.Dense)]
    [TestCase("swat", UplinkStrategy.Swat)]
    [TestCase("topk-weights", UplinkStrategy.TopKWeights)]
    [TestCase("diff-on-topk", UplinkStrategy.DiffOnTopKWeights)]
    [TestCase("topk-diff", UplinkStrategy.TopKWeightsDiff)]
    public void StrategyNamesRoundTrip(string name, UplinkStrategy strategy)
    {
        Assert.That(UplinkStrategies.Parse(name), Is.EqualTo(strategy));
        Assert.That(UplinkStrategies.Parse(name.ToUpperInvariant()), Is.EqualTo(strategy));
        Assert.That(strategy.Name(), Is.EqualTo(name));
    }

    [Test]
    public void UnknownStrategyNameGivesOneLineListingTheNames()
    {
        var e = Assert.Throws<ArgumentException>(() => UplinkStrategies.Parse("topk"))!;
        Assert.That(e.Message, Is.EqualTo("unknown uplink strategy 'topk' (expected one of: dense, swat, topk-weights, diff-on-topk, topk-diff)"));
        Assert.That(UplinkStrategies.TryParse(null, out _), Is.False);
        Assert.That(UplinkStrategies.Names, Has.Count.EqualTo(Enum.GetValues<UplinkStrategy>().Length));
    }

    [TestCase(0.9, 0.0, 1)]
    [TestCase(0.8, 0.0, 2)]
    [TestCase(0.9, 0.1, 2)]
    [TestCase(0.7, 0.0, 3)] // 1 - 0.7 is 0.30000000000000004 in doubles: a float ceil gives 4
    [TestCase(0.75, 0.0, 3)] // ceil(2.5)
    [TestCase(0.95, 0.2, 3)] // 0.25000000000000006 in doubles
    [TestCase(0.9, 0.9, 10)] // r_mask = sp: everything
    [TestCase(0.5, 0.9, 10)] // clamped to 1
    [TestCase(1.0, 0.0, 0)]
    public void KeepCountIsExactCeiling(double sparsity, double maskRatio, int expected)
    {
        Assert.That(new UplinkSettings(UplinkStrategy.TopKWeights, sparsity, maskRatio).KeepCount(10), Is.EqualTo(expected));
    }

    [Test]
    public void KeepCountHasNoFloatRoundingOnLargeLayers()
    {
        var settings = new UplinkSettings(UplinkStrategy.TopKWeights, 0.95, 0.2);
        Assert.That(settings.KeepFraction, Is.EqualTo(0.25m));
        Assert.That(settings.KeepCount(2_359_296), Is.EqualTo(589_824), "a quarter of 512 x 512 x 3 x 3");
        Assert.That(new UplinkSettings(UplinkStrategy.Dense, 0.9, 0).KeepFraction, Is.EqualTo(1m), "dense uploads ignore sp");
        Assert.That(UplinkSettings.KeepFractionOf(ExactFraction(0.9f), ExactFraction(0.1f)), Is.EqualTo(0.2m));
    }

    /// <summary>
    /// At r_mask 0 the upload keeps the forward's own top-K: the uplink's K (from the CLI's double)
    /// and SWAT's K (from the same sparsity as a float) agree on every sparse layer of the paper's
    /// models, including the lengths where (1 - sp) n is whole (FEMNIST conv1: 800 keeps 80).
    /// </summary>
    [TestCase(0.9)]
    [TestCase(0.95)]
    [TestCase(0.8)]
    public void AtMaskRatioZeroTheUploadKeepsTheForwardsK(double sparsity)
    {
        int[] lengths = [800, 51_200, 6_422_528, 36_864, 73_728, 147_456, 294_912, 589_824, 1_179_648, 2_359_296, 2_097_152];
        var uplink = new UplinkSettings(UplinkStrategy.TopKWeights, sparsity, 0);
        var swat = new ZeroFL.Engine.Sparsity.SparsitySettings((float)sparsity);
        foreach (int n in lengths)
        {
            Assert.That(swat.KeepCount(n), Is.EqualTo(uplink.KeepCount(n)), $"sparsity {sparsity}, layer of {n}");
        }
        Assert.That(new ZeroFL.Engine.Sparsity.SparsitySettings(0.9f).KeepCount(800), Is.EqualTo(80));
    }

    private static decimal ExactFraction(float value) => ZeroFL.Federation.ExactFraction.ToDecimal(value);

    [Test]
    public void SettingsRejectOutOfRangeValues()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new UplinkSettings(UplinkStrategy.TopKWeights, 1.1, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new UplinkSettings(UplinkStrategy.TopKWeights, 0.9, -0.1));
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new UplinkSettings(UplinkStrategy.TopKWeights, double.NaN, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new UplinkSettings((UplinkStrategy)42));
    }

    [Test]
    public void TopKWeightsSendsTheLargestTrainedWeightsLowerIndexFirstOnTies()
    {
        // |w_E|: 0.9 at 1 and 3 (tie), 0.7 at 8, 0.5 at 0, 0.3 at 5 and 7 (tie), ...
        var upload = Encode(UplinkStrategy.TopKWeights, 0.9, 0.0);
        Assert.That(upload.Layers[0].Positions.ToArray(), Is.EqualTo(new[] { 1 }), "K = 1: the tie at 1 and 3 goes to 1");
        Assert.That(upload.Layers[0].Values.ToArray(), Is.EqualTo(new[] { -0.9f }));

        upload = Encode(UplinkStrategy.TopKWeights, 0.7, 0.0);
        Assert.That(upload.Layers[0].Positions.ToArray(), Is.EqualTo(new[] { 1, 3, 8 }));
        Assert.That(upload.Layers[0].Values.ToArray(), Is.EqualTo(new[] { -0.9f, 0.9f, 0.7f }));

        upload = Encode(UplinkStrategy.TopKWeights, 0.6, 0.1);
        Assert.That(upload.Layers[0].Positions.ToArray(), Is.EqualTo(new[] { 0, 1, 3, 5, 8 }), "K = 5: the tie at 5 and 7 goes to 5");
        Assert.That(upload.Layers[0].ToDense(), Is.EqualTo(new[] { 0.5f, -0.9f, 0, 0.9f, 0, 0.3f, 0, 0, 0.7f, 0 }));

        Assert.That(upload.Layers[1].IsWhole, Is.True, "dense layers are sent whole");
        Assert.That(upload.Layers[1].Values.ToArray(), Is.EqualTo(new[] { 1f, 2f }), "as weights");
        Assert.That(upload.ExampleCount, Is.EqualTo(7));
        Assert.That(upload.Strategy, Is.EqualTo(UplinkStrategy.TopKWeights));
    }

    [Test]
    public void DiffOnTopKWeightsSendsDifferencesAtTheTopWeightPositions()
    {
        var d = Difference(TrainedConv, GlobalConv);
        var upload = Encode(UplinkStrategy.DiffOnTopKWeights, 0.8, 0.0);
        Assert.That(upload.Layers[0].Positions.ToArray(), Is.EqualTo(new[] { 1, 3 }), "chosen by |w_E|");
        Assert.That(upload.Layers[0].Values.ToArray(), Is.EqualTo(new[] { d[1], d[3] }));
        Assert.That(d[1], Is.Zero, "a sent difference may be zero");
        Assert.That(upload.Layers[1].Values.ToArray(), Is.EqualTo(new[] { 0.5f, 1.5f }), "dense layers send the whole difference");
    }

    [Test]
    public void TopKWeightsDiffSendsTheLargestDifferences()
    {
        // d = w_E - w_t: -0.6 at 7, 0.55 at 9, 0.4 at 3, 0.3 at 5, -0.2 at 2, 0.1 at 0, zero elsewhere.
        var d = Difference(TrainedConv, GlobalConv);
        var upload = Encode(UplinkStrategy.TopKWeightsDiff, 0.8, 0.0);
        Assert.That(upload.Layers[0].Positions.ToArray(), Is.EqualTo(new[] { 7, 9 }));
        Assert.That(upload.Layers[0].Values.ToArray(), Is.EqualTo(new[] { d[7], d[9] }));
        upload = Encode(UplinkStrategy.TopKWeightsDiff, 0.8, 0.2);
        Assert.That(upload.Layers[0].Positions.ToArray(), Is.EqualTo(new[] { 3, 5, 7, 9 }));
        Assert.That(upload.Layers[1].Values.ToArray(), Is.EqualTo(new[] { 0.5f, 1.5f }));
    }

    [Test]
    public void DifferenceTiesGoToTheLowerIndex()
    {
        var layout = new ModelLayout([new LayerSpec("w", [6], sparse: true)]);
        float[][] trained = [[1f, 3f, 2f, -1f, 5f, 4f]];
        float[][] global = [[0f, 1f, 0f, 1f, 3f, 4f]]; // d = 1, 2, 2, -2, 2, 0
        var upload = UplinkReference.Encode(layout, new UplinkSettings(UplinkStrategy.TopKWeightsDiff, 0.5, 0), trained, global, 1);
        Assert.That(upload.Layers[0].Positions.ToArray(), Is.EqualTo(new[] { 1, 2, 3 }));
        Assert.That(upload.Layers[0].Values.ToArray(), Is.EqualTo(new[] { 2f, 2f, -2f }));
    }

    [Test]
    public void NegativeZeroTiesWithZero()
    {
        Assert.That(MagnitudeTopK.Indices([-0f, 0f, -0f], 2), Is.EqualTo(new[] { 0, 1 }));
        Assert.That(MagnitudeTopK.Indices([1f, float.NaN, float.PositiveInfinity], 1), Is.EqualTo(new[] { 1 }), "NaN ranks above infinity, as on the device");
        Assert.That(MagnitudeTopK.Indices([1f, 2f], 0), Is.Empty);
    }

    [TestCase(UplinkStrategy.TopKWeights)]
    [TestCase(UplinkStrategy.DiffOnTopKWeights)]
    [TestCase(UplinkStrategy.TopKWeightsDiff)]
    public void MaskRatioEqualToSparsityIsTheDenseUpload(UplinkStrategy strategy)
    {
        var upload = Encode(strategy, 0.9, 0.9);
        Assert.That(upload.Layers.Select(l => l.IsWhole), Is.All.True);
        bool differences = strategy.SendsDifferences();
        Assert.That(upload.Layers[0].Values.ToArray(), Is.EqualTo(differences ? Difference(TrainedConv, GlobalConv) : TrainedConv));
        Assert.That(upload.Bytes, Is.EqualTo(UplinkBytes.DenseModel(Layout)).And.EqualTo(48));
    }

    [TestCase(UplinkStrategy.Dense)]
    [TestCase(UplinkStrategy.Swat)]
    public void DenseAndSwatSendEverythingWhateverTheSparsity(UplinkStrategy strategy)
    {
        var upload = UplinkReference.Encode(Layout, new UplinkSettings(strategy, 0.95, 0), Trained, null, 3);
        Assert.That(upload.Layers.Select(l => l.IsWhole), Is.All.True);
        Assert.That(upload.Layers[0].Values.ToArray(), Is.EqualTo(TrainedConv));
        Assert.That(upload.Layers[1].Values.ToArray(), Is.EqualTo(new[] { 1f, 2f }));
    }

    [Test]
    public void EncodeChecksItsInputs()
    {
        var settings = new UplinkSettings(UplinkStrategy.TopKWeightsDiff, 0.9, 0);
        Assert.Throws<ArgumentNullException>(() => UplinkReference.Encode(Layout, settings, Trained, null, 1));
        Assert.Throws<ArgumentException>(() => UplinkReference.Encode(Layout, settings, [TrainedConv], Global, 1));
        Assert.Throws<ArgumentException>(() => UplinkReference.Encode(Layout, settings, [TrainedConv, [1f]], Global, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => UplinkReference.Encode(Layout, settings, Trained, Global, -1));
    }

    [Test]
    public void SliceAndCsrAgreeOnPositions()
    {
        var upload = Encode(UplinkStrategy.TopKWeights, 0.6, 0.1); // positions 0, 1, 3, 5, 8 of a 2 x 5 view
        var csr = upload.Layers[0].ToCsr();
        Assert.That(csr.Rows, Is.EqualTo(2));
        Assert.That(csr.Columns, Is.EqualTo(5));
        Assert.That(csr.RowPointers, Is.EqualTo(new[] { 0, 3, 5 }));
        Assert.That(csr.ColumnIndices, Is.EqualTo(new[] { 0, 1, 3, 0, 3 }));
        Assert.That(csr.Values, Is.EqualTo(new[] { 0.5f, -0.9f, 0.9f, 0.3f, 0.7f }));
        Assert.That(csr.ToDense(), Is.EqualTo(upload.Layers[0].ToDense()));
        Assert.That(csr.Bytes, Is.EqualTo(5 * 4 + 5 * 4 + 3 * 4));
        Assert.That(upload.Layers[0].Bytes, Is.EqualTo(csr.Bytes));
    }

    [Test]
    public void SlicesValidatePositions()
    {
        var layer = new LayerSpec("w", [4], sparse: true);
        Assert.Throws<ArgumentException>(() => LayerUpload.Slice(layer, [2, 1], [1f, 2f]));
        Assert.Throws<ArgumentException>(() => LayerUpload.Slice(layer, [4], [1f]));
        Assert.Throws<ArgumentException>(() => LayerUpload.Slice(layer, [1], [1f, 2f]));
        Assert.That(LayerUpload.Slice(layer, [0, 1, 2, 3], [1f, 2f, 3f, 4f]).IsWhole, Is.True, "a slice of everything is the whole layer");
    }
}
