using ILGPU;
using ILGPU.Runtime;
using ZeroFL.Kernels;
using ZeroFL.Kernels.Reference;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Kernels;

/// <summary>
/// The sparse convolutions equal the dense reference applied to the masked tensors, for the engine
/// the device runs (on the CPU: the packed SIMD engine) and for the gather algorithm GPUs run
/// (forced on the CPU accelerator too, so that CI checks it).
/// </summary>
[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Specs))]
public sealed class SparseConvKernelTests(string device) : DeviceTest(device)
{
    private static readonly Dictionary<(string, string), SparseConvKernels> Variants = [];

    /// <summary>
    /// The device's own kernels; the packed CPU engine with runs along rows (the whole batch packed
    /// first), along rows image by image, or across batches; the gather (GPU) algorithm.
    /// </summary>
    private static readonly string[] VariantNames = ["auto", "rows", "images", "batches", "gather"];

    /// <summary>
    /// Stride 1, 2, 3; padding 0, 1, 2 (and larger than the kernel); 1x1, 3x3, 5x5 and non-square
    /// kernels; batch 1, 3, 8, 9, 16; planes small enough that runs go across batches (rows of 4, 12:
    /// the packs' 8- and 4-column transposes); enough input
    /// channels and output rows for the channel-blocked forward (several windows, several row blocks); linear layers.
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
            new(2, 3, 5, 5, 4, 1, 1, 1, 2),
            new(2, 16, 20, 19, 8, 3, 3, 1, 1),
            new(3, 7, 17, 18, 13, 3, 3, 2, 1),
            new(16, 6, 4, 4, 10, 3, 3, 1, 1),
            new(8, 5, 12, 12, 6, 3, 3, 1, 1),
            new(9, 5, 6, 6, 7, 3, 3, 2, 1),
            new(3, 12, 34, 33, 9, 3, 3, 1, 1),
            new(2, 3, 32, 32, 4, 3, 3, 2, 1),
            new(2, 168, 6, 6, 72, 3, 3, 1, 1),
            new(1, 48, 12, 12, 70, 3, 3, 1, 1),
            new(2, 80, 14, 14, 36, 3, 3, 2, 1),
            new(1, 64, 13, 16, 40, 3, 3, 2, 1),
            new(2, 36, 14, 14, 168, 3, 3, 2, 1),
            new(5, 37, 1, 1, 19, 1, 1, 1, 0),
            new(20, 70, 1, 1, 45, 1, 1, 1, 0),
            new(1, 30, 1, 1, 70, 1, 1, 1, 0),
        ];
        double[] densities = [0, 0.05, 0.1, 0.5, 1.0];
        foreach (var g in geometries)
        {
            foreach (double density in densities)
            {
                foreach (string variant in VariantNames)
                {
                    yield return new TestCaseData(g, density, variant).SetArgDisplayNames(
                        $"b{g.Batch} c{g.InChannels}x{g.InHeight}x{g.InWidth} o{g.OutChannels} k{g.KernelHeight}x{g.KernelWidth} s{g.Stride} p{g.Padding} d{density} {variant}");
                }
            }
        }
    }

    [TestCaseSource(nameof(Geometries))]
    public void MatchesDenseReferenceOnMaskedTensors(ConvGeometry g, double density, string variant)
    {
        var sparse = Kernels(variant);
        var x = Numerics.Random((int)g.InputLength, 41);
        var w = Mask(Numerics.Random((int)g.WeightLength, 42), density, 43);
        var dy = Numerics.Random((int)g.OutputLength, 44);
        var dx0 = Numerics.Random((int)g.InputLength, 45);
        var dw0 = Numerics.Random((int)g.WeightLength, 46);
        var csr = CsrReference.Encode(w, g.OutChannels, g.GemmK);
        var (xValues, xIndices) = Keep(x, density, 47);
        var scratch = Zeros(Math.Max(1, sparse.ScratchLength(g)));
        var rowPointers = Upload(csr.RowPointers);
        var columns = Upload(NonEmpty(csr.Columns));
        var values = Upload(NonEmpty(csr.Values));
        Assert.That(csr.Values, Has.Length.EqualTo((int)Math.Round(density * g.WeightLength)));

        var y = Upload(Enumerable.Repeat(float.NaN, (int)g.OutputLength).ToArray());
        sparse.Forward(g, Upload(x), rowPointers, columns.SubView(0, csr.Values.Length), values.SubView(0, csr.Values.Length), y, scratch);
        Numerics.AssertClose(ConvReference.Forward(g, x, w), Download(y), 1e-4f, 2e-6f * g.GemmK + 1e-5f, "sparse forward");

        var dx = Upload(dx0);
        sparse.BackwardInput(g, Upload(dy), rowPointers, columns, values, dx, scratch);
        var expectedDx = (float[])dx0.Clone();
        ConvReference.BackwardInput(g, dy, w, expectedDx);
        Numerics.AssertClose(expectedDx, Download(dx), 1e-4f, 2e-6f * g.OutChannels * g.KernelHeight * g.KernelWidth + 1e-5f, "sparse backward input");
        // Overwrite: dx's NaN garbage is never read, every element is written.
        var overwritten = Upload(Enumerable.Repeat(float.NaN, (int)g.InputLength).ToArray());
        sparse.BackwardInput(g, Upload(dy), rowPointers, columns, values, overwritten, scratch, overwrite: true);
        var expectedOverwrite = new float[g.InputLength];
        ConvReference.BackwardInput(g, dy, w, expectedOverwrite);
        Numerics.AssertClose(expectedOverwrite, Download(overwritten), 1e-4f, 2e-6f * g.OutChannels * g.KernelHeight * g.KernelWidth + 1e-5f, "sparse backward input, overwrite");

        var dw = Upload(dw0);
        sparse.BackwardWeight(g, Upload(dy), Upload(NonEmpty(xValues)), Upload(NonEmpty(xIndices)), xValues.Length, dw, scratch);
        var expectedDw = (float[])dw0.Clone();
        SparseConvReference.BackwardWeight(g, dy, xValues, xIndices, expectedDw);
        Numerics.AssertClose(expectedDw, Download(dw), 1e-4f, 2e-6f * g.GemmN + 1e-5f, "sparse backward weight");
    }

    /// <summary>
    /// Stride-2 backward input on an even-width image stores column pairs of its two column phases
    /// as 16 consecutive floats; the plan used by <see cref="MatchesDenseReferenceOnMaskedTensors"/>
    /// (geometry b2 c3x32x32, "rows") has such chunks, and a linear layer has a single phase.
    /// </summary>
    [Test]
    public void ChannelWindowsBlockStridedPassesAndTheWideTestGeometries()
    {
        // The geometries above that must exercise the blocked gather (several channel windows).
        var kernels = Device.Kernels.SparseConv;
        foreach (var g in new ConvGeometry[] { new(2, 168, 6, 6, 72, 3, 3, 1, 1), new(2, 80, 14, 14, 36, 3, 3, 2, 1), new(1, 64, 13, 16, 40, 3, 3, 2, 1) })
        {
            var forward = kernels.PlansFor(g).Forward;
            Assert.That(SparseConvCpu.GatherWindows(forward), Is.GreaterThan(1), $"{g} forward windows");
        }
        // Strided backward input: its (row, phase) lists are blocked alike.
        foreach (var g in new ConvGeometry[] { new(2, 36, 14, 14, 168, 3, 3, 2, 1), new(32, 64, 32, 32, 128, 3, 3, 2, 1) })
        {
            var strided = kernels.PlansFor(g).BackwardInput;
            Assert.That(SparseConvCpu.GatherWindows(strided), Is.GreaterThan(1), $"{g} strided backward input windows");
        }
    }

    /// <summary>
    /// The image-major gather (each thread packs its images one at a time) sums the same lists in
    /// the same order as the whole-batch gather, so forward and backward input agree bitwise, except
    /// where an image has an odd number of runs: its last run has no partner in the image and goes
    /// through the single-run kernel (two partial sums per lane), while the whole batch pairs it with
    /// the next image's first run. Odd batches split an image between the threads.
    /// </summary>
    [TestCase(3, 12, 34, 33, 9, 1, 0.1, true)]
    [TestCase(3, 80, 14, 14, 36, 2, 0.1, true)]
    [TestCase(1, 64, 13, 16, 40, 2, 0.05, true)]
    [TestCase(5, 16, 20, 19, 24, 1, 0.3, true)]
    [TestCase(32, 32, 14, 14, 64, 1, 0.1, false)]
    [TestCase(7, 32, 14, 14, 64, 1, 0.1, false)]
    public void ImageMajorGatherEqualsTheWholeBatchGather(int batch, int channels, int height, int width, int outChannels, int stride, double density, bool bitwise)
    {
        if (!Device.Kernels.Launch.IsCpu)
        {
            Assert.Ignore("both variants run the gather kernels off the CPU accelerator");
        }
        var g = new ConvGeometry(batch, channels, height, width, outChannels, 3, 3, stride, 1);
        var images = Kernels("images");
        var rows = Kernels("rows");
        Assert.That(images.PlansFor(g).Forward.Images, Is.EqualTo(batch));
        Assert.That(rows.PlansFor(g).Forward.Images, Is.Zero);
        var x = Upload(Numerics.Random((int)g.InputLength, 51));
        var dy = Upload(Numerics.Random((int)g.OutputLength, 52));
        var csr = CsrReference.Encode(Mask(Numerics.Random((int)g.WeightLength, 53), density, 54), g.OutChannels, g.GemmK);
        var rowPointers = Upload(csr.RowPointers);
        var columns = Upload(NonEmpty(csr.Columns));
        var values = Upload(NonEmpty(csr.Values));
        var dx0 = Numerics.Random((int)g.InputLength, 55);
        var results = new List<(float[] Y, float[] Dx)>();
        foreach (var kernels in new[] { rows, images })
        {
            var scratch = Zeros(Math.Max(1, kernels.ScratchLength(g)));
            var y = Zeros(g.OutputLength);
            var dx = Upload(dx0);
            kernels.Forward(g, x, rowPointers, columns, values, y, scratch);
            kernels.BackwardInput(g, dy, rowPointers, columns, values, dx, scratch);
            results.Add((Download(y), Download(dx)));
        }
        if (bitwise)
        {
            Assert.That(results[1].Y, Is.EqualTo(results[0].Y), "forward");
            Assert.That(results[1].Dx, Is.EqualTo(results[0].Dx), "backward input");
            return;
        }
        Numerics.AssertClose(results[0].Y, results[1].Y, 1e-5f, 1e-5f, "forward");
        Numerics.AssertClose(results[0].Dx, results[1].Dx, 1e-5f, 1e-5f, "backward input");
    }

    /// <summary>
    /// Image-major gathers hand out their (image, pairs of runs) units through a counter in the
    /// scratch that every call resets: calls repeated on one scratch (forward and backward input
    /// sharing it, as a training step does) each do all the work, and the sums do not depend on
    /// which thread took which unit, so the results are bitwise equal. Batch 1 splits the image's
    /// pairs of runs into several units; batch 9 gives every unit a whole image.
    /// </summary>
    [TestCase(1, 16, 20, 19, 8, 1)]
    [TestCase(9, 12, 17, 18, 13, 1)]
    [TestCase(3, 7, 17, 18, 13, 2)]
    public void ImageMajorGatherRepeatsBitwiseOnOneScratch(int batch, int channels, int height, int width, int outChannels, int stride)
    {
        if (!Device.Kernels.Launch.IsCpu)
        {
            Assert.Ignore("image-major gathers run on the CPU accelerator only");
        }
        var g = new ConvGeometry(batch, channels, height, width, outChannels, 3, 3, stride, 1);
        var images = Kernels("images");
        Assert.That(images.PlansFor(g).Forward.Images, Is.EqualTo(batch));
        var xHost = Numerics.Random((int)g.InputLength, 61);
        var dyHost = Numerics.Random((int)g.OutputLength, 62);
        var x = Upload(xHost);
        var dy = Upload(dyHost);
        var csr = CsrReference.Encode(Mask(Numerics.Random((int)g.WeightLength, 63), 0.2, 64), g.OutChannels, g.GemmK);
        var rowPointers = Upload(csr.RowPointers);
        var columns = Upload(NonEmpty(csr.Columns));
        var values = Upload(NonEmpty(csr.Values));
        var scratch = Zeros(Math.Max(1, images.ScratchLength(g)));
        float[]? firstY = null, firstDx = null;
        for (int call = 0; call < 3; call++)
        {
            var y = Zeros(g.OutputLength);
            var dx = Zeros(g.InputLength);
            images.Forward(g, x, rowPointers, columns, values, y, scratch);
            images.BackwardInput(g, dy, rowPointers, columns, values, dx, scratch);
            if (firstY is null)
            {
                firstY = Download(y);
                firstDx = Download(dx);
                var expectedY = SparseConvReference.Forward(g, xHost, csr.RowPointers, csr.Columns, csr.Values);
                Numerics.AssertClose(expectedY, firstY, 1e-4f, 2e-6f * g.GemmK + 1e-5f, "forward against the reference");
                var expectedDx = new float[g.InputLength];
                SparseConvReference.BackwardInput(g, dyHost, csr.RowPointers, csr.Columns, csr.Values, expectedDx);
                Numerics.AssertClose(expectedDx, firstDx, 1e-4f, 2e-6f * g.OutChannels * 9 + 1e-5f, "backward input against the reference");
                continue;
            }
            Assert.That(Download(y), Is.EqualTo(firstY), $"forward, call {call + 1}");
            Assert.That(Download(dx), Is.EqualTo(firstDx), $"backward input, call {call + 1}");
        }
    }

    /// <summary>
    /// The CPU engine gathers ResNet-18's CIFAR layers image by image (one image's packed operand is
    /// at most 296 KB) and packs the whole batch first when an image's operand is too large for L2,
    /// or when runs go across batches. Backward weight goes image by image where one image's
    /// transposed dy and a private dw copy fit together (layer1, layer2's stride-2 conv) and there
    /// are at least 4 images per thread; not for 128 x 1152 dw columns (layer2), nor for 3 images.
    /// </summary>
    [Test]
    public void ResNetLayersRunImageByImage()
    {
        if (!Device.Kernels.Launch.IsCpu)
        {
            Assert.Ignore("the packed engine is the CPU accelerator's");
        }
        var kernels = Device.Kernels.SparseConv;
        foreach (var g in new ConvGeometry[] { new(32, 64, 32, 32, 64, 3, 3, 1, 1), new(32, 128, 16, 16, 128, 3, 3, 1, 1), new(32, 64, 32, 32, 128, 3, 3, 2, 1) })
        {
            var plans = kernels.PlansFor(g);
            Assert.That(plans.Forward.Images, Is.EqualTo(32), $"{g} forward");
            Assert.That(plans.BackwardInput.Images, Is.EqualTo(32), $"{g} backward input");
        }
        // Backward weight's threads own whole images: at least 4 each.
        int weightImages = 32 >= 4 * Device.Kernels.Launch.MaxThreads ? 32 : 0;
        Assert.That(kernels.PlansFor(new ConvGeometry(32, 64, 32, 32, 64, 3, 3, 1, 1)).BackwardWeight.Images, Is.EqualTo(weightImages), "layer1 backward weight");
        Assert.That(kernels.PlansFor(new ConvGeometry(32, 64, 32, 32, 128, 3, 3, 2, 1)).BackwardWeight.Images, Is.EqualTo(weightImages), "layer2 stride-2 backward weight");
        Assert.That(kernels.PlansFor(new ConvGeometry(3, 64, 32, 32, 64, 3, 3, 1, 1)).BackwardWeight.Images, Is.Zero, "3 images: the channel split");
        Assert.That(kernels.PlansFor(new ConvGeometry(32, 128, 16, 16, 128, 3, 3, 1, 1)).BackwardWeight.Images, Is.Zero, "layer2 backward weight");
        var large = kernels.PlansFor(new ConvGeometry(4, 64, 96, 96, 64, 3, 3, 1, 1));
        Assert.That(large.Forward.Images, Is.Zero, "64 x 98 x 98 floats per image");
        var small = kernels.PlansFor(new ConvGeometry(32, 512, 4, 4, 512, 3, 3, 1, 1));
        Assert.That(small.Forward.BatchInner, Is.EqualTo(8));
        Assert.That(small.Forward.Images, Is.Zero, "runs across batches");
    }

    [Test]
    public void StridedBackwardInputPlansPairColumnPhases()
    {
        var strided = SparseConvStrips.Build(SparseConvPlan.BackwardInput(new ConvGeometry(2, 3, 32, 32, 4, 3, 3, 2, 1), 1));
        Assert.That(strided.Phases, Is.EqualTo(4));
        Assert.That(strided.Paired.Count(f => f != 0), Is.GreaterThan(strided.Paired.Count / 2));
        var linear = SparseConvStrips.Build(SparseConvPlan.BackwardInput(new ConvGeometry(20, 7, 1, 1, 5, 1, 1, 1, 0), 8));
        Assert.That(linear.Phases, Is.EqualTo(1));
        Assert.That(linear.Paired, Is.All.EqualTo((byte)0));
    }

    /// <summary>The reference itself: sparse forward equals dense forward on the decoded weights.</summary>
    [Test]
    public void ReferenceDensifiesCsrAndActivations()
    {
        var g = new ConvGeometry(2, 3, 6, 5, 4, 3, 3, 1, 1);
        var x = Numerics.Random((int)g.InputLength, 1);
        var w = Mask(Numerics.Random((int)g.WeightLength, 2), 0.3, 3);
        var csr = CsrReference.Encode(w, g.OutChannels, g.GemmK);
        Assert.That(SparseConvReference.DenseWeights(g, csr.RowPointers, csr.Columns, csr.Values), Is.EqualTo(w));
        Assert.That(SparseConvReference.Forward(g, x, csr.RowPointers, csr.Columns, csr.Values), Is.EqualTo(ConvReference.Forward(g, x, w)));
        var (values, indices) = Keep(x, 0.25, 4);
        var dense = SparseConvReference.DenseActivations(g, values, indices);
        Assert.That(dense.Count(v => v != 0f), Is.EqualTo(values.Length));
    }

    /// <summary>Forward and both backward passes agree with finite differences of the sparse forward.</summary>
    [Test]
    public void GradientsMatchFiniteDifferences([ValueSource(nameof(VariantNames))] string variant)
    {
        var g = new ConvGeometry(2, 3, 5, 4, 2, 3, 3, 2, 1);
        var sparse = Kernels(variant);
        var x = Numerics.Random((int)g.InputLength, 51);
        var w = Mask(Numerics.Random((int)g.WeightLength, 52), 0.5, 53);
        var r = Numerics.Random((int)g.OutputLength, 54);
        var csr = CsrReference.Encode(w, g.OutChannels, g.GemmK);
        var scratch = Zeros(Math.Max(1, sparse.ScratchLength(g)));
        var rowPointers = Upload(csr.RowPointers);
        var columns = Upload(csr.Columns);
        var values = Upload(csr.Values);
        var allIndices = Enumerable.Range(0, x.Length).ToArray();
        var y = Zeros(g.OutputLength);

        double Loss()
        {
            var dense = CsrReference.Encode(w, g.OutChannels, g.GemmK);
            sparse.Forward(g, Upload(x), Upload(dense.RowPointers), Upload(dense.Columns), Upload(dense.Values), y, scratch);
            return FiniteDifference.Dot(Download(y), r);
        }

        var dx = Zeros(g.InputLength);
        var dw = Zeros(g.WeightLength);
        sparse.BackwardInput(g, Upload(r), rowPointers, columns, values, dx, scratch);
        sparse.BackwardWeight(g, Upload(r), Upload(x), Upload(allIndices), x.Length, dw, scratch);
        var numericDx = FiniteDifference.Gradient(x, Loss, 1e-2f);
        Numerics.AssertClose(numericDx, Download(dx), 1e-2f, 2e-3f, "dL/dx");
        // Perturbing a masked-out weight brings it into the CSR, so every position sees the dense gradient.
        var numericDw = FiniteDifference.Gradient(w, Loss, 1e-2f);
        Numerics.AssertClose(numericDw, Download(dw), 1e-2f, 2e-3f, "dL/dw");
    }

    /// <summary>Rows past the capacity, backwards rows, wild columns and activation indices out of range are skipped.</summary>
    [Test]
    public void MalformedSparseDataIsSkippedNotFollowed([ValueSource(nameof(VariantNames))] string variant)
    {
        var g = new ConvGeometry(2, 2, 5, 5, 3, 3, 3, 1, 1);
        var sparse = Kernels(variant);
        int k = g.GemmK;
        int[] rowPointers = [-5, 3, 2, 1000];
        int[] columns = [0, k, 4, -1, 17, 9];
        float[] values = [0.5f, 9f, -1f, 9f, 2f, 0.25f];
        // Effective rows: 0 = entries [0, 3); 1 = [3, 2) empty; 2 = [2, 1000 clamped to 6). Columns k and -1 skipped.
        var effective = new float[g.WeightLength];
        effective[0 * k + 0] = 0.5f;
        effective[0 * k + 4] = -1f;
        effective[2 * k + 4] = -1f;
        effective[2 * k + 17] = 2f;
        effective[2 * k + 9] = 0.25f;
        var dy = Numerics.Random((int)g.OutputLength, 62);
        var scratch = CheckForwardAndBackwardInput(sparse, g, rowPointers, columns, values, effective, Numerics.Random((int)g.InputLength, 61), dy);

        int[] indices = [int.MinValue, -1, 3, 40, 77, (int)g.InputLength, int.MaxValue];
        float[] xValues = [5f, 5f, 1f, -2f, 0.5f, 5f, 5f];
        var dw = Zeros(g.WeightLength);
        sparse.BackwardWeight(g, Upload(dy), Upload(xValues), Upload(indices), indices.Length, dw, scratch);
        var expectedDw = new float[g.WeightLength];
        SparseConvReference.BackwardWeight(g, dy, [1f, -2f, 0.5f], [3, 40, 77], expectedDw);
        Numerics.AssertClose(expectedDw, Download(dw), 1e-4f, 1e-5f, "backward weight");
    }

    /// <summary>
    /// Rows whose columns increase (the encoders' order, where backward input searches each thread's
    /// column range) but start below 0 and end at or past the weight width: the ends are skipped,
    /// every column in range counts, whichever thread owns it.
    /// </summary>
    [Test]
    public void IncreasingColumnsWithOutOfRangeEndsAreSkipped([ValueSource(nameof(VariantNames))] string variant)
    {
        var g = new ConvGeometry(2, 6, 5, 5, 4, 3, 3, 1, 1);
        var sparse = Kernels(variant);
        int k = g.GemmK;
        int[] rowPointers = [0, 4, 4, 9, 12];
        int[] columns = [-3, 0, 26, k, /* row 1 empty */ -1, 5, 17, 40, k + 7, 9, 27, k - 1];
        float[] values = [9f, 0.5f, -1f, 9f, 9f, 2f, 0.25f, -0.75f, 9f, 1.5f, -2f, 0.125f];
        var effective = new float[g.WeightLength];
        for (int r = 0; r < 4; r++)
        {
            for (int i = rowPointers[r]; i < rowPointers[r + 1]; i++)
            {
                if (columns[i] >= 0 && columns[i] < k)
                {
                    effective[r * k + columns[i]] = values[i];
                }
            }
        }
        CheckForwardAndBackwardInput(sparse, g, rowPointers, columns, values, effective,
            Numerics.Random((int)g.InputLength, 64), Numerics.Random((int)g.OutputLength, 63));
    }

    /// <summary>
    /// Sparse forward and backward input of the given (possibly malformed) CSR against the dense
    /// references on <paramref name="effective"/>, the weights it stands for; returns the scratch.
    /// </summary>
    private ArrayView<float> CheckForwardAndBackwardInput(SparseConvKernels sparse, ConvGeometry g, int[] rowPointers, int[] columns,
        float[] values, float[] effective, float[] x, float[] dy)
    {
        var scratch = Zeros(Math.Max(1, sparse.ScratchLength(g)));
        var y = Zeros(g.OutputLength);
        sparse.Forward(g, Upload(x), Upload(rowPointers), Upload(columns), Upload(values), y, scratch);
        Numerics.AssertClose(ConvReference.Forward(g, x, effective), Download(y), 1e-4f, 1e-5f, "forward");

        var dx = Zeros(g.InputLength);
        sparse.BackwardInput(g, Upload(dy), Upload(rowPointers), Upload(columns), Upload(values), dx, scratch);
        var expectedDx = new float[g.InputLength];
        ConvReference.BackwardInput(g, dy, effective, expectedDx);
        Numerics.AssertClose(expectedDx, Download(dx), 1e-4f, 1e-5f, "backward input");
        return scratch;
    }

    [Test]
    public void ShapeErrorsAreRejectedOnTheHost()
    {
        var sparse = Device.Kernels.SparseConv;
        var g = new ConvGeometry(2, 3, 8, 8, 4, 3, 3, 1, 1);
        var x = Zeros(g.InputLength);
        var y = Zeros(g.OutputLength);
        var dw = Zeros(g.WeightLength);
        var rowPointers = Upload(new int[g.OutChannels + 1]);
        var columns = Upload(new int[4]);
        var values = Upload(new float[4]);
        var scratch = Zeros(Math.Max(1, sparse.ScratchLength(g)));
        Assert.DoesNotThrow(() => sparse.Forward(g, x, rowPointers, columns, values, y, scratch));
        var ex = Assert.Throws<ArgumentException>(() => sparse.Forward(g, x.SubView(0, g.InputLength - 1), rowPointers, columns, values, y, scratch));
        Assert.That(ex!.Message, Does.Contain("sparse conv forward input"));
        Assert.Throws<ArgumentException>(() => sparse.Forward(g, x, rowPointers.SubView(0, g.OutChannels), columns, values, y, scratch));
        Assert.Throws<ArgumentException>(() => sparse.Forward(g, x, rowPointers, columns, values, y.SubView(0, 9), scratch));
        Assert.Throws<ArgumentException>(() => sparse.Forward(g with { Stride = 0 }, x, rowPointers, columns, values, y, scratch));
        Assert.Throws<ArgumentException>(() => sparse.BackwardInput(g, y.SubView(0, 10), rowPointers, columns, values, x, scratch));
        Assert.Throws<ArgumentException>(() => sparse.BackwardInput(g, y, rowPointers, columns, values, x.SubView(0, 10), scratch));
        Assert.Throws<ArgumentException>(() => sparse.BackwardWeight(g, y, values, columns, 5, dw, scratch), "count past the views");
        Assert.Throws<ArgumentException>(() => sparse.BackwardWeight(g, y, values, columns, -1, dw, scratch));
        Assert.Throws<ArgumentException>(() => sparse.BackwardWeight(g, y, values, columns, 4, dw.SubView(0, 3), scratch));
        Assert.DoesNotThrow(() => sparse.BackwardWeight(g, y, values, columns, 4, dw, scratch));
        if (sparse.ScratchLength(g) > 0)
        {
            Assert.Throws<ArgumentException>(() => sparse.Forward(g, x, rowPointers, columns, values, y, scratch.SubView(0, scratch.Length - 1)));
        }
    }

    /// <summary>The kernels under test (see <see cref="VariantNames"/>), loaded once per device.</summary>
    private SparseConvKernels Kernels(string variant)
    {
        if (variant == "auto")
        {
            return Device.Kernels.SparseConv;
        }
        lock (Variants)
        {
            if (!Variants.TryGetValue((DeviceSpecText, variant), out var kernels))
            {
                kernels = new SparseConvKernels(Device.Kernels.Launch, gather: variant == "gather", batchInner: variant switch
                {
                    "rows" or "images" => 1,
                    "batches" => 8,
                    _ => 0,
                }, byImage: variant switch
                {
                    "rows" => false,
                    "images" => true,
                    _ => null,
                });
                Variants[(DeviceSpecText, variant)] = kernels;
            }
            return kernels;
        }
    }

    /// <summary>Keeps round(density * n) entries chosen at random (a top-K-like mask of random data), zeroes the rest.</summary>
    private static float[] Mask(float[] values, double density, int seed)
    {
        var random = new Random(seed);
        int keep = (int)Math.Round(density * values.Length);
        var order = Enumerable.Range(0, values.Length).OrderBy(_ => random.Next()).ToArray();
        var masked = new float[values.Length];
        for (int i = 0; i < keep; i++)
        {
            masked[order[i]] = values[order[i]];
        }
        return masked;
    }

    /// <summary>The kept activations of <paramref name="x"/> at a random mask: values and increasing flat indices.</summary>
    private static (float[] Values, int[] Indices) Keep(float[] x, double density, int seed)
    {
        var masked = Mask(x, density, seed);
        var indices = Enumerable.Range(0, x.Length).Where(i => masked[i] != 0f).ToArray();
        return (indices.Select(i => x[i]).ToArray(), indices);
    }

    private static T[] NonEmpty<T>(T[] values) => values.Length > 0 ? values : new T[1];
}
