using ZeroFL.Engine.Models;
using ZeroFL.Engine.Modules;
using ZeroFL.Federation.Uplink;

namespace ZeroFL.Tests.Federation;

public sealed class UplinkBytesTests
{
    /// <summary>ZeroFL's ResNet-18 rule: every 3x3 convolution is sparse except the stem; 1x1 shortcuts, batch-norm and fc are dense.</summary>
    private static bool ResNetSparse(Parameter p) =>
        p.Role == ParameterRole.ConvWeight && p.Shape[2] == 3 && p.FullName != "conv1.weight";

    private static ModelLayout ResNet18Layout() =>
        ModelLayout.FromParameters(new ResNet18(3, 10).CollectParameters(), ResNetSparse);

    [Test]
    public void TwoDimensionalViews()
    {
        var conv = new LayerSpec("conv", [128, 64, 3, 3], true);
        Assert.That((conv.Rows, conv.Columns, conv.Length), Is.EqualTo((128, 576, 73_728)));
        var linear = new LayerSpec("fc", [2048, 3136], true);
        Assert.That((linear.Rows, linear.Columns), Is.EqualTo((2048, 3136)));
        var bias = new LayerSpec("bias", [62], false);
        Assert.That((bias.Rows, bias.Columns), Is.EqualTo((1, 62)));
        var scalar = new LayerSpec("scale", [], false);
        Assert.That((scalar.Rows, scalar.Columns, scalar.Length), Is.EqualTo((1, 1, 1)));
        Assert.Throws<ArgumentException>(() => _ = new LayerSpec("bad", [3, 0], true));
    }

    [Test]
    public void CsrBytesFollowTheFormula()
    {
        // 4 B per value + 4 B per column index + 4 B * (rows + 1).
        Assert.That(UplinkBytes.Csr(rows: 128, nonZeros: 7373), Is.EqualTo(8 * 7373 + 4 * 129));
        Assert.That(UplinkBytes.Csr(rows: 1, nonZeros: 0), Is.EqualTo(8));
        Assert.That(UplinkBytes.Dense(73_728), Is.EqualTo(294_912));
        var conv = new LayerSpec("conv", [128, 64, 3, 3], true);
        Assert.That(UplinkBytes.Layer(conv, 7373), Is.EqualTo(8 * 7373 + 4 * 129));
        Assert.That(UplinkBytes.Layer(conv, conv.Length), Is.EqualTo(4 * 73_728), "a slice of everything goes whole");
        var fc = new LayerSpec("fc1", [2048, 3136], true);
        Assert.That(UplinkBytes.Layer(fc, 642_253), Is.EqualTo(8L * 642_253 + 4 * 2049));
    }

    [Test]
    public void DenseResNet18Is44695848Bytes()
    {
        var layout = ResNet18Layout();
        Assert.That(layout.TotalLength, Is.EqualTo(11_173_962), "trainable parameters of CIFAR ResNet-18 with 10 classes");
        Assert.That(UplinkBytes.DenseModel(layout), Is.EqualTo(44_695_848));
        Assert.That(layout.Layers.Count(l => l.Sparse), Is.EqualTo(16), "two 3x3 convolutions in each of 8 blocks");
        Assert.That(layout.SparseLength, Is.EqualTo(10_985_472));
        var withStatistics = ModelLayout.FromParameters(new ResNet18(3, 10).CollectParameters(), ResNetSparse, includeRunningStatistics: true);
        Assert.That(withStatistics.TotalLength - layout.TotalLength, Is.EqualTo(2 * 4800), "running mean and variance of 4800 batch-norm channels");
    }

    [TestCase(0.9, 0.0)]
    [TestCase(0.9, 0.1)]
    [TestCase(0.9, 0.2)]
    [TestCase(0.95, 0.0)]
    [TestCase(0.95, 0.1)]
    [TestCase(0.95, 0.2)]
    public void ResNet18UploadBytesAtZeroFlSettings(double sparsity, double maskRatio)
    {
        var layout = ResNet18Layout();
        var settings = new UplinkSettings(UplinkStrategy.TopKWeights, sparsity, maskRatio);
        decimal fraction = 1m - (decimal)sparsity + (decimal)maskRatio;
        long expected = 0;
        foreach (var layer in layout.Layers)
        {
            long k = (long)decimal.Ceiling(fraction * layer.Length);
            expected += layer.Sparse ? 8 * k + 4L * (layer.Rows + 1) : 4L * layer.Length;
        }
        long bytes = UplinkBytes.Expected(layout, settings);
        TestContext.Out.WriteLine($"ResNet-18 upload at sp={sparsity}, r_mask={maskRatio}: {bytes:N0} B = {bytes / 1e6:F2} MB ({bytes / 1048576.0:F2} MiB); dense {UplinkBytes.DenseModel(layout) / 1e6:F2} MB");
        Assert.That(bytes, Is.EqualTo(expected));
        Assert.That(UplinkBytes.Expected(layout, new UplinkSettings(UplinkStrategy.TopKWeights, sparsity, sparsity)), Is.EqualTo(44_695_848));
        Assert.That(UplinkBytes.Expected(layout, new UplinkSettings(UplinkStrategy.Swat, sparsity, 0)), Is.EqualTo(44_695_848));
    }

    [Test]
    public void FemnistCnnLayout()
    {
        var network = new FemnistCnn(1, 28, 62);
        var layout = ModelLayout.FromParameters(network.CollectParameters(),
            p => p == network.Conv1.Weight || p == network.Conv2.Weight || p == network.Fc1.Weight);
        Assert.That(layout.TotalLength, Is.EqualTo(6_603_710), "LEAF FEMNIST CNN");
        Assert.That(layout.Layers.Where(l => l.Sparse).Select(l => (l.Rows, l.Columns)), Is.EqualTo(new[] { (32, 25), (64, 800), (2048, 3136) }));
    }

    [Test]
    public void EncodedUploadBytesMatchTheExpectedBytes()
    {
        var layout = new ModelLayout([new LayerSpec("conv", [16, 8, 3, 3], true), new LayerSpec("bn", [16], false), new LayerSpec("fc", [10, 16], true), new LayerSpec("fc.bias", [10], false)]);
        var weights = layout.Layers.Select((l, i) => ZeroFL.Tests.Support.Numerics.Random(l.Length, i)).ToArray();
        foreach (var strategy in Enum.GetValues<UplinkStrategy>())
        {
            var settings = new UplinkSettings(strategy, 0.9, 0.1);
            var upload = UplinkReference.Encode(layout, settings, weights, layout.Zeros(), 1);
            Assert.That(upload.Bytes, Is.EqualTo(UplinkBytes.Expected(layout, settings)), strategy.Name());
            long csr = upload.Layers.Sum(l => l.IsWhole ? 4L * l.SentCount : l.ToCsr().Bytes);
            Assert.That(upload.Bytes, Is.EqualTo(csr), strategy.Name());
        }
        Assert.That(UplinkBytes.Expected(layout, new UplinkSettings(UplinkStrategy.TopKWeights, 0.9, 0.1)),
            Is.EqualTo(8 * 231 + 4 * 17 + 4 * 16 + 8 * 32 + 4 * 11 + 4 * 10), "ceil(0.2 * 1152) = 231, ceil(0.2 * 160) = 32");
    }
}
