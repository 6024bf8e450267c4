using ZeroFL.Data;

namespace ZeroFL.Tests.Data;

public sealed class IdxReaderTests
{
    private IdxFiles files = null!;

    [SetUp]
    public void SetUp() => files = new IdxFiles();

    [TearDown]
    public void TearDown() => files.Dispose();

    [TestCase(false)]
    [TestCase(true)]
    public void ImagesAndLabelsRoundTrip(bool gzip)
    {
        const int count = 5, rows = 3, cols = 4;
        var pixels = IdxFiles.Bytes(count * rows * cols, 7);
        var labels = IdxFiles.Bytes(count, 8, 10);
        string imagesPath = files.WriteImages("images.bin", pixels, count, rows, cols, gzip);
        string labelsPath = files.WriteLabels("labels.bin", labels, gzip);

        var images = IdxReader.ReadImages(imagesPath);
        Assert.That((images.Count, images.Rows, images.Cols), Is.EqualTo((count, rows, cols)));
        Assert.That(images.Pixels, Is.EqualTo(pixels));
        Assert.That(IdxReader.ReadLabels(labelsPath), Is.EqualTo(labels));

        var pair = IdxReader.ReadLabelledImages(imagesPath, labelsPath);
        Assert.That(pair.Labels, Is.EqualTo(labels));
        Assert.That(pair.Images.Pixels, Is.EqualTo(pixels));
    }

    [Test]
    public void GzipIsDetectedByContentNotName()
    {
        var labels = IdxFiles.Bytes(100, 9, 10);
        string gzipWithoutExtension = files.WriteLabels("labels-idx1-ubyte", labels, gzip: true);
        string plainWithGzExtension = files.WriteLabels("labels-idx1-ubyte.gz", labels, gzip: false);
        Assert.That(IdxReader.ReadLabels(gzipWithoutExtension), Is.EqualTo(labels));
        Assert.That(IdxReader.ReadLabels(plainWithGzExtension), Is.EqualTo(labels));
    }

    [Test]
    public void LargeGzipBodyIsReadWhole()
    {
        // Larger than the first read chunk, so the growing-buffer path runs.
        const int count = 3000, side = 28;
        var pixels = IdxFiles.Bytes(count * side * side, 10);
        string path = files.WriteImages("big.gz", pixels, count, side, side, gzip: true);
        Assert.That(IdxReader.ReadImages(path).Pixels, Is.EqualTo(pixels));
    }

    [Test]
    public void ZeroSamplesIsValid()
    {
        string path = files.WriteLabels("empty", []);
        Assert.That(IdxReader.ReadLabels(path), Is.Empty);
    }

    [TestCase(false, 0)]
    [TestCase(false, 3)]
    [TestCase(false, 9)]
    [TestCase(true, 3)]
    [TestCase(true, 9)]
    public void TruncatedHeaderThrows(bool gzip, int keep)
    {
        var bytes = IdxFiles.Encode(0x00000803, [2, 2, 2], new byte[8]);
        string path = files.Write("truncated-header", bytes[..keep], gzip);
        AssertFormatError(() => IdxReader.ReadImages(path), path, "truncated header");
    }

    [TestCase(false)]
    [TestCase(true)]
    public void TruncatedBodyThrows(bool gzip)
    {
        var bytes = IdxFiles.Encode(0x00000803, [4, 3, 3], IdxFiles.Bytes(36, 1));
        string path = files.Write("truncated-body", bytes[..^5], gzip);
        AssertFormatError(() => IdxReader.ReadImages(path), path, "truncated body");
    }

    [Test]
    public void TruncatedGzipStreamThrows()
    {
        var compressed = IdxFiles.Gzip(IdxFiles.Encode(0x00000803, [50, 28, 28], IdxFiles.Bytes(50 * 28 * 28, 2)));
        string path = files.Write("cut.gz", compressed[..(compressed.Length / 2)]);
        var error = Assert.Throws<DataFormatException>(() => IdxReader.ReadImages(path))!;
        Assert.That(error.Message, Does.StartWith(path));
    }

    [Test]
    public void CorruptGzipThrows()
    {
        var compressed = IdxFiles.Gzip(IdxFiles.Encode(0x00000801, [1000], IdxFiles.Bytes(1000, 3)));
        for (int i = 10; i < compressed.Length - 8; i++)
        {
            compressed[i] ^= 0x5a;
        }
        string path = files.Write("corrupt.gz", compressed);
        var error = Assert.Throws<DataFormatException>(() => IdxReader.ReadLabels(path))!;
        Assert.That(error.Message, Does.StartWith(path));
    }

    [TestCase(false)]
    [TestCase(true)]
    public void WrongMagicThrows(bool gzip)
    {
        string labels = files.WriteLabels("labels", [1, 2, 3], gzip);
        AssertFormatError(() => IdxReader.ReadImages(labels), labels, "wrong magic number 0x00000801");
        string junk = files.Write("junk", "hello world, not idx"u8.ToArray(), gzip);
        AssertFormatError(() => IdxReader.ReadLabels(junk), junk, "wrong magic number");
    }

    [Test]
    public void CountMismatchThrowsNamingBothFiles()
    {
        string images = files.WriteImages("images", new byte[3 * 4], 3, 2, 2);
        string labels = files.WriteLabels("labels", [1, 2]);
        var error = AssertFormatError(() => IdxReader.ReadLabelledImages(images, labels), labels, "2 labels");
        Assert.That(error.Message, Does.Contain(images).And.Contain("3 images"));
    }

    [TestCase(-1, 28, 28)]
    [TestCase(10, 0, 28)]
    [TestCase(10, 28, -5)]
    [TestCase(10, 100_000, 28)]
    [TestCase(int.MaxValue, 4096, 4096)]
    public void AbsurdDimensionsThrow(int count, int rows, int cols)
    {
        string path = files.Write("absurd", IdxFiles.Encode(0x00000803, [count, rows, cols], new byte[16]));
        AssertFormatError(() => IdxReader.ReadImages(path), path, "absurd dimensions");
    }

    [Test]
    public void HugeCountInSmallGzipIsRejectedBeforeAllocating()
    {
        string path = files.Write("liar.gz", IdxFiles.Encode(0x00000803, [1_000_000, 1000, 1], new byte[16]), gzip: true);
        AssertFormatError(() => IdxReader.ReadImages(path), path, "truncated body");
    }

    [Test]
    public void TrailingDataThrows()
    {
        var bytes = IdxFiles.Encode(0x00000801, [3], [1, 2, 3, 4]);
        string plain = files.Write("trailing", bytes);
        string gzip = files.Write("trailing.gz", bytes, gzip: true);
        AssertFormatError(() => IdxReader.ReadLabels(plain), plain, "after the 3 bytes");
        AssertFormatError(() => IdxReader.ReadLabels(gzip), gzip, "after the 3 bytes");
    }

    [Test]
    public void MissingFileAndDirectoryThrow()
    {
        string missing = files.PathOf("nope-idx1-ubyte");
        AssertFormatError(() => IdxReader.ReadLabels(missing), missing, "file not found");
        string inMissingDir = Path.Combine(files.Directory, "no-dir", "x");
        AssertFormatError(() => IdxReader.ReadLabels(inMissingDir), inMissingDir, "file not found");
        AssertFormatError(() => IdxReader.ReadLabels(files.Directory), files.Directory, "directory");
    }

    [TestCase(false)]
    [TestCase(true)]
    public void RandomCorruptionGivesDataOrFormatErrorOnly(bool gzip)
    {
        var valid = IdxFiles.Encode(0x00000803, [6, 5, 5], IdxFiles.Bytes(150, 4));
        var original = gzip ? IdxFiles.Gzip(valid) : valid;
        var random = new Random(12);
        string path = files.PathOf("fuzz");
        for (int trial = 0; trial < 300; trial++)
        {
            var bytes = (byte[])original.Clone();
            for (int flips = random.Next(1, 4); flips > 0; flips--)
            {
                bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
            }
            File.WriteAllBytes(path, bytes[..random.Next(bytes.Length + 1)]);
            try
            {
                var images = IdxReader.ReadImages(path);
                Assert.That(images.Pixels, Has.Length.EqualTo(images.Count * images.Rows * images.Cols));
            }
            catch (DataFormatException error)
            {
                Assert.That(error.Message, Does.StartWith(path + ": "));
            }
        }
    }

    private static DataFormatException AssertFormatError(TestDelegate read, string path, string problem)
    {
        var error = Assert.Throws<DataFormatException>(read)!;
        Assert.That(error.FilePath, Is.EqualTo(path));
        Assert.That(error.Message, Does.StartWith(path + ": ").And.Contain(problem));
        Assert.That(error.Message, Does.Not.Contain('\n'));
        return error;
    }
}
