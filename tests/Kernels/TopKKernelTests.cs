using System.Diagnostics;
using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;
using ZeroFL.Engine.Devices;
using ZeroFL.Kernels;
using ZeroFL.Kernels.Reference;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Kernels;

[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Specs))]
public sealed class TopKKernelTests(string device) : DeviceTest(device)
{
    private static readonly float[] Fractions = [0f, 1e-6f, 0.05f, 0.1f, 0.3f, 0.5f, 0.9f, 1f];
    private static readonly Dictionary<(string, Layout), TopKKernels> Strategies = new();

    /// <summary>Which <see cref="TopKStrategy"/> a test runs: every one runs on every device.</summary>
    public enum Layout
    {
        /// <summary>The device's own strategy.</summary>
        Device,

        /// <summary>The GPU strategy: atomic histograms, grid stride, 3-element chunks (many chunks, scalar loops).</summary>
        Gpu,

        /// <summary>The device's strategy with 100-element chunks: many chunk boundaries (inside the SIMD loops on the CPU).</summary>
        ShortChunks,
    }

    private TopKKernels Kernels(Layout layout)
    {
        if (layout == Layout.Device)
        {
            return Device.Kernels.TopK;
        }
        lock (Strategies)
        {
            if (!Strategies.TryGetValue((DeviceSpecText, layout), out var kernels))
            {
                // Short chunks keep the device's own kind of strategy: the CPU one's kernels cannot load on a GPU backend.
                var strategy = layout == Layout.Gpu
                    ? new TopKStrategy(AtomicHistograms: true, ContiguousRanges: false, MinChunkLength: 3, MaxChunks: int.MaxValue)
                    : TopKStrategy.For(Device.Kernels.Launch) with { MinChunkLength = 100, MaxChunks = int.MaxValue };
                kernels = new TopKKernels(Device.Kernels.Launch, strategy);
                Strategies[(DeviceSpecText, layout)] = kernels;
            }
            return kernels;
        }
    }

    [Test]
    public void RandomInputsMatchTheSortReference(
        [Values(1, 2, 7, 1000, 65537, 1_000_000)] int n, [Values] Layout layout)
    {
        var x = Numerics.Random(n, 100 + n);
        CheckEveryFraction(Kernels(layout), x);
    }

    [Test]
    public void TheGpuStrategyPlansTheSelectionOnTheDeviceAndReadsItOnce([Values(1, 1000, 99_999, 100_000)] int k)
    {
        var x = Numerics.Random(100_000, 9);
        var xView = Upload(x);
        var topK = Kernels(Layout.Gpu);
        var scratch = Upload(new int[(int)topK.ScratchLength(x.Length)]);
        var before = Device.Traffic.Snapshot();
        var selection = topK.Select(xView, k, scratch);
        Assert.That(Device.Traffic.Syncs - before.Syncs, Is.EqualTo(1), "one read of the selection state");
        Assert.That(Device.Traffic.DeviceToHostBytes - before.DeviceToHostBytes, Is.EqualTo(4 * sizeof(int)));
        var host = Kernels(Layout.ShortChunks).Select(xView, k, Upload(new int[(int)Kernels(Layout.ShortChunks).ScratchLength(x.Length)]));
        Assert.That(selection, Is.EqualTo(host), "the device-planned selection equals the host-planned one");
        Assert.That(selection.Kept, Is.EqualTo(k));
    }

    [Test]
    public void WideExponentRangeMatchesTheSortReference([Values(1000, 65537)] int n, [Values] Layout layout)
    {
        var random = new Random(7);
        var x = new float[n];
        for (int i = 0; i < n; i++)
        {
            float sign = random.Next(2) == 0 ? -1f : 1f;
            x[i] = sign * (float)Math.Pow(2, random.NextDouble() * 120 - 60);
        }
        CheckEveryFraction(Kernels(layout), x);
    }

    /// <summary>
    /// The CPU strategy's bracketed selection on ReLU-like and He-normal tensors (the shapes SWAT
    /// selects from), and on one whose sampled elements (every <see cref="TopKKernels.SampleStride"/>-th)
    /// are all larger than the rest, so the sample's bracket misses and the radix passes answer.
    /// </summary>
    [Test]
    public void BracketedSelectionsMatchTheSortReference([Values("relu", "normal", "misleading-sample")] string data, [Values] Layout layout)
    {
        const int n = 300_007;
        var random = new Random(5);
        int stride = TopKKernels.SampleStride(n);
        var x = new float[n];
        for (int i = 0; i < n; i++)
        {
            float v = (float)(random.NextDouble() * 2 - 1);
            x[i] = data switch
            {
                "relu" => Math.Max(0f, v),
                "normal" => 0.05f * v * MathF.Sqrt(-2 * MathF.Log(1 - (float)random.NextDouble())),
                _ => i % stride == 0 ? 100f + v : v,
            };
        }
        CheckEveryFraction(Kernels(layout), x);
    }

    [Test]
    public void HeavyTiesKeepExactlyKLowestIndexFirst([Values(7, 1000, 65537)] int n, [Values] Layout layout)
    {
        var random = new Random(n);
        var x = new float[n];
        for (int i = 0; i < n; i++)
        {
            x[i] = random.Next(-2, 3);
        }
        CheckEveryFraction(Kernels(layout), x);
    }

    [Test]
    public void AllEqualMagnitudesKeepTheFirstK([Values] Layout layout)
    {
        var x = Enumerable.Range(0, 1001).Select(i => i % 2 == 0 ? 3.5f : -3.5f).ToArray();
        CheckEveryFraction(Kernels(layout), x);
    }

    [Test]
    public void AllZerosOfBothSignsKeepTheFirstK([Values] Layout layout)
    {
        var x = Enumerable.Range(0, 999).Select(i => i % 3 == 0 ? -0f : 0f).ToArray();
        CheckEveryFraction(Kernels(layout), x);
        var topK = Kernels(layout);
        var s = topK.Select(Upload(x), 10, Scratch(topK, x.Length));
        Assert.That((s.ThresholdBits, s.TiesToKeep, s.Tied), Is.EqualTo((0u, 10, 999)));
    }

    [Test]
    public void NegativeOnlyInputsMatchTheSortReference([Values] Layout layout)
    {
        var x = Numerics.Random(5000, 3).Select(v => -MathF.Abs(v)).ToArray();
        CheckEveryFraction(Kernels(layout), x);
    }

    [Test]
    public void TinyAndDenormalMagnitudesMatchTheSortReference([Values] Layout layout)
    {
        var random = new Random(11);
        var x = new float[4000];
        for (int i = 0; i < x.Length; i++)
        {
            float sign = random.Next(2) == 0 ? -1f : 1f;
            x[i] = (i % 4) switch
            {
                0 => sign * float.Epsilon * random.Next(0, 50),
                1 => sign * BitConverter.Int32BitsToSingle(random.Next(1, 0x007FFFFF)),
                2 => sign * 1.2e-38f * (float)random.NextDouble(),
                _ => sign * 1e-30f * (float)random.NextDouble(),
            };
        }
        Assert.That(x.Count(v => v != 0f && float.IsSubnormal(v)), Is.GreaterThan(2000), "the input is mostly denormal");
        CheckEveryFraction(Kernels(layout), x);
    }

    [Test]
    public void HugeMagnitudesAndInfinitiesMatchTheSortReference([Values] Layout layout)
    {
        var x = Numerics.Random(3000, 5, float.MaxValue);
        x[10] = float.PositiveInfinity;
        x[2000] = float.NegativeInfinity;
        x[20] = float.MaxValue;
        x[21] = -float.MaxValue;
        CheckEveryFraction(Kernels(layout), x);
        var topK = Kernels(layout);
        var s = topK.Select(Upload(x), 2, Scratch(topK, x.Length));
        Assert.That((s.Threshold, s.TiesToKeep, s.Tied), Is.EqualTo((float.PositiveInfinity, 2, 2)));
    }

    [Test]
    public void NaNRanksAboveEveryMagnitude([Values] Layout layout)
    {
        var x = Numerics.Random(1000, 9);
        // Bit patterns written as ints: a float round trip on the host may quiet a signalling NaN.
        var bits = MemoryMarshal.Cast<float, int>(x.AsSpan());
        foreach (int i in new[] { 3, 500, 501, 999 })
        {
            bits[i] = 0x7FC00000; // quiet NaN
        }
        bits[600] = unchecked((int)0xFFC00000); // negative quiet NaN: the same magnitude key
        bits[700] = 0x7F800001; // signalling NaN, smallest payload: below the quiet ones, above infinity
        bits[800] = 0x7F800000; // +infinity
        CheckEveryFraction(Kernels(layout), x);

        var topK = Kernels(layout);
        var xView = Upload(x);
        var scratch = Scratch(topK, x.Length);
        var s = topK.Select(xView, 3, scratch);
        Assert.That(float.IsNaN(s.Threshold), Is.True, "the top 3 are NaNs");
        var masked = Download(MaskOf(topK, xView, s, scratch));
        Assert.That(Enumerable.Range(0, x.Length).Where(i => !IsPositiveZero(masked[i])), Is.EqualTo(new[] { 3, 500, 501 }));
        s = topK.Select(xView, 7, scratch);
        Assert.That((s.Threshold, s.TiesToKeep), Is.EqualTo((float.PositiveInfinity, 1)), "six NaNs, then infinity");
    }

    [Test]
    public void ThresholdReuseOnAPerturbedTensorFollowsTheRule([Values] Layout layout)
    {
        var topK = Kernels(layout);
        const int n = 50_000;
        var x = Numerics.Random(n, 21);
        var scratch = Scratch(topK, n);
        var s = topK.Select(Upload(x), TopKKernels.CountFor(n, 0.1f), scratch);

        var random = new Random(22);
        var x2 = x.Select(v => v + 0.01f * (float)(random.NextDouble() - 0.5)).ToArray();
        CheckRule(topK, x2, s, scratch);
        int kept = topK.CountKept(Upload(x2), s, scratch);
        Assert.That(kept, Is.Not.EqualTo(s.Kept).And.InRange(s.Kept * 9 / 10, s.Kept * 11 / 10), "perturbed tensor keeps about K");
    }

    [Test]
    public void ThresholdReuseAppliesTiesToKeepToTheNewTensor([Values] Layout layout)
    {
        var topK = Kernels(layout);
        const int n = 9000;
        var random = new Random(31);
        var x = Enumerable.Range(0, n).Select(_ => (float)random.Next(-2, 3)).ToArray();
        var scratch = Scratch(topK, n);
        var s = topK.Select(Upload(x), 2000, scratch);
        Assert.That(s.TiesToKeep, Is.LessThan(s.Tied), "the cut falls inside a tie");

        // More ties than before (the rule keeps only TiesToKeep of them), then fewer (all kept).
        var moreTies = Enumerable.Range(0, n).Select(i => i % 2 == 0 ? 2f : -1f).ToArray();
        CheckRule(topK, moreTies, s, scratch);
        var fewerTies = moreTies.Select((v, i) => i < n - 10 ? 0.5f : v).ToArray();
        CheckRule(topK, fewerTies, s, scratch);
        CheckRule(topK, new float[17], TopKSelection.None, Scratch(topK, 17));
        // A selection from one tensor applies to a tensor of another length.
        CheckRule(topK, Numerics.Random(123, 4, 3f), s, Scratch(topK, 123));
    }

    [Test]
    public void MaskOverwritesEveryOutputElementAndCompressLeavesTheTailAlone()
    {
        var topK = Device.Kernels.TopK;
        var x = Numerics.Random(777, 41);
        var xView = Upload(x);
        var scratch = Scratch(topK, x.Length);
        var s = topK.Select(xView, 70, scratch);
        var output = Upload(Enumerable.Repeat(123f, x.Length).ToArray());
        topK.Mask(xView, s, output, scratch);
        var expected = TopKReference.Mask(x, TopKReference.KeptMask(x, 70));
        AssertSameBits(expected, Download(output), "mask over a dirty output");

        var values = Upload(Enumerable.Repeat(-7f, 80).ToArray());
        var indices = Upload(Enumerable.Repeat(-7, 80).ToArray());
        Assert.That(topK.Compress(xView, s, values, indices, scratch), Is.EqualTo(70));
        Assert.That(Download(values).Skip(70), Is.All.EqualTo(-7f));
        Assert.That(indices.Download(Device).Skip(70), Is.All.EqualTo(-7));
    }

    [TestCase(10, 0.1f, 1)]
    [TestCase(10, 0.3f, 3)]
    [TestCase(10, 0.7f, 7)]
    [TestCase(100, 0.07f, 7)]
    [TestCase(100, 0.95f, 95)]
    [TestCase(20, 0.05f, 1)]
    [TestCase(1000, 0.001f, 1)]
    [TestCase(1_000_000, 1e-6f, 1)]
    [TestCase(7, 0.5f, 4)]
    [TestCase(3, 0.33333334f, 2)] // the float 1/3 is 0.33333334 > 1/3: three of it is above 1
    [TestCase(2_359_296, 0.1f, 235_930)]
    [TestCase(2_359_296, 0.05f, 117_965)]
    [TestCase(2_359_299, 0.95f, 2_241_335)] // 2241334.05: a relative tolerance on the float product would say 2241334
    [TestCase(2_359_296, 0.9f, 2_123_367)]
    [TestCase(1, 1e-6f, 1)]
    [TestCase(5, 1e-30f, 1)]
    [TestCase(5, 1.4e-45f, 1)]
    [TestCase(10, 0f, 0)]
    [TestCase(10, 1f, 10)]
    [TestCase(0, 0.5f, 0)]
    [TestCase(int.MaxValue, 0.5f, 1_073_741_824)]
    public void CountForIsTheCeilingOfTheDecimalFraction(long n, float fraction, int expected)
    {
        Assert.That(TopKKernels.CountFor(n, fraction), Is.EqualTo(expected));
    }

    [Test]
    public void BadArgumentsAreRejectedOnTheHost()
    {
        var topK = Device.Kernels.TopK;
        Assert.Throws<ArgumentException>(() => TopKKernels.CountFor(10, -0.1f));
        Assert.Throws<ArgumentException>(() => TopKKernels.CountFor(10, 1.1f));
        Assert.Throws<ArgumentException>(() => TopKKernels.CountFor(10, float.NaN));
        Assert.Throws<ArgumentException>(() => TopKKernels.CountFor(-1, 0.5f));

        var x = Upload(Numerics.Random(100, 1));
        var scratch = Scratch(topK, 100);
        var small = Upload(new int[topK.ScratchLength(100) - 1]);
        var ex = Assert.Throws<ArgumentException>(() => topK.Select(x, 10, small));
        Assert.That(ex!.Message, Does.Contain("top-k select scratch"));
        ex = Assert.Throws<ArgumentException>(() => topK.Select(x, 101, scratch));
        Assert.That(ex!.Message, Does.Contain("outside [0, 100]"));
        Assert.Throws<ArgumentException>(() => topK.Select(x, -1, scratch));

        var s = topK.Select(x, 10, scratch);
        ex = Assert.Throws<ArgumentException>(() => topK.Mask(x, s, Zeros(99), scratch));
        Assert.That(ex!.Message, Does.Contain("top-k mask"));
        Assert.Throws<ArgumentException>(() => topK.Mask(x, s, Zeros(100), small));
        ex = Assert.Throws<ArgumentException>(() => topK.Mask(x, s with { TiesToKeep = -1 }, Zeros(100), scratch));
        Assert.That(ex!.Message, Does.Contain("ties"));

        ex = Assert.Throws<ArgumentException>(() => topK.Compress(x, s, Zeros(9), Upload(new int[10]), scratch));
        Assert.That(ex!.Message, Does.Contain("top-k compress values"));
        ex = Assert.Throws<ArgumentException>(() => topK.Compress(x, s, Zeros(10), Upload(new int[9]), scratch));
        Assert.That(ex!.Message, Does.Contain("top-k compress indices"));
        Assert.Throws<ArgumentException>(() => topK.Compress(x, s, Zeros(10), Upload(new int[10]), small));
        Assert.Throws<ArgumentException>(() => topK.CountKept(x, s, small));
    }

    /// <summary>
    /// Prints Select, Mask and Compress times for 1M floats, uniform at fractions 0.1 and 0.5 and
    /// ReLU-like (half exact zeros) at 0.7, where the threshold is 0 and ties are trimmed (run with
    /// <c>--filter "Name=Timing"</c>; explicit so CI never times anything).
    /// </summary>
    [Test, Explicit("prints timings")]
    public void Timing()
    {
        const int n = 1_000_000, repeats = 40;
        var topK = Device.Kernels.TopK;
        var uniform = Numerics.Random(n, 1);
        var relu = uniform.Select(v => v > 0f ? v : 0f).ToArray();
        var output = Zeros(n);
        var values = Zeros(n);
        var indices = Upload(new int[n]);
        var scratch = Scratch(topK, n);
        foreach (var (name, data, fraction) in new[] { ("uniform", uniform, 0.1f), ("uniform", uniform, 0.5f), ("relu", relu, 0.7f) })
        {
            var x = Upload(data);
            int k = TopKKernels.CountFor(n, fraction);
            var s = topK.Select(x, k, scratch);
            topK.Mask(x, s, output, scratch);
            topK.Compress(x, s, values, indices, scratch);

            var select = Time(() => s = topK.Select(x, k, scratch));
            var mask = Time(() => topK.Mask(x, s, output, scratch));
            var compress = Time(() => topK.Compress(x, s, values, indices, scratch));
            TestContext.Out.WriteLine(
                $"{Device.Description}, {name} n = {n}, k = {k}, ms best / median of {repeats}: select {select.Best:F2} / {select.Median:F2}, " +
                $"mask {mask.Best:F2} / {mask.Median:F2}, compress {compress.Best:F2} / {compress.Median:F2}, " +
                $"select + mask {select.Best + mask.Best:F2} / {select.Median + mask.Median:F2}");
        }

        (double Best, double Median) Time(Action action)
        {
            var times = new double[repeats];
            for (int round = 0; round < repeats; round++)
            {
                Device.Synchronize();
                var watch = Stopwatch.StartNew();
                action();
                Device.Synchronize();
                times[round] = watch.Elapsed.TotalMilliseconds;
            }
            Array.Sort(times);
            return (times[0], times[repeats / 2]);
        }
    }

    /// <summary>Select, Mask (into another view and in place), CountKept and Compress for every fraction, against the reference.</summary>
    private void CheckEveryFraction(TopKKernels topK, float[] x)
    {
        int n = x.Length;
        var order = TopKReference.MagnitudeOrder(x);
        var xView = Upload(x);
        var scratch = Scratch(topK, n);
        var output = Zeros(n);
        var inPlace = Zeros(n);
        var values = Zeros(n);
        var indices = Upload(new int[n]);
        foreach (float fraction in Fractions)
        {
            int k = TopKKernels.CountFor(n, fraction);
            string what = $"n = {n}, fraction {fraction}, k = {k}";
            var kept = TopKReference.KeptMask(x, k, order);
            var s = topK.Select(xView, k, scratch);
            Assert.That(s.Kept, Is.EqualTo(k), what);
            if (k == 0)
            {
                Assert.That(s, Is.EqualTo(TopKSelection.None), what);
            }
            else
            {
                uint threshold = TopKReference.ThresholdBits(x, k, order);
                Assert.That(s.ThresholdBits, Is.EqualTo(threshold), what + ": threshold");
                Assert.That(s.Tied, Is.EqualTo(x.Count(v => TopKReference.MagnitudeKey(v) == threshold)), what + ": tied");
                Assert.That(s.TiesToKeep, Is.EqualTo(Enumerable.Range(0, n).Count(i => kept[i] && TopKReference.MagnitudeKey(x[i]) == threshold)), what + ": ties to keep");
            }

            var expected = TopKReference.Mask(x, kept);
            topK.Mask(xView, s, output, scratch);
            AssertSameBits(expected, Download(output), what + ": mask");
            inPlace.CopyFrom(xView);
            topK.Mask(inPlace, s, inPlace, scratch);
            AssertSameBits(expected, Download(inPlace), what + ": mask in place");

            Assert.That(topK.CountKept(xView, s, scratch), Is.EqualTo(k), what + ": count kept");
            var (expectedValues, expectedIndices) = TopKReference.Compress(x, kept);
            Assert.That(topK.Compress(xView, s, values, indices, scratch), Is.EqualTo(k), what + ": compress count");
            AssertSameBits(expectedValues, Download(values)[..k], what + ": compressed values");
            Assert.That(indices.Download(Device)[..k], Is.EqualTo(expectedIndices), what + ": compressed indices");
            CheckStagedCompress(topK, xView, s, scratch, expectedValues, expectedIndices, what, selectedOnX: true);
            CheckKeptOnDevice(topK, xView, k, s, scratch, expected, expectedValues, expectedIndices, what);
        }
        AssertSameBits(x, Download(xView), "the input is left alone");
    }

    /// <summary>
    /// A selection made into a state view: the same selection as <paramref name="host"/>; on a GPU
    /// backend kept on the device, and select, mask and a compress of known size read nothing back.
    /// </summary>
    private void CheckKeptOnDevice(TopKKernels topK, ArrayView<float> xView, int k, TopKSelection host, ArrayView<int> scratch,
        float[] expected, float[] expectedValues, int[] expectedIndices, string what)
    {
        what += ", kept on the device";
        var state = Upload(Enumerable.Repeat(-9, TopKSelection.StateInts).ToArray());
        var output = Zeros((int)xView.Length);
        var values = Upload(Enumerable.Repeat(float.NaN, k + 3).ToArray());
        var indices = Upload(Enumerable.Repeat(-7, k + 3).ToArray());
        var before = Device.Traffic.Snapshot();
        var s = topK.Select(xView, k, scratch, state);
        topK.Mask(xView, s, output, scratch);
        int planned = topK.PlanCompress(xView, s, scratch, knownCount: k);
        topK.CompressPlanned(xView, s, planned, values, indices, scratch);
        if (!Device.IsCpu)
        {
            Assert.That(Device.Traffic.Syncs - before.Syncs, Is.EqualTo(0), what + ": syncs");
            Assert.That(s.OnDeviceOnly, Is.EqualTo(k > 0), what + ": on the device only");
        }
        Assert.That(planned, Is.EqualTo(k), what + ": planned");
        var read = topK.OnHost(s);
        Assert.That((read.ThresholdBits, read.TiesToKeep, read.Kept, read.Tied), Is.EqualTo((host.ThresholdBits, host.TiesToKeep, host.Kept, host.Tied)), what + ": selection");
        AssertSameBits(expected, Download(output), what + ": mask");
        AssertSameBits(expectedValues, Download(values)[..k], what + ": compressed values");
        Assert.That(indices.Download(Device)[..k], Is.EqualTo(expectedIndices), what + ": compressed indices");
        Assert.That(indices.Download(Device)[k..], Is.All.EqualTo(-7), what + ": nothing written past K");

        // The family-level compress (plan and compress in one, memory from a workspace).
        using var workspace = new ZeroFL.Engine.Memory.Workspace(Device);
        int longestSeen = 0;
        for (int call = 0; call < 2; call++)
        {
            var compressed = topK.CompressTopK(xView, s, k, scratch, workspace, ref longestSeen);
            Assert.That(compressed.Count, Is.EqualTo(k), $"{what}: compress top-k call {call}");
            AssertSameBits(expectedValues, Download(compressed.Values)[..k], $"{what}: compress top-k call {call} values");
            Assert.That(compressed.Indices.Download(Device)[..k], Is.EqualTo(expectedIndices), $"{what}: compress top-k call {call} indices");
        }
    }

    /// <summary>Mask, CountKept and Compress of <paramref name="x"/> under a given selection against the rule.</summary>
    private void CheckRule(TopKKernels topK, float[] x, TopKSelection s, ArrayView<int> scratch)
    {
        var kept = TopKReference.ApplyThreshold(x, s.ThresholdBits, s.TiesToKeep);
        int count = kept.Count(k => k);
        var xView = Upload(x);
        AssertSameBits(TopKReference.Mask(x, kept), Download(MaskOf(topK, xView, s, scratch)), "mask under reuse");
        Assert.That(topK.CountKept(xView, s, scratch), Is.EqualTo(count), "count kept under reuse");
        var values = Zeros(x.Length);
        var indices = Upload(new int[x.Length]);
        Assert.That(topK.Compress(xView, s, values, indices, scratch), Is.EqualTo(count), "compress count under reuse");
        var (expectedValues, expectedIndices) = TopKReference.Compress(x, kept);
        AssertSameBits(expectedValues, Download(values)[..count], "compressed values under reuse");
        Assert.That(indices.Download(Device)[..count], Is.EqualTo(expectedIndices), "compressed indices under reuse");
        CheckStagedCompress(topK, xView, s, scratch, expectedValues, expectedIndices, "under reuse", selectedOnX: false);
    }

    /// <summary>
    /// The one-pass (staged) compress gives the expected pairs for the usual slot, a whole chunk
    /// (always staged) and one entry (longer chunks fall back to reading x), whatever the staging held.
    /// GPU backends plan on the device instead (unstaged); given the selection's own K (when it was
    /// selected on x) they read nothing back.
    /// </summary>
    private void CheckStagedCompress(TopKKernels topK, ArrayView<float> xView, TopKSelection s, ArrayView<int> scratch,
        float[] expectedValues, int[] expectedIndices, string what, bool selectedOnX)
    {
        var (chunks, length) = topK.CompressChunks(xView.Length);
        int count = expectedValues.Length;
        foreach (int slot in new[] { EntryStaging.SlotFor(chunks, length, s.Kept, 0), length, 1 })
        {
            string staged = $"{what}, staged with {chunks} chunks, slot {slot}";
            var staging = new EntryStaging(Upload(Enumerable.Repeat(-5, chunks * slot).ToArray()),
                Upload(Enumerable.Repeat(1e30f, chunks * slot).ToArray()), slot);
            int known = selectedOnX && slot == length ? s.Kept : -1;
            var before = Device.Traffic.Snapshot();
            var plan = topK.PlanCompress(xView, s, scratch, staging, known);
            Assert.That(plan.Count, Is.EqualTo(count), staged + ": count");
            if (Device.IsCpu)
            {
                Assert.That(plan.Staged, Is.EqualTo(s.KeepsNothing || plan.Longest <= slot), staged + ": staged");
            }
            else
            {
                Assert.That(plan.Staged, Is.EqualTo(s.KeepsNothing), staged + ": planned on the device, unstaged");
                Assert.That(Device.Traffic.Syncs - before.Syncs, Is.EqualTo(known >= 0 || s.KeepsNothing || xView.Length == 0 ? 0 : 1), staged + ": syncs");
            }
            var values = Upload(Enumerable.Repeat(float.NaN, count + 5).ToArray());
            var indices = Upload(Enumerable.Repeat(-7, count + 5).ToArray());
            topK.CompressPlanned(xView, s, plan, staging, values, indices, scratch);
            AssertSameBits(expectedValues, Download(values)[..count], staged + ": values");
            Assert.That(indices.Download(Device)[..count], Is.EqualTo(expectedIndices), staged + ": indices");
            Assert.That(indices.Download(Device)[count..], Is.All.EqualTo(-7), staged + ": nothing written past the plan");
        }
    }

    private ArrayView<float> MaskOf(TopKKernels topK, ArrayView<float> x, TopKSelection s, ArrayView<int> scratch)
    {
        var output = Zeros(x.Length);
        topK.Mask(x, s, output, scratch);
        return output;
    }

    private ArrayView<int> Scratch(TopKKernels topK, int n) => Upload(new int[topK.ScratchLength(n)]);

    private static bool IsPositiveZero(float v) => BitConverter.SingleToInt32Bits(v) == 0;

    private static void AssertSameBits(float[] expected, float[] actual, string what)
    {
        Assert.That(actual, Has.Length.EqualTo(expected.Length), what + ": length");
        for (int i = 0; i < expected.Length; i++)
        {
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
            {
                Assert.Fail($"{what}: element {i} is {actual[i]} (0x{BitConverter.SingleToInt32Bits(actual[i]):X8}), expected {expected[i]} (0x{BitConverter.SingleToInt32Bits(expected[i]):X8})");
            }
        }
    }
}

/// <summary>
/// The scalar twins GPU backends compile (<see cref="TopKRanges"/>) never run on the CPU
/// accelerator, which calls the SIMD loops: this runs both on host memory and compares them.
/// </summary>
public sealed class TopKRangesTests
{
    private const uint NoneKeeps = uint.MaxValue;

    private static ComputeDevice Cpu => TestDevices.Get("cpu");

    [Test]
    public void HistogramTwinsAgree([Values(0, 1, 7, 1001)] int n, [Values(31, 20, 10)] int matchShift)
    {
        var x = Data(n, 1);
        int shift = matchShift == 31 ? 20 : matchShift - 10;
        int digitMask = matchShift == 31 ? 2047 : 1023;
        uint match = n == 0 ? 0 : TopKReference.MagnitudeKey(x[n / 2]) >> matchShift;
        if (matchShift == 31)
        {
            match = 0;
        }
        int begin = n / 3;
        using var xb = Cpu.Accelerator.Allocate1D(x.Length == 0 ? new float[1] : x);
        using var simd = Cpu.Accelerator.Allocate1D(Enumerable.Repeat(-1, digitMask + 1).ToArray());
        using var scalar = Cpu.Accelerator.Allocate1D(Enumerable.Repeat(-5, digitMask + 1).ToArray());
        TopKRanges.Histogram(xb.View, simd.View, begin, n, 1, matchShift, match, shift, digitMask);
        TopKRanges.HistogramScalar(xb.View, scalar.View, begin, n, 1, matchShift, match, shift, digitMask);
        Assert.That(simd.GetAsArray1D(), Is.EqualTo(scalar.GetAsArray1D()));
    }

    [Test]
    public void MaskCountAndTrimTwinsAgree([Values(0, 1, 9, 1001)] int n, [Values(0, 1)] int keepEqual)
    {
        var x = Data(n, 2);
        foreach (uint threshold in Thresholds(x))
        {
            using var xb = Cpu.Accelerator.Allocate1D(x.Length == 0 ? new float[1] : x);
            using var simd = Cpu.Accelerator.Allocate1D(Enumerable.Repeat(7f, Math.Max(1, n)).ToArray());
            using var scalar = Cpu.Accelerator.Allocate1D(Enumerable.Repeat(7f, Math.Max(1, n)).ToArray());
            int begin = n / 4;
            int equalSimd = TopKRanges.Mask(xb.View, simd.View, begin, n, 1, threshold, keepEqual);
            int equalScalar = TopKRanges.MaskScalar(xb.View, scalar.View, begin, n, 1, threshold, keepEqual);
            Assert.That(equalSimd, Is.EqualTo(equalScalar), "mask equal count");
            Assert.That(Bits(simd), Is.EqualTo(Bits(scalar)), "mask output");

            Assert.That(TopKRanges.Count(xb.View, begin, n, threshold), Is.EqualTo(TopKLoops.Count(xb.View, begin, n, threshold)), "count");

            for (int ties = 0; ties <= equalScalar + 1; ties += Math.Max(1, equalScalar / 3))
            {
                using var trimSimd = Cpu.Accelerator.Allocate1D(x.Length == 0 ? new float[1] : x);
                using var trimScalar = Cpu.Accelerator.Allocate1D(x.Length == 0 ? new float[1] : x);
                TopKRanges.TrimTies(trimSimd.View, trimSimd.View, begin, n, threshold, ties);
                TopKLoops.TrimTies(trimScalar.View, trimScalar.View, begin, n, threshold, ties);
                Assert.That(Bits(trimSimd), Is.EqualTo(Bits(trimScalar)), $"trim ties, keeping {ties}");
            }
        }
    }

    [Test]
    public void ScatterTwinsAgree([Values(0, 1, 9, 1001)] int n)
    {
        var x = Data(n, 3);
        foreach (uint threshold in Thresholds(x))
        {
            int begin = n / 5;
            long both = TopKLoops.Count(Upload(x, out var xb), begin, n, threshold);
            using (xb)
            {
                int greater = (int)(both >> 32), equal = (int)(both & 0xFFFFFFFF);
                for (int ties = 0; ties <= equal; ties += Math.Max(1, equal / 2))
                {
                    int kept = greater + ties;
                    const int position = 3;
                    using var valuesSimd = Cpu.Accelerator.Allocate1D(Enumerable.Repeat(-9f, kept + 4).ToArray());
                    using var indicesSimd = Cpu.Accelerator.Allocate1D(Enumerable.Repeat(-9, kept + 4).ToArray());
                    using var valuesScalar = Cpu.Accelerator.Allocate1D(Enumerable.Repeat(-9f, kept + 4).ToArray());
                    using var indicesScalar = Cpu.Accelerator.Allocate1D(Enumerable.Repeat(-9, kept + 4).ToArray());
                    TopKRanges.Scatter(xb.View, valuesSimd.View, indicesSimd.View, begin, n, threshold, position, position + kept, ties);
                    TopKLoops.Scatter(xb.View, valuesScalar.View, indicesScalar.View, begin, n, threshold, position, position + kept, ties);
                    Assert.That(Bits(valuesSimd), Is.EqualTo(Bits(valuesScalar)), "scatter values");
                    Assert.That(indicesSimd.GetAsArray1D(), Is.EqualTo(indicesScalar.GetAsArray1D()), "scatter indices");
                    Assert.That(Bits(valuesSimd).Last(), Is.EqualTo(BitConverter.SingleToInt32Bits(-9f)), "nothing written past the limit");
                }
            }
        }
    }

    [Test]
    public void BracketTwinsAgree([Values(0, 1, 9, 1001)] int n, [Values(0, 5, 1000)] int capacity)
    {
        var x = Data(n, 4);
        var keys = x.Select(TopKReference.MagnitudeKey).Distinct().Order().ToArray();
        var ranges = keys.Length == 0 ? [(0u, 0u)] : new[] { (0u, TopKKernels.MagnitudeMask), (keys[0], keys[^1]), (keys[keys.Length / 3], keys[keys.Length / 2]), (keys[^1], keys[^1]) };
        foreach (var (low, high) in ranges)
        {
            using var xb = Cpu.Accelerator.Allocate1D(x.Length == 0 ? new float[1] : x);
            using var simd = Cpu.Accelerator.Allocate1D(Enumerable.Repeat(-1, capacity + 20).ToArray());
            using var scalar = Cpu.Accelerator.Allocate1D(Enumerable.Repeat(-1, capacity + 20).ToArray());
            int begin = n / 7;
            long a = TopKRanges.Bracket(xb.View, simd.View, begin, n, low, high, 3, capacity);
            long b = TopKRanges.BracketScalar(xb.View, scalar.View, begin, n, low, high, 3, capacity);
            Assert.That(a, Is.EqualTo(b), "counts above and inside");
            int written = (int)Math.Min(capacity, b & 0xFFFFFFFF);
            Assert.That(simd.GetAsArray1D().Take(3 + written), Is.EqualTo(scalar.GetAsArray1D().Take(3 + written)), "candidates");
            Assert.That(simd.GetAsArray1D()[3 + capacity], Is.EqualTo(-1), "nothing written past the capacity");
        }
    }

    [Test]
    public void KeySelectionFindsTheKthLargestOfARange([Values(1, 2, 100, 5000)] int n, [Values(0u, 7u, 1u << 20, TopKKernels.MagnitudeMask)] uint width)
    {
        var random = new Random(n + (int)(width & 0xFFFF));
        uint low = width == TopKKernels.MagnitudeMask ? 0u : 12345u;
        var keys = Enumerable.Range(0, n).Select(_ => low + (uint)(random.NextDouble() * ((double)width + 1))).Select(k => Math.Min(k, low + width)).ToArray();
        var sorted = keys.OrderDescending().ToArray();
        foreach (int k in new[] { 1, (n + 1) / 2, n })
        {
            uint expected = sorted[k - 1];
            var (threshold, greater, equal) = KeySelection.Largest(keys.ToArray(), k, low, low + width);
            Assert.That(threshold, Is.EqualTo(expected), $"k = {k}");
            Assert.That(greater, Is.EqualTo(sorted.Count(v => v > expected)));
            Assert.That(equal, Is.EqualTo(sorted.Count(v => v == expected)));
        }
    }

    /// <summary>Random values with ties, zeros of both signs, NaN and infinity mixed in.</summary>
    private static float[] Data(int n, int seed)
    {
        var random = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++)
        {
            x[i] = random.Next(6) switch
            {
                0 => random.Next(-2, 3),
                1 => -0f,
                2 => random.Next(20) == 0 ? float.NaN : float.NegativeInfinity,
                _ => (float)(random.NextDouble() * 2 - 1),
            };
        }
        return x;
    }

    /// <summary>Thresholds worth trying on x: none, 0, 1, 2, infinity, NaN and a middle value.</summary>
    private static IEnumerable<uint> Thresholds(float[] x)
    {
        yield return NoneKeeps;
        yield return 0u;
        yield return TopKReference.MagnitudeKey(1f);
        yield return TopKReference.MagnitudeKey(2f);
        yield return TopKReference.MagnitudeKey(float.PositiveInfinity);
        yield return TopKReference.MagnitudeKey(float.NaN);
        if (x.Length > 0)
        {
            yield return TopKReference.MagnitudeKey(x[x.Length / 2]);
        }
    }

    private static ArrayView<float> Upload(float[] x, out MemoryBuffer1D<float, Stride1D.Dense> buffer)
    {
        buffer = Cpu.Accelerator.Allocate1D(x.Length == 0 ? new float[1] : x);
        return buffer.View;
    }

    private static int[] Bits(MemoryBuffer1D<float, Stride1D.Dense> buffer)
    {
        var host = new float[buffer.Length];
        buffer.View.CopyToCPU(host);
        return host.Select(BitConverter.SingleToInt32Bits).ToArray();
    }
}
