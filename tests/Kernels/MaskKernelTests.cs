using ZeroFL.Kernels;
using ZeroFL.Kernels.Reference;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Kernels;

/// <summary>Position bitmaps (mask stability): marking and common-bit counts against the plain-loop reference.</summary>
[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Specs))]
public sealed class MaskKernelTests(string device) : DeviceTest(device)
{
    /// <summary>Lengths around word and thread boundaries, and kept shares from none to all.</summary>
    public static IEnumerable<TestCaseData> Masks()
    {
        yield return new TestCaseData(1, 1.0).SetArgDisplayNames("one entry kept");
        yield return new TestCaseData(31, 0.3).SetArgDisplayNames("under a word");
        yield return new TestCaseData(64, 0.5).SetArgDisplayNames("two whole words");
        yield return new TestCaseData(1000, 0.0).SetArgDisplayNames("nothing kept");
        yield return new TestCaseData(1000, 1.0).SetArgDisplayNames("everything kept");
        yield return new TestCaseData(100_003, 0.1).SetArgDisplayNames("many words, ragged end");
    }

    private static int[] Positions(int length, double share, int seed)
    {
        var random = new Random(seed);
        var kept = Enumerable.Range(0, length).Where(_ => random.NextDouble() < share).ToArray();
        return share >= 1.0 ? Enumerable.Range(0, length).ToArray() : kept;
    }

    [TestCaseSource(nameof(Masks))]
    public void MarkSetsExactlyTheListedPositions(int length, double share)
    {
        var positions = Positions(length, share, length);
        // Shuffled, so the kernel cannot lean on the order a top-K compress happens to give.
        var order = new Random(7);
        var shuffled = positions.OrderBy(_ => order.Next()).ToArray();
        int words = MaskKernels.Words(length);
        var bitmap = Upload(Enumerable.Repeat(-1, words + 1).ToArray());
        Device.Kernels.Masks.Mark(Upload([.. shuffled, 0]), shuffled.Length, length, bitmap);
        var expected = MaskReference.Mark(positions, length);
        Assert.That(bitmap.SubView(0, words).Download(Device), Is.EqualTo(expected));
        Assert.That(bitmap.SubView(words, 1).Download(Device), Is.EqualTo(new[] { -1 }), "nothing written past the bitmap");
        Assert.That(SparseFormatReference.Positions(expected, length), Is.EqualTo(positions), "the reference marks what it is given");
    }

    [Test]
    public void MarkSkipsIndicesOutsideTheTensorAndToleratesRepeats()
    {
        int[] indices = [5, -1, 40, 5, 70, int.MaxValue, 69, int.MinValue];
        var bitmap = Upload(new int[MaskKernels.Words(70)]);
        Device.Kernels.Masks.Mark(Upload(indices), indices.Length, 70, bitmap);
        var bits = bitmap.Download(Device);
        Assert.That(bits, Is.EqualTo(MaskReference.Mark(indices, 70)));
        Assert.That(SparseFormatReference.Positions(bits, 70), Is.EqualTo(new[] { 5, 40, 69 }));
    }

    [TestCaseSource(nameof(Masks))]
    public void CountCommonEqualsTheReference(int length, double share)
    {
        var a = MaskReference.Mark(Positions(length, share, 1), length);
        var b = MaskReference.Mark(Positions(length, Math.Min(1.0, share * 1.5), 2), length);
        long expected = MaskReference.CountCommon(a, b);
        long byHand = Enumerable.Range(0, length).Count(i => (a[i / 32] >> (i % 32) & 1) != 0 && (b[i / 32] >> (i % 32) & 1) != 0);
        Assert.That(expected, Is.EqualTo(byHand));
        Assert.That(Device.Kernels.Masks.CountCommon(Upload(a), Upload(b), length), Is.EqualTo(expected));
        Assert.That(Device.Kernels.Masks.CountCommon(Upload(a), Upload(a), length), Is.EqualTo(a.Sum(w => System.Numerics.BitOperations.PopCount((uint)w))));
    }

    [Test]
    public void ShortViewsAreRejectedOnTheHost()
    {
        var masks = Device.Kernels.Masks;
        Assert.Throws<ArgumentException>(() => masks.Mark(Upload(new int[3]), 4, 64, Upload(new int[2])));
        Assert.Throws<ArgumentException>(() => masks.Mark(Upload(new int[3]), 3, 65, Upload(new int[2])));
        Assert.Throws<ArgumentException>(() => masks.CountCommon(Upload(new int[2]), Upload(new int[1]), 64));
    }
}
