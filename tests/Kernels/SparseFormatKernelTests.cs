using ILGPU;
using ILGPU.Runtime;
using ZeroFL.Kernels;
using ZeroFL.Kernels.Reference;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Kernels;

[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Specs))]
public sealed class SparseFormatKernelTests(string device) : DeviceTest(device)
{
    /// <summary>Random sparse, empty rows, all zero, full, one row, one column, rows shorter than a word, a chunk boundary.</summary>
    public static IEnumerable<TestCaseData> Matrices()
    {
        yield return Case("random 20%", 17, 23, (r, c, random) => random.NextDouble() < 0.2);
        yield return Case("empty rows", 12, 30, (r, c, random) => r % 3 != 1 && random.NextDouble() < 0.3);
        yield return Case("all zero", 8, 8, (r, c, random) => false);
        yield return Case("full", 7, 13, (r, c, random) => true);
        yield return Case("one row", 1, 50, (r, c, random) => random.NextDouble() < 0.2);
        yield return Case("one column", 33, 1, (r, c, random) => random.NextDouble() < 0.5);
        yield return Case("several chunks", 64, 600, (r, c, random) => random.NextDouble() < 0.1);
        yield return Case("wide rows", 3, 65_536, (r, c, random) => random.NextDouble() < 0.01 || c == 65_535);
    }

    [TestCaseSource(nameof(Matrices))]
    public void ColumnsPackTo16BitsAndBackExactly(int rows, int cols, float[] dense)
    {
        var csr = CsrReference.Encode(dense, rows, cols);
        int count = csr.Columns.Length;
        var formats = Device.Kernels.SparseFormats;
        var packed = Upload(Enumerable.Repeat(-9, SparseFormatKernels.PackedColumnWords(count) + 1).ToArray());
        formats.PackColumns16(Upload(Pad(csr.Columns)), count, packed);
        var expected = SparseFormatReference.PackColumns16(csr.Columns);
        Assert.That(packed.SubView(0, expected.Length).Download(Device), Is.EqualTo(expected));
        Assert.That(packed.SubView(expected.Length, 1).Download(Device), Is.EqualTo(new[] { -9 }), "nothing written past the packed words");
        if (count % 2 == 1)
        {
            Assert.That(expected[^1] >>> 16, Is.Zero, "an odd count leaves the last high half 0");
        }
        var columns = Upload(new int[Math.Max(1, count)]);
        formats.UnpackColumns16(packed, count, columns);
        Assert.That(columns.SubView(0, count).Download(Device), Is.EqualTo(csr.Columns));
        Assert.That(SparseFormatReference.UnpackColumns16(expected, count), Is.EqualTo(csr.Columns));
    }

    [TestCaseSource(nameof(Matrices))]
    public void BitmapMatchesReferenceAndScatterAddsLikeCsr(int rows, int cols, float[] dense)
    {
        var csr = CsrReference.Encode(dense, rows, cols);
        var formats = Device.Kernels.SparseFormats;
        int words = SparseFormatKernels.BitmapWords((long)rows * cols);
        var bitmap = Upload(Enumerable.Repeat(-1, words).ToArray());
        formats.BitmapFromCsr(Upload(csr.RowPointers), Upload(Pad(csr.Columns)).SubView(0, Math.Max(1, csr.Columns.Length)), rows, cols, bitmap);
        var expected = SparseFormatReference.Bitmap(csr.RowPointers, csr.Columns, rows, cols);
        Assert.That(bitmap.Download(Device), Is.EqualTo(expected));
        var positions = SparseFormatReference.Positions(expected, (long)rows * cols);
        Assert.That(positions, Is.EqualTo(Enumerable.Range(0, rows * cols).Where(i => dense[i] != 0f).ToArray()));

        // The bitmap sum equals the CSR sum, bit for bit.
        var start = Numerics.Random(rows * cols, 5);
        var byCsr = Upload(start);
        Device.Kernels.Csr.ScatterAdd(Upload(csr.RowPointers), Upload(Pad(csr.Columns)), Upload(Pad(csr.Values)), 0.375f, rows, cols, byCsr);
        var byBitmap = Upload(start);
        var prefix = Upload(new int[SparseFormatKernels.ChunkPrefixLength((long)rows * cols)]);
        formats.BitmapScatterAdd(bitmap, Upload(Pad(csr.Values)).SubView(0, Math.Max(1, csr.Values.Length)), 0.375f, (long)rows * cols, prefix, byBitmap);
        var reference = (float[])start.Clone();
        SparseFormatReference.BitmapScatterAdd(expected, csr.Values, 0.375f, reference);
        Assert.That(Download(byBitmap), Is.EqualTo(Download(byCsr)));
        Assert.That(Download(byBitmap), Is.EqualTo(reference));
    }

    [Test]
    public void MalformedBitmapsStayInsideTheirViews()
    {
        // More set bits than values, bits past the matrix: extra bits add nothing, nothing is touched outside.
        const int length = 70;
        var bitmap = new[] { -1, -1, -1 };
        var values = new[] { 1f, 2f, 3f };
        var dense = Upload(new float[length + 5]);
        var prefix = Upload(new int[SparseFormatKernels.ChunkPrefixLength(length)]);
        Device.Kernels.SparseFormats.BitmapScatterAdd(Upload(bitmap), Upload(values), 2f, length, prefix, dense.SubView(0, length));
        var result = Download(dense);
        Assert.That(result[..3], Is.EqualTo(new[] { 2f, 4f, 6f }));
        Assert.That(result[3..], Is.All.EqualTo(0f));
        Assert.Throws<ArgumentException>(() => Device.Kernels.SparseFormats.BitmapScatterAdd(Upload(new[] { 1 }), Upload(values), 1f, length, prefix, dense));
    }

    private static TestCaseData Case(string name, int rows, int cols, Func<int, int, Random, bool> keep)
    {
        var random = new Random(rows * 131 + cols);
        var dense = new float[rows * cols];
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < cols; c++)
            {
                dense[r * cols + c] = keep(r, c, random) ? (float)(random.NextDouble() * 2 - 1) + 1e-3f : 0f;
            }
        }
        return new TestCaseData(rows, cols, dense).SetArgDisplayNames($"{name} {rows}x{cols}");
    }

    /// <summary>A non-empty copy (device buffers of length 0 are avoided).</summary>
    private static T[] Pad<T>(T[] values) => values.Length > 0 ? values : new T[1];
}
