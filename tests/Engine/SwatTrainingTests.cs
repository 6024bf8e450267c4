using ILGPU.Runtime;
using ZeroFL.Engine.Autograd;
using ZeroFL.Engine.Models;
using ZeroFL.Engine.Modules;
using ZeroFL.Engine.Sparsity;
using ZeroFL.Engine.Training;
using ZeroFL.Kernels;
using ZeroFL.Kernels.Reference;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Engine;

/// <summary>SWAT training steps against a plain-loop reference of the method in ZEROFL.md.</summary>
[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Specs))]
public sealed class SwatTrainingTests(string device) : DeviceTest(device)
{
    private const int Batch = 3, Size = 6, Classes = 3;

    /// <summary>conv3x3(1->4, pad 1) [sparse] - relu - linear(144->5) [sparse] - relu - linear(5->3) [dense].</summary>
    private sealed class TinyNet : Module
    {
        public TinyNet()
        {
            Conv = AddChild("conv", new Conv2d(1, 4, 3, 1, 1));
            Hidden = AddChild("hidden", new Linear(4 * Size * Size, 5));
            Output = AddChild("output", new Linear(5, Classes, classifier: true));
        }

        public Conv2d Conv { get; }

        public Linear Hidden { get; }

        public Linear Output { get; }

        public override Tensor Forward(Tape tape, Tensor input)
        {
            var x = ZeroFL.Engine.Ops.Ops.Relu(tape, Conv.Forward(tape, input));
            x = ZeroFL.Engine.Ops.Ops.Relu(tape, Hidden.Forward(tape, x));
            return Output.Forward(tape, x);
        }
    }

    [TestCase(0.5f, 1f)]
    [TestCase(0.7f, 0f)]
    [TestCase(0.9f, 1f)]
    public void OneSwatStepEqualsTheReferenceStep(float sparsity, float sparseKernelMaxDensity)
    {
        var features = Numerics.Random(Batch * Size * Size, 21);
        int[] labels = [0, 2, 1];
        var net = new TinyNet();
        using var model = new Model(Device, "tiny", net, [1, Size, Size], Classes, seed: 5);
        var settings = new SparsitySettings(sparsity, 1, SparseLayerRule.Paper, sparseKernelMaxDensity);
        net.Conv.Sparsity = new SparseLayerState(settings);
        net.Hidden.Sparsity = new SparseLayerState(settings);
        var before = model.Store.Download();
        var expected = ReferenceStep(model, net, before, features, labels, KeptPercent(sparsity), lr: 0.1f, weightDecay: 1e-3f);

        using var data = new DeviceDataset(Device, features, labels, [1, Size, Size], Classes);
        using var trainer = new Trainer(model, new Sgd(0.1f, 0f, 1e-3f));
        trainer.Step(data, [0, 1, 2]);
        var after = model.Store.Download();
        Numerics.AssertClose(expected, after, 2e-4f, 2e-5f, "parameters after one SWAT step");
        Assert.That(trainer.Flops.Sparse, Is.LessThan(trainer.Flops.Dense), "sparse layers count fewer FLOPs");
    }

    [Test]
    public void EvaluationUsesTheTopKWeights()
    {
        var features = Numerics.Random(Batch * Size * Size, 22);
        var net = new TinyNet();
        using var model = new Model(Device, "tiny", net, [1, Size, Size], Classes, seed: 6);
        var settings = new SparsitySettings(0.8f);
        net.Conv.Sparsity = new SparseLayerState(settings);
        net.Hidden.Sparsity = new SparseLayerState(settings);
        var parameters = model.Store.Download();

        var sparseLogits = EvaluationLogits(model, features);
        // The same network evaluated dense on weights masked by hand must give the same logits.
        net.Conv.Sparsity = null;
        net.Hidden.Sparsity = null;
        var masked = (float[])parameters.Clone();
        MaskInPlace(masked, net.Conv.Weight, KeptPercent(0.8f));
        MaskInPlace(masked, net.Hidden.Weight, KeptPercent(0.8f));
        model.Store.Upload(masked);
        Numerics.AssertClose(EvaluationLogits(model, features), sparseLogits, 1e-4f, 1e-5f, "evaluation logits");
        model.Store.Upload(parameters);
        var denseLogits = EvaluationLogits(model, features);
        Assert.That(denseLogits.Zip(sparseLogits, (a, b) => Math.Abs(a - b)).Max(), Is.GreaterThan(1e-3f), "masking changes the output");
    }

    [Test]
    public void TopKPeriodReusesTheSavedThresholdBetweenRefreshes()
    {
        var features = Numerics.Random(Batch * Size * Size, 23);
        var net = new TinyNet();
        using var model = new Model(Device, "tiny", net, [1, Size, Size], Classes, seed: 7);
        var state = new SparseLayerState(new SparsitySettings(0.9f, TopKPeriod: 3));
        net.Conv.Sparsity = state;
        using var data = new DeviceDataset(Device, features, [0, 1, 2], [1, Size, Size], Classes);
        using var trainer = new Trainer(model, new Sgd(0.5f, 0f, 0f));
        var thresholds = new List<uint>();
        for (int step = 0; step < 6; step++)
        {
            trainer.Step(data, [0, 1, 2]);
            // A GPU backend keeps the selection on the device: read it for the test.
            thresholds.Add(Device.Kernels.TopK.OnHost(state.WeightSelection!.Value).ThresholdBits);
        }
        Assert.That(state.Steps, Is.EqualTo(6));
        Assert.That(thresholds[1], Is.EqualTo(thresholds[0]), "step 2 reuses the threshold of step 1");
        Assert.That(thresholds[2], Is.EqualTo(thresholds[0]), "step 3 reuses the threshold of step 1");
        Assert.That(thresholds[4], Is.EqualTo(thresholds[3]), "step 5 reuses the threshold of step 4");
        Assert.That(thresholds[3], Is.Not.EqualTo(thresholds[0]), "step 4 recomputes it after large updates");
    }

    [Test]
    public void SwatRulesFollowThePaper()
    {
        using var resnet = ModelCatalog.Create(Device, "resnet18", 3, 32, 10, seed: 1);
        var sparse = SwatRules.Apply(resnet, new SparsitySettings(0.9f));
        Assert.That(sparse, Has.Count.EqualTo(16), "all 3x3 convolutions of the 8 basic blocks");
        Assert.That(sparse.Select(m => m.Path), Does.Not.Contain("conv1"), "the stem stays dense");
        Assert.That(sparse.All(m => m is Conv2d { KernelSize: 3 }), Is.True);
        using var femnist = ModelCatalog.Create(Device, "femnist-cnn", 1, 28, 62, seed: 1);
        Assert.That(SwatRules.Apply(femnist, new SparsitySettings(0.9f)).Select(m => m.Path), Is.EqualTo(new[] { "net.0", "net.3", "net.6" }));
        Assert.That(SwatRules.Apply(femnist, new SparsitySettings(0f)), Is.Empty);
        var all = SwatRules.Apply(resnet, new SparsitySettings(0.9f, Layers: SparseLayerRule.All));
        Assert.That(all, Has.Count.EqualTo(19), "plus the three 1x1 shortcut convolutions");
        Assert.That(all.Select(m => m.Path), Does.Contain("layer2.0.downsample.0"));
        Assert.That(SwatRules.Apply(resnet, new SparsitySettings(0.9f)), Has.Count.EqualTo(16), "re-applying the paper rule makes the shortcuts dense again");
    }

    private float[] EvaluationLogits(Model model, float[] features)
    {
        using var workspace = new ZeroFL.Engine.Memory.Workspace(Device);
        var tape = new Tape(workspace) { Training = false };
        var x = tape.NewTensor([Batch, 1, Size, Size], false);
        x.Data.CopyFromCPU(features);
        return Download(model.Forward(tape, x).Data);
    }

    /// <summary>The percentage of entries SWAT keeps at <paramref name="sparsity"/> (whole percentages only).</summary>
    private static int KeptPercent(float sparsity) => 100 - (int)Math.Round(sparsity * 100);

    /// <summary>K of n at a whole kept percentage, ceil(n * percent / 100) in integers: independent of the engine's count.</summary>
    private static int KeptCount(int n, int keptPercent) => (n * keptPercent + 99) / 100;

    private static void MaskInPlace(float[] values, Parameter p, int keptPercent)
    {
        var w = values.AsSpan((int)p.Offset, (int)p.Length).ToArray();
        var masked = TopKReference.Mask(w, TopKReference.KeptMask(w, KeptCount(w.Length, keptPercent)));
        masked.CopyTo(values, (int)p.Offset);
    }

    private static float[] Slice(float[] values, Parameter p) => values.AsSpan((int)p.Offset, (int)p.Length).ToArray();

    /// <summary>The SWAT step of ZEROFL.md in plain loops: forward with top-K weights, top-K inputs kept for dW, dense SGD update.</summary>
    private static float[] ReferenceStep(Model model, TinyNet net, float[] values, float[] x, int[] labels, int keptPercent, float lr, float weightDecay)
    {
        float[] Top(float[] v) => TopKReference.Mask(v, TopKReference.KeptMask(v, KeptCount(v.Length, keptPercent)));
        var g = new ConvGeometry(Batch, 1, Size, Size, 4, 3, 3, 1, 1);
        var w1 = Top(Slice(values, net.Conv.Weight));
        var b1 = Slice(values, net.Conv.Bias!);
        var w2 = Top(Slice(values, net.Hidden.Weight));
        var b2 = Slice(values, net.Hidden.Bias!);
        var w3 = Slice(values, net.Output.Weight);
        var b3 = Slice(values, net.Output.Bias!);
        int hiddenIn = 4 * Size * Size;

        var y1 = ConvReference.Forward(g, x, w1);
        ActivationReference.BiasForward(y1, b1, Batch, 4, Size * Size);
        var a1 = ActivationReference.ReluForward(y1);
        var y2 = new float[Batch * 5];
        GemmReference.Gemm(false, true, Batch, 5, hiddenIn, 1f, a1, hiddenIn, w2, hiddenIn, 0f, y2, 5);
        ActivationReference.BiasForward(y2, b2, Batch, 5, 1);
        var a2 = ActivationReference.ReluForward(y2);
        var logits = new float[Batch * Classes];
        GemmReference.Gemm(false, true, Batch, Classes, 5, 1f, a2, 5, w3, 5, 0f, logits, Classes);
        ActivationReference.BiasForward(logits, b3, Batch, Classes, 1);
        var loss = new float[Batch];
        var dLogits = new float[Batch * Classes];
        SoftmaxCrossEntropyReference.ForwardBackward(logits, labels, loss, dLogits, Batch, Classes, 1f / Batch);

        var grads = new float[model.Store.TrainableLength];
        void Accumulate(Parameter p, float[] grad)
        {
            for (int i = 0; i < grad.Length; i++)
            {
                grads[p.Offset + i] += grad[i];
            }
        }
        var dW3 = new float[Classes * 5];
        GemmReference.Gemm(true, false, Classes, 5, Batch, 1f, dLogits, Classes, a2, 5, 0f, dW3, 5);
        var db3 = new float[Classes];
        ActivationReference.BiasBackward(dLogits, db3, Batch, Classes, 1);
        var da2 = new float[Batch * 5];
        GemmReference.Gemm(false, false, Batch, 5, Classes, 1f, dLogits, Classes, w3, 5, 0f, da2, 5);
        var dy2 = new float[Batch * 5];
        ActivationReference.ReluBackward(a2, da2, dy2);
        var dW2 = new float[5 * hiddenIn];
        GemmReference.Gemm(true, false, 5, hiddenIn, Batch, 1f, dy2, 5, Top(a1), hiddenIn, 0f, dW2, hiddenIn);
        var db2 = new float[5];
        ActivationReference.BiasBackward(dy2, db2, Batch, 5, 1);
        var da1 = new float[Batch * hiddenIn];
        GemmReference.Gemm(false, false, Batch, hiddenIn, 5, 1f, dy2, 5, w2, hiddenIn, 0f, da1, hiddenIn);
        var dy1 = new float[y1.Length];
        ActivationReference.ReluBackward(a1, da1, dy1);
        var dW1 = new float[w1.Length];
        ConvReference.BackwardWeight(g, dy1, Top(x), dW1);
        var db1 = new float[4];
        ActivationReference.BiasBackward(dy1, db1, Batch, 4, Size * Size);
        Accumulate(net.Conv.Weight, dW1);
        Accumulate(net.Conv.Bias!, db1);
        Accumulate(net.Hidden.Weight, dW2);
        Accumulate(net.Hidden.Bias!, db2);
        Accumulate(net.Output.Weight, dW3);
        Accumulate(net.Output.Bias!, db3);

        var updated = (float[])values.Clone();
        var trainable = updated.AsSpan(0, (int)model.Store.TrainableLength).ToArray();
        SgdReference.Step(trainable, grads, new float[grads.Length], lr, 0f, weightDecay);
        trainable.CopyTo(updated, 0);
        return updated;
    }
}
