using ILGPU.Runtime;
using ZeroFL.Engine.Autograd;
using ZeroFL.Engine.Memory;
using ZeroFL.Engine.Models;
using ZeroFL.Engine.Profiling;
using ZeroFL.Engine.Sparsity;
using ZeroFL.Kernels;
using ZeroFL.Kernels.Reference;
using ZeroFL.Tests.Support;
using Op = ZeroFL.Engine.Ops.Ops;

namespace ZeroFL.Tests.Engine;

/// <summary>What layers keep for their weight gradients: exact smaller forms, and the profiler's account of them.</summary>
[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Specs))]
public sealed class RetainedActivationTests(string device) : DeviceTest(device)
{
    private sealed record ConvRun(float[] Output, float[] InputGradient, float[] WeightGradient, LayerProfile Row, long RetainedBytes);

    [TestCase(2, 3, 7, 6, 4, 2)]
    [TestCase(2, 4, 8, 8, 5, 2)]
    [TestCase(1, 2, 9, 10, 3, 3)]
    public void SubsampledShortcutGradientsEqualTheDenseOnes(int batch, int inChannels, int height, int width, int outChannels, int stride)
    {
        int[] xShape = [batch, inChannels, height, width];
        int[] wShape = [outChannels, inChannels, 1, 1];
        var dense = RunConv(xShape, wShape, stride, padding: 0, retainSubsampled: false);
        var subsampled = RunConv(xShape, wShape, stride, padding: 0, retainSubsampled: true);
        Assert.That(subsampled.Output, Is.EqualTo(dense.Output), "the forward is unchanged");
        Assert.That(subsampled.InputGradient, Is.EqualTo(dense.InputGradient), "dx needs only w and dy");
        Assert.That(subsampled.WeightGradient, Is.EqualTo(dense.WeightGradient), "dw from the subsample is the same sum");

        long xBytes = (long)batch * inChannels * height * width * sizeof(float);
        long keptBytes = (long)batch * inChannels * GatherKernels.SubsampledSize(height, stride) * GatherKernels.SubsampledSize(width, stride) * sizeof(float);
        Assert.That(dense.Row.RetainedBytes, Is.EqualTo(xBytes));
        Assert.That(subsampled.Row.RetainedBytes, Is.EqualTo(keptBytes), "only the subsample is kept");
        Assert.That(subsampled.Row.RetainedDenseBytes, Is.EqualTo(xBytes), "the dense baseline is the whole input");
        Assert.That(subsampled.RetainedBytes, Is.EqualTo(keptBytes));
    }

    [Test]
    public void SubsamplingIgnoresOtherGeometries()
    {
        // 3x3 stride 2, 1x1 stride 1, 1x1 stride 2 with padding: the flag changes nothing, x is kept whole.
        foreach (var (kernel, stride, padding) in new[] { (3, 2, 1), (1, 1, 0), (1, 2, 1) })
        {
            int[] xShape = [2, 3, 6, 6];
            int[] wShape = [4, 3, kernel, kernel];
            var dense = RunConv(xShape, wShape, stride, padding, retainSubsampled: false);
            var flagged = RunConv(xShape, wShape, stride, padding, retainSubsampled: true);
            Assert.That(flagged.WeightGradient, Is.EqualTo(dense.WeightGradient), $"kernel {kernel}, stride {stride}, padding {padding}");
            Assert.That(flagged.Row.RetainedBytes, Is.EqualTo(2 * 3 * 6 * 6 * sizeof(float)), $"kernel {kernel}, stride {stride}, padding {padding}");
        }
    }

    [Test]
    public void SwatRulesSubsampleShortcutsOnlyUnderASparseConv1()
    {
        using var resnet = ModelCatalog.Create(Device, "resnet18", 3, 32, 10, seed: 1);
        var blocks = ((ResNet18)resnet.Network).Blocks;
        var shortcuts = blocks.Where(b => b.Shortcut is not null).Select(b => b.Shortcut!).ToList();
        Assert.That(shortcuts, Has.Count.EqualTo(3));
        Assert.That(shortcuts.Any(s => s.RetainSubsampledInput), Is.False, "a new model keeps its inputs whole");

        SwatRules.Apply(resnet, new SparsitySettings(0.9f));
        Assert.That(shortcuts.All(s => s.RetainSubsampledInput), Is.True, "paper rule: sparse conv1, dense shortcut");
        SwatRules.Apply(resnet, new SparsitySettings(0.9f, Layers: SparseLayerRule.All));
        Assert.That(shortcuts.Any(s => s.RetainSubsampledInput), Is.False, "sparse shortcuts keep their own top-K");
        SwatRules.Apply(resnet, new SparsitySettings(0.9f));
        Assert.That(shortcuts.All(s => s.RetainSubsampledInput), Is.True);
        SwatRules.Apply(resnet, new SparsitySettings(0f));
        Assert.That(shortcuts.Any(s => s.RetainSubsampledInput), Is.False, "dense conv1 keeps the input whole anyway");
    }

    [TestCase(0.7f, 1f)]
    [TestCase(0.9f, 1f)]
    [TestCase(0.7f, 0f)]
    public void SwatLayerOverManyIndexBlocksKeepsPackedIndicesAndTheSameWeightGradient(float sparsity, float sparseKernelMaxDensity)
    {
        // x has 163,800 elements: three 65536-index blocks, the last one partial.
        var g = new ConvGeometry(4, 5, 90, 91, 3, 3, 3, 1, 1);
        var settings = new SparsitySettings(sparsity, 1, SparseLayerRule.Paper, sparseKernelMaxDensity);
        var xHost = Numerics.Random((int)g.InputLength, 11);
        var wHost = Numerics.Random((int)g.WeightLength, 12);
        var dyHost = Numerics.Random((int)g.OutputLength, 13);
        using var workspace = new Workspace(Device);
        var profiler = new OpProfiler(Device);
        var tape = new Tape(workspace) { Profiler = profiler, Scope = "conv" };
        var x = UploadTensor(tape, xHost, [g.Batch, g.InChannels, g.InHeight, g.InWidth]);
        var w = UploadTensor(tape, wHost, [g.OutChannels, g.InChannels, g.KernelHeight, g.KernelWidth]);
        var y = Op.SwatConv2d(tape, x, w, null, g.Stride, g.Padding, new SparseLayerState(settings));
        tape.GradOf(y).CopyFromCPU(dyHost);
        tape.Backward();
        var dw = Download(w.Grad);

        // The same kernels fed the full (value, index) lists, as before the indices were packed.
        var k = Device.Kernels;
        int count = settings.KeepCount(g.InputLength);
        var topKScratch = Upload(new int[k.TopK.ScratchLength(g.InputLength)]);
        var values = Zeros(count);
        var indices = Upload(new int[count]);
        var xDevice = Upload(xHost);
        int kept = k.TopK.Compress(xDevice, k.TopK.Select(xDevice, count, topKScratch), values, indices, topKScratch);
        Assert.That(kept, Is.EqualTo(count));
        var dwDirect = Zeros(g.WeightLength);
        var dyDevice = Upload(dyHost);
        if (settings.Density <= sparseKernelMaxDensity)
        {
            k.SparseConv.BackwardWeight(g, dyDevice, values, indices, count, dwDirect, Zeros(Math.Max(1, k.SparseConv.ScratchLength(g))));
        }
        else
        {
            var xDense = Zeros(g.InputLength);
            k.Gather.Scatter(values, indices, count, xDense);
            k.Conv.BackwardWeight(g, dyDevice, xDense, dwDirect, Zeros(1));
        }
        if (Device.IsCpu)
        {
            Assert.That(dw, Is.EqualTo(Download(dwDirect)), "dw from the expanded indices is the dw from the full ones");
        }
        else
        {
            // GPU kernels add into dw atomically: the same sums in a launch-dependent order.
            Numerics.AssertClose(Download(dwDirect), dw, 2e-4f, 1e-4f, "dw from the expanded indices is the dw from the full ones");
        }

        var masked = TopKReference.Mask(xHost, TopKReference.KeptMask(xHost, count));
        var expected = new float[g.WeightLength];
        ConvReference.BackwardWeight(g, dyHost, masked, expected);
        Numerics.AssertClose(expected, dw, 1e-4f, 1e-4f, "dw against the plain-loop reference");

        long packedBytes = (long)count * sizeof(float) + ((count + 1) / 2 + 4) * sizeof(int);
        var row = profiler.Layers.Single(l => l.Kind == OpKinds.Conv);
        Assert.That(row.RetainedBytes, Is.EqualTo(packedBytes), "values, 16-bit indices two per int, a table of ceil(n / 65536) + 1 ints");
        Assert.That(row.RetainedDenseBytes, Is.EqualTo(g.InputLength * sizeof(float)));
    }

    /// <summary>
    /// K is exact: at sparsity 0.9 a SWAT layer keeps one tenth, not one more (the float 1 - 0.9f
    /// is 0.100000024, and ceil of that times 800 was 81). FEMNIST's conv1: 800 weights keep 80; an
    /// input of 5 x 28 x 28 = 3,920 keeps 392 for the weight gradient. The counts are literals here.
    /// </summary>
    [Test]
    public void ASwatLayerAtSparsity09KeepsExactlyATenth()
    {
        var g = new ConvGeometry(5, 1, 28, 28, 32, 5, 5, 1, 2);
        var settings = new SparsitySettings(0.9f);
        Assert.That(settings.KeepCount(800), Is.EqualTo(80));
        Assert.That(settings.KeepCount(g.InputLength), Is.EqualTo(392));
        var xHost = Numerics.Random((int)g.InputLength, 31);
        var wHost = Numerics.Random((int)g.WeightLength, 32);
        var dyHost = Numerics.Random((int)g.OutputLength, 33);
        using var workspace = new Workspace(Device);
        var tape = new Tape(workspace);
        var x = UploadTensor(tape, xHost, [g.Batch, g.InChannels, g.InHeight, g.InWidth]);
        var w = UploadTensor(tape, wHost, [g.OutChannels, g.InChannels, g.KernelHeight, g.KernelWidth]);
        var y = Op.SwatConv2d(tape, x, w, null, g.Stride, g.Padding, new SparseLayerState(settings));
        var output = Download(y.Data);
        tape.GradOf(y).CopyFromCPU(dyHost);
        tape.Backward();

        var topWeights = TopKReference.Mask(wHost, TopKReference.KeptMask(wHost, 80));
        Assert.That(topWeights.Count(v => v != 0f), Is.EqualTo(80));
        Numerics.AssertClose(ConvReference.Forward(g, xHost, topWeights), output, 1e-4f, 1e-5f, "forward with the top 80 weights");
        var topInputs = TopKReference.Mask(xHost, TopKReference.KeptMask(xHost, 392));
        var expectedDw = new float[g.WeightLength];
        ConvReference.BackwardWeight(g, dyHost, topInputs, expectedDw);
        Numerics.AssertClose(expectedDw, Download(w.Grad), 1e-4f, 1e-4f, "dw from the top 392 inputs");
    }

    private ConvRun RunConv(int[] xShape, int[] wShape, int stride, int padding, bool retainSubsampled)
    {
        using var workspace = new Workspace(Device);
        var profiler = new OpProfiler(Device);
        var tape = new Tape(workspace) { Profiler = profiler, Scope = "shortcut" };
        var x = UploadTensor(tape, Numerics.Random((int)Tensor.ShapeLength(xShape), 3), xShape);
        var w = UploadTensor(tape, Numerics.Random((int)Tensor.ShapeLength(wShape), 4), wShape);
        var y = Op.Conv2d(tape, x, w, null, stride, padding, retainSubsampled);
        var output = Download(y.Data);
        tape.GradOf(y).CopyFromCPU(Numerics.Random(output.Length, 5));
        tape.Backward();
        return new ConvRun(output, Download(x.Grad), Download(w.Grad), profiler.Layers.Single(), profiler.RetainedBytes);
    }

    private static Tensor UploadTensor(Tape tape, float[] values, int[] shape)
    {
        var t = tape.NewTensor(shape, requiresGrad: true);
        t.Data.CopyFromCPU(values);
        return t;
    }
}
