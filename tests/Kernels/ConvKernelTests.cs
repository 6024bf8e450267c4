using ILGPU;
using ILGPU.Runtime;
using ZeroFL.Kernels;
using ZeroFL.Kernels.Reference;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Kernels;

[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Specs))]
public sealed class ConvKernelTests(string device) : DeviceTest(device)
{
    /// <summary>
    /// Stride 1, 2, 3; padding 0, 1, 2; 1x1, 3x3, 5x5 and non-square kernels; batch 1, 2 and 3;
    /// non-square images; widths that make the CPU GEMM's 16-column panels wrap image rows, stay
    /// inside one row (32 wide: border lanes masked) or stride through one (stride 2, 16 outputs).
    /// </summary>
    public static IEnumerable<TestCaseData> Geometries()
    {
        ConvGeometry[] geometries =
        [
            new(1, 1, 5, 5, 1, 3, 3, 1, 0),
            new(3, 2, 7, 9, 4, 3, 3, 1, 1),
            new(3, 3, 9, 8, 5, 3, 3, 2, 1),
            new(1, 4, 6, 6, 3, 1, 1, 1, 0),
            new(2, 3, 8, 7, 4, 1, 1, 2, 0),
            new(3, 2, 11, 10, 3, 5, 5, 1, 2),
            new(1, 3, 12, 13, 2, 5, 5, 2, 2),
            new(2, 2, 9, 10, 3, 3, 2, 2, 1),
            new(1, 2, 10, 11, 3, 2, 2, 3, 1),
            new(2, 16, 20, 19, 8, 3, 3, 1, 1),
            new(3, 7, 17, 18, 13, 3, 3, 2, 1),
            new(2, 3, 6, 32, 4, 3, 3, 1, 1),
            new(1, 2, 8, 32, 3, 3, 3, 2, 1),
        ];
        return geometries.Select(g => new TestCaseData(g).SetArgDisplayNames(
            $"b{g.Batch} c{g.InChannels}x{g.InHeight}x{g.InWidth} o{g.OutChannels} k{g.KernelHeight}x{g.KernelWidth} s{g.Stride} p{g.Padding}"));
    }

    [TestCaseSource(nameof(Geometries))]
    public void ForwardAndBackwardMatchReference(ConvGeometry g)
    {
        var conv = Device.Kernels.Conv;
        var x = Numerics.Random((int)g.InputLength, 21);
        var w = Numerics.Random((int)g.WeightLength, 22);
        var dy = Numerics.Random((int)g.OutputLength, 23);
        var dx0 = Numerics.Random((int)g.InputLength, 24);
        var dw0 = Numerics.Random((int)g.WeightLength, 25);
        var workspace = Zeros(Math.Max(1, conv.WorkspaceLength(g)));
        float tolerance = 2e-6f * g.GemmK + 1e-5f;

        var yGarbage = new float[g.OutputLength];
        Array.Fill(yGarbage, float.NaN);
        var y = Upload(yGarbage);
        var xd = Upload(x);
        var wd = Upload(w);
        conv.Forward(g, xd, wd, y, workspace);
        Numerics.AssertClose(ConvReference.Forward(g, x, w), Download(y), 1e-4f, tolerance, "conv forward");

        var dyd = Upload(dy);
        var dx = Upload(dx0);
        conv.BackwardInput(g, dyd, wd, dx, workspace);
        var expectedDx = (float[])dx0.Clone();
        ConvReference.BackwardInput(g, dy, w, expectedDx);
        Numerics.AssertClose(expectedDx, Download(dx), 1e-4f, 2e-6f * g.OutChannels * g.KernelHeight * g.KernelWidth + 1e-5f, "conv backward input");
        // Overwrite: dx's NaN garbage is never read (beta 0, or zeroed first where a phase has no tap).
        var overwritten = Upload(Enumerable.Repeat(float.NaN, (int)g.InputLength).ToArray());
        conv.BackwardInput(g, dyd, wd, overwritten, workspace, overwrite: true);
        var expectedOverwrite = new float[g.InputLength];
        ConvReference.BackwardInput(g, dy, w, expectedOverwrite);
        Numerics.AssertClose(expectedOverwrite, Download(overwritten), 1e-4f, 2e-6f * g.OutChannels * g.KernelHeight * g.KernelWidth + 1e-5f, "conv backward input, overwrite");

        var dw = Upload(dw0);
        conv.BackwardWeight(g, dyd, xd, dw, workspace);
        var expectedDw = (float[])dw0.Clone();
        ConvReference.BackwardWeight(g, dy, x, expectedDw);
        Numerics.AssertClose(expectedDw, Download(dw), 1e-4f, 2e-6f * g.GemmN + 1e-5f, "conv backward weight");
    }

    /// <summary>
    /// loss = sum(y * r): dL/dx and dL/dw from the backward kernels (with dy = r) against central
    /// differences of the loss computed through the forward kernel.
    /// </summary>
    [Test]
    public void GradientsMatchFiniteDifferences()
    {
        var g = new ConvGeometry(1, 2, 5, 4, 2, 3, 3, 2, 1);
        var conv = Device.Kernels.Conv;
        var x = Numerics.Random((int)g.InputLength, 31);
        var w = Numerics.Random((int)g.WeightLength, 32);
        var r = Numerics.Random((int)g.OutputLength, 33);
        var workspace = Zeros(Math.Max(1, conv.WorkspaceLength(g)));
        var y = Zeros(g.OutputLength);
        var xd = Upload(x);
        var wd = Upload(w);
        var rd = Upload(r);

        double Loss()
        {
            conv.Forward(g, xd, wd, y, workspace);
            var values = Download(y);
            double sum = 0;
            for (int i = 0; i < values.Length; i++)
            {
                sum += (double)values[i] * r[i];
            }
            return sum;
        }

        var dx = Zeros(g.InputLength);
        var dw = Zeros(g.WeightLength);
        conv.BackwardInput(g, rd, wd, dx, workspace);
        conv.BackwardWeight(g, rd, xd, dw, workspace);
        CheckNumericGradient(x, xd, Download(dx), Loss, "dL/dx");
        CheckNumericGradient(w, wd, Download(dw), Loss, "dL/dw");
    }

    [Test]
    public void ShapeErrorsAreRejectedOnTheHost()
    {
        var conv = Device.Kernels.Conv;
        var g = new ConvGeometry(2, 3, 8, 8, 4, 3, 3, 1, 1);
        var x = Zeros(g.InputLength);
        var w = Zeros(g.WeightLength);
        var y = Zeros(g.OutputLength);
        var workspace = Zeros(1);
        Assert.That(conv.WorkspaceLength(g), Is.EqualTo(0));
        Assert.DoesNotThrow(() => conv.Forward(g, x, w, y, workspace));
        var ex = Assert.Throws<ArgumentException>(() => conv.Forward(g, x.SubView(0, g.InputLength - 1), w, y, workspace));
        Assert.That(ex!.Message, Does.Contain("conv forward input"));
        Assert.Throws<ArgumentException>(() => conv.Forward(g, x, w.SubView(0, 5), y, workspace));
        Assert.Throws<ArgumentException>(() => conv.BackwardInput(g, y.SubView(0, 10), w, x, workspace));
        Assert.Throws<ArgumentException>(() => conv.BackwardWeight(g, y, x, w.SubView(0, 10), workspace));
        Assert.Throws<ArgumentException>(() => conv.Forward(g with { Stride = 0 }, x, w, y, workspace));
        Assert.Throws<ArgumentException>(() => conv.Forward(g with { KernelHeight = 11 }, x, w, y, workspace));
    }

    private void CheckNumericGradient(float[] values, ArrayView<float> device, float[] analytic, Func<double> loss, string what)
    {
        const float eps = 1e-2f;
        for (int i = 0; i < values.Length; i++)
        {
            float original = values[i];
            device.SubView(i, 1).CopyFromCPU([original + eps]);
            double plus = loss();
            device.SubView(i, 1).CopyFromCPU([original - eps]);
            double minus = loss();
            device.SubView(i, 1).CopyFromCPU([original]);
            double numeric = (plus - minus) / (2 * eps);
            Assert.That(analytic[i], Is.EqualTo(numeric).Within(2e-3 + 1e-2 * Math.Abs(numeric)), $"{what}[{i}]");
        }
    }
}
