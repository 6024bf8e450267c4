using ZeroFL.Federation.Uplink;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Federation;

public sealed class FedAvgTests
{
    // A sparse layer of 4 entries (one row) and a dense bias of 2.
    private static readonly LayerSpec Sparse = new("w", [4], sparse: true);
    private static readonly LayerSpec Bias = new("b", [2], sparse: false);
    private static readonly ModelLayout Layout = new([Sparse, Bias]);
    private static readonly float[][] Global = [[10f, 20f, 30f, 40f], [1f, 2f]];

    private static ClientUpload Client(UplinkStrategy strategy, long examples, int[] positions, float[] values, float[] bias) =>
        new(strategy, examples, [LayerUpload.Slice(Sparse, positions, values), LayerUpload.Whole(Bias, bias)]);

    [Test]
    public void TopKWeightsAveragesWithUnsentEntriesAsZero()
    {
        // n_1 = 30, n_2 = 10: weights 3/4 and 1/4.
        var result = FedAvg.Aggregate(Layout, Global,
        [
            Client(UplinkStrategy.TopKWeights, 30, [0, 2], [1f, 2f], [4f, 8f]),
            Client(UplinkStrategy.TopKWeights, 10, [2, 3], [4f, 8f], [0f, 4f]),
        ]);
        Assert.That(result.Weights[0], Is.EqualTo(new[] { 0.75f, 0f, 2.5f, 2f }), "entry 1 sent by nobody falls to zero; entry 3 is pulled to 1/4 of 8");
        Assert.That(result.Weights[1], Is.EqualTo(new[] { 3f, 7f }));
        Assert.That(result.TotalExamples, Is.EqualTo(40));
        Assert.That(result.MaskUnionRatio, Is.EqualTo(new[] { 0.75, 1.0 }));
        Assert.That(result.NonZeroRatio, Is.EqualTo(new[] { 0.75, 1.0 }));
        Assert.That(result.Strategy, Is.EqualTo(UplinkStrategy.TopKWeights));
    }

    [TestCase(UplinkStrategy.DiffOnTopKWeights)]
    [TestCase(UplinkStrategy.TopKWeightsDiff)]
    public void DiffStrategiesAddTheWeightedDifferencesToTheGlobalModel(UplinkStrategy strategy)
    {
        var result = FedAvg.Aggregate(Layout, Global,
        [
            Client(strategy, 30, [0, 2], [1f, 2f], [4f, 8f]),
            Client(strategy, 10, [2, 3], [4f, 8f], [0f, 4f]),
        ]);
        Assert.That(result.Weights[0], Is.EqualTo(new[] { 10.75f, 20f, 32.5f, 42f }), "entry 1 sent by nobody is unchanged");
        Assert.That(result.Weights[1], Is.EqualTo(new[] { 4f, 9f }));
        Assert.That(Global[0], Is.EqualTo(new[] { 10f, 20f, 30f, 40f }), "w_t is read only");
    }

    [Test]
    public void NonZeroRatioCountsValuesAndUnionCountsMasks()
    {
        var result = FedAvg.Aggregate(Layout, Global,
        [
            Client(UplinkStrategy.TopKWeights, 1, [0, 1], [0f, 2f], [0f, 0f]),
            Client(UplinkStrategy.TopKWeights, 1, [1, 2], [-2f, 3f], [0f, 0f]),
        ]);
        Assert.That(result.MaskUnionRatio[0], Is.EqualTo(0.75));
        Assert.That(result.NonZeroRatio[0], Is.EqualTo(0.25), "a sent zero and a cancelling pair leave one non-zero");
        Assert.That(result.NonZeroRatio[1], Is.Zero);
    }

    [Test]
    public void ClientsWithIdenticalMasksOverlapFully()
    {
        var result = FedAvg.Aggregate(Layout, Global,
        [
            Client(UplinkStrategy.TopKWeights, 5, [3], [1f], [0f, 0f]),
            Client(UplinkStrategy.TopKWeights, 5, [3], [3f], [0f, 0f]),
            Client(UplinkStrategy.TopKWeights, 10, [3], [2f], [0f, 0f]),
        ]);
        Assert.That(result.Weights[0], Is.EqualTo(new[] { 0f, 0f, 0f, 2f }));
        Assert.That(result.MaskUnionRatio[0], Is.EqualTo(0.25));
    }

    [Test]
    public void EncodedRandomClientsMatchABruteForceFedAvg()
    {
        var layout = new ModelLayout([new LayerSpec("conv", [8, 4, 3, 3], true), new LayerSpec("bn", [8], false), new LayerSpec("fc", [10, 8], true)]);
        float[][] global = layout.Layers.Select((l, i) => Numerics.Random(l.Length, 100 + i)).ToArray();
        long[] examples = [50, 120, 7, 300];
        foreach (var strategy in Enum.GetValues<UplinkStrategy>())
        {
            var settings = new UplinkSettings(strategy, 0.9, 0.1);
            var trained = examples.Select((_, k) => layout.Layers.Select((l, i) => Numerics.Random(l.Length, 1000 * k + i)).ToArray()).ToArray();
            var uploads = trained.Select((w, k) => UplinkReference.Encode(layout, settings, w, global, examples[k])).ToArray();
            var result = FedAvg.Aggregate(layout, global, uploads);
            double total = examples.Sum();
            for (int l = 0; l < layout.Layers.Count; l++)
            {
                var expected = new float[layout.Layers[l].Length];
                for (int i = 0; i < expected.Length; i++)
                {
                    double sum = strategy.SendsDifferences() ? global[l][i] : 0;
                    for (int k = 0; k < uploads.Length; k++)
                    {
                        sum += examples[k] / total * uploads[k].Layers[l].ToDense()[i];
                    }
                    expected[i] = (float)sum;
                }
                Numerics.AssertClose(expected, result.Weights[l], 1e-6f, 1e-7f, $"{strategy} layer {l}");
                int k0 = strategy.SparsifiesUpload() && layout.Layers[l].Sparse ? settings.KeepCount(layout.Layers[l].Length) : layout.Layers[l].Length;
                Assert.That(uploads.Select(u => u.Layers[l].SentCount), Is.All.EqualTo(k0));
            }
            // Distinct random clients' top-20% masks overlap little: the union is between 20% and 4 x 20%.
            double union = result.MaskUnionRatio[0];
            Assert.That(union, strategy.SparsifiesUpload() ? Is.InRange(0.2, 0.8) : Is.EqualTo(1.0), $"{strategy} mask union");
        }
    }

    [Test]
    public void DiffUploadOfADenseLayerEqualsWeightAveraging()
    {
        var layout = new ModelLayout([new LayerSpec("bn", [16], false)]);
        float[][] global = [Numerics.Random(16, 1)];
        float[][][] trained = [[Numerics.Random(16, 2)], [Numerics.Random(16, 3)], [Numerics.Random(16, 4)]];
        long[] examples = [3, 5, 8];
        AggregationResult Run(UplinkStrategy s) => FedAvg.Aggregate(layout, global,
            trained.Select((w, k) => UplinkReference.Encode(layout, new UplinkSettings(s, 0.9, 0), w, global, examples[k])).ToArray());
        var byWeights = Run(UplinkStrategy.TopKWeights).Weights[0];
        Numerics.AssertClose(byWeights, Run(UplinkStrategy.TopKWeightsDiff).Weights[0], 1e-6f, 1e-6f, "topk-diff");
        Numerics.AssertClose(byWeights, Run(UplinkStrategy.DiffOnTopKWeights).Weights[0], 1e-6f, 1e-6f, "diff-on-topk");
        Assert.That(Run(UplinkStrategy.Dense).Weights[0], Is.EqualTo(byWeights));
    }

    [Test]
    public void FullMaskRatioAggregatesLikeDense()
    {
        var layout = new ModelLayout([new LayerSpec("conv", [4, 2, 3, 3], true)]);
        float[][] global = [Numerics.Random(72, 5)];
        float[][][] trained = [[Numerics.Random(72, 6)], [Numerics.Random(72, 7)]];
        AggregationResult Run(UplinkSettings s) => FedAvg.Aggregate(layout, global,
            trained.Select((w, k) => UplinkReference.Encode(layout, s, w, global, 10 + k)).ToArray());
        var dense = Run(new UplinkSettings(UplinkStrategy.Dense)).Weights[0];
        Assert.That(Run(new UplinkSettings(UplinkStrategy.TopKWeights, 0.9, 0.9)).Weights[0], Is.EqualTo(dense));
        Numerics.AssertClose(dense, Run(new UplinkSettings(UplinkStrategy.TopKWeightsDiff, 0.8, 0.8)).Weights[0], 1e-6f, 1e-6f);
    }

    [Test]
    public void AggregateChecksItsInputs()
    {
        var upload = Client(UplinkStrategy.TopKWeights, 1, [0], [1f], [0f, 0f]);
        Assert.Throws<ArgumentException>(() => FedAvg.Aggregate(Layout, Global, []));
        Assert.Throws<ArgumentException>(() => FedAvg.Aggregate(Layout, Global, [upload, Client(UplinkStrategy.Dense, 1, [0], [1f], [0f, 0f])]));
        Assert.Throws<ArgumentException>(() => FedAvg.Aggregate(Layout, Global, [Client(UplinkStrategy.TopKWeights, 0, [0], [1f], [0f, 0f])]));
        Assert.Throws<ArgumentException>(() => FedAvg.Aggregate(Layout, [Global[0]], [upload]));
        var other = new ModelLayout([new LayerSpec("v", [4], true), Bias]);
        Assert.Throws<ArgumentException>(() => FedAvg.Aggregate(other, Global, [upload]));
    }
}
