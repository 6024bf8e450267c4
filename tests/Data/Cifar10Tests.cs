using System.Diagnostics;
using ZeroFL.Data;

namespace ZeroFL.Tests.Data;

public sealed class Cifar10Tests
{
    private const int Records = 7;
    private const int RecordBytes = 3073;

    // The standard constants, written out here so the tests do not trust the loader's copy.
    private static readonly double[] Mean = [0.4914, 0.4822, 0.4465];
    private static readonly double[] Std = [0.2470, 0.2435, 0.2616];

    private string root = null!;

    [SetUp]
    public void SetUp()
    {
        root = Path.Combine(Path.GetTempPath(), "zerofl-cifar10-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(root);
    }

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(root))
        {
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>The pixel byte the test files hold at (batch seed, record, channel, row, column).</summary>
    private static byte Pixel(int seed, int record, int channel, int row, int column) =>
        (byte)((seed * 31 + record * 7 + channel * 53 + row * 3 + column * 5) % 256);

    private static byte Label(int seed, int record) => (byte)((seed * 3 + record) % 10);

    private static double Expected(byte pixel, int channel) => (pixel / 255.0 - Mean[channel]) / Std[channel];

    /// <summary>The bytes of a batch file of <paramref name="records"/> records made from <paramref name="seed"/>.</summary>
    private static byte[] BatchBytes(int seed, int records = Records)
    {
        var bytes = new byte[records * RecordBytes];
        for (int r = 0; r < records; r++)
        {
            int o = r * RecordBytes;
            bytes[o] = Label(seed, r);
            for (int c = 0; c < 3; c++)
            {
                for (int y = 0; y < 32; y++)
                {
                    for (int x = 0; x < 32; x++)
                    {
                        bytes[o + 1 + c * 1024 + y * 32 + x] = Pixel(seed, r, c, y, x);
                    }
                }
            }
        }
        return bytes;
    }

    private static string WriteBatch(string directory, string name, byte[] bytes)
    {
        Directory.CreateDirectory(directory);
        string path = Path.Combine(directory, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>Writes data_batch_1..5 (seeds 1..5, 7 records each) and test_batch (seed 9, 4 records).</summary>
    private static void WriteAll(string directory)
    {
        for (int b = 1; b <= 5; b++)
        {
            WriteBatch(directory, $"data_batch_{b}.bin", BatchBytes(b));
        }
        WriteBatch(directory, "test_batch.bin", BatchBytes(9, 4));
        File.WriteAllText(Path.Combine(directory, "batches.meta.txt"),
            "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n");
    }

    private string BatchesDir => Path.Combine(root, "cifar-10-batches-bin");

    [Test]
    public void ConstantsMatchTheFormat()
    {
        Assert.That(Cifar10.RecordSize, Is.EqualTo(RecordBytes));
        Assert.That((Cifar10.Channels, Cifar10.Height, Cifar10.Width, Cifar10.ClassCount), Is.EqualTo((3, 32, 32, 10)));
        Assert.That(Cifar10.TrainFileNames, Is.EqualTo(new[]
        {
            "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin",
        }));
        Assert.That(Cifar10.TestFileName, Is.EqualTo("test_batch.bin"));
        Assert.That(Cifar10.ClassNames, Is.EqualTo(new[]
        {
            "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
        }));
        Assert.That(Cifar10.Normalizations.Select(n => (double)n.Mean), Is.EqualTo(Mean).Within(1e-6));
        Assert.That(Cifar10.Normalizations.Select(n => (double)n.Std), Is.EqualTo(Std).Within(1e-6));
    }

    [Test]
    public void KnownPixelMatchesAHandComputationInEveryChannel()
    {
        string path = WriteBatch(root, "data_batch_1.bin", BatchBytes(seed: 0));
        var batch = Cifar10.LoadBatchFile(path);

        // Record 3, row 5, column 7 with seed 0: 3*7 + 5*3 + 7*5 = 71, plus 53 per channel.
        Assert.That((Pixel(0, 3, 0, 5, 7), Pixel(0, 3, 1, 5, 7), Pixel(0, 3, 2, 5, 7)), Is.EqualTo(((byte)71, (byte)124, (byte)177)));
        int pixel = 3 * 3072 + 5 * 32 + 7;
        // (124 / 255 - 0.4822) / 0.2435 = 0.0167331...
        Assert.That(batch.Features[pixel + 1024], Is.EqualTo(0.0167331).Within(1e-5), "green");
        // (71 / 255 - 0.4914) / 0.2470 = -0.8622212...
        Assert.That(batch.Features[pixel], Is.EqualTo(-0.8622212).Within(1e-5), "red");
        // (177 / 255 - 0.4465) / 0.2616 = 0.9465506...
        Assert.That(batch.Features[pixel + 2048], Is.EqualTo(0.9465506).Within(1e-5), "blue");
    }

    [Test]
    public void EveryValueAndLabelOfABatchFileIsDecoded()
    {
        string path = WriteBatch(root, "data_batch_2.bin", BatchBytes(seed: 2));
        var batch = Cifar10.LoadBatchFile(path);

        Assert.That(batch.Count, Is.EqualTo(Records));
        Assert.That(batch.Labels, Is.EqualTo(Enumerable.Range(0, Records).Select(r => (int)Label(2, r)).ToArray()));
        Assert.That(batch.Features, Has.Length.EqualTo(Records * 3 * 32 * 32));
        int mismatches = 0;
        for (int r = 0; r < Records; r++)
        {
            for (int c = 0; c < 3; c++)
            {
                for (int y = 0; y < 32; y++)
                {
                    for (int x = 0; x < 32; x++)
                    {
                        double expected = Expected(Pixel(2, r, c, y, x), c);
                        if (Math.Abs(batch.Features[((r * 3 + c) * 32 + y) * 32 + x] - expected) > 1e-5)
                        {
                            mismatches++;
                        }
                    }
                }
            }
        }
        Assert.That(mismatches, Is.Zero);
    }

    [Test]
    public void TrainIsTheFiveBatchesInOrderAndTestIsTheTestBatch()
    {
        WriteAll(BatchesDir);
        var (train, test) = Cifar10.Load(BatchesDir);

        Assert.That((train.Count, test.Count), Is.EqualTo((5 * Records, 4)));
        Assert.That((train.Channels, train.Height, train.Width, train.ClassCount), Is.EqualTo((3, 32, 32, 10)));
        Assert.That((test.Channels, test.Height, test.Width, test.ClassCount), Is.EqualTo((3, 32, 32, 10)));
        Assert.That((train.Name, test.Name), Is.EqualTo(("cifar10/train", "cifar10/test")));
        Assert.That(train.Augmentation, Is.SameAs(Cifar10.Augmentation), "training batches are cropped and flipped");
        Assert.That(test.Augmentation, Is.Null, "test images are used as they are");

        var expectedLabels = Enumerable.Range(1, 5)
            .SelectMany(b => Enumerable.Range(0, Records).Select(r => (int)Label(b, r)))
            .ToArray();
        Assert.That(train.Labels, Is.EqualTo(expectedLabels));
        Assert.That(test.Labels, Is.EqualTo(Enumerable.Range(0, 4).Select(r => (int)Label(9, r)).ToArray()));

        for (int b = 1; b <= 5; b++)
        {
            var sample = train.Sample((b - 1) * Records + 3);
            Assert.That(sample[1024 + 5 * 32 + 7], Is.EqualTo(Expected(Pixel(b, 3, 1, 5, 7), 1)).Within(1e-5), $"batch {b}");
            Assert.That(sample[2048 + 31 * 32 + 31], Is.EqualTo(Expected(Pixel(b, 3, 2, 31, 31), 2)).Within(1e-5), $"batch {b}");
        }
        Assert.That(test.Sample(2)[0], Is.EqualTo(Expected(Pixel(9, 2, 0, 0, 0), 0)).Within(1e-5));
        Assert.That(Cifar10.LoadBatchFile(Path.Combine(BatchesDir, "data_batch_4.bin")).Features,
            Is.EqualTo(train.Features.AsSpan(3 * Records * 3072, Records * 3072).ToArray()));
    }

    [TestCase(true)]
    [TestCase(false)]
    public void AcceptsTheBatchesFolderOrItsParent(bool parent)
    {
        WriteAll(BatchesDir);
        var split = Cifar10.Load(parent ? root : BatchesDir);
        Assert.That((split.Train.Count, split.Test.Count), Is.EqualTo((5 * Records, 4)));
        Assert.That(Cifar10.ResolveBatchesDirectory(parent ? root : BatchesDir), Is.EqualTo(BatchesDir));
    }

    [Test]
    public void FilesDirectlyInTheGivenFolderAreUsedWhateverItsName()
    {
        string other = Path.Combine(root, "my-cifar");
        WriteAll(other);
        Assert.That(Cifar10.Load(other).Train.Count, Is.EqualTo(5 * Records));
        Assert.That(Cifar10.ResolveBatchesDirectory(other), Is.EqualTo(other));
    }

    [Test]
    public void NoDirectorySaysHowToGetTheData()
    {
        var error = Assert.Throws<DataNotFoundException>(() => Cifar10.Load(null))!;
        Assert.That(error.Message, Does.Contain("--data-dir")
            .And.Contain("cifar-10-binary.tar.gz")
            .And.Contain("https://www.cs.toronto.edu/~kriz/cifar.html"));
        Assert.That(error.Message, Does.Not.Contain('\n'));
    }

    [Test]
    public void MissingDirectorySaysWhereItLookedAndHowToGetTheData()
    {
        string missing = Path.Combine(root, "does-not-exist");
        var error = Assert.Throws<DataNotFoundException>(() => Cifar10.Load(missing))!;
        Assert.That(error.Message, Does.Contain(missing)
            .And.Contain("--data-dir")
            .And.Contain("https://www.cs.toronto.edu/~kriz/cifar.html"));
        Assert.That(error.Message, Does.Not.Contain('\n'));
        Assert.That(error.Directory, Is.EqualTo(missing));
    }

    [Test]
    public void MissingFilesAreNamed()
    {
        WriteAll(BatchesDir);
        File.Delete(Path.Combine(BatchesDir, "data_batch_4.bin"));
        File.Delete(Path.Combine(BatchesDir, "test_batch.bin"));
        var error = Assert.Throws<DataNotFoundException>(() => Cifar10.Load(root))!;
        Assert.That(error.Message, Does.Contain(BatchesDir)
            .And.Contain("data_batch_4.bin")
            .And.Contain("test_batch.bin")
            .And.Contain("cifar-10-binary.tar.gz"));
        Assert.That(error.Message, Does.Not.Contain("data_batch_3.bin"));
        Assert.That(error.Message, Does.Not.Contain('\n'));
    }

    [Test]
    public void EmptyFolderIsNotFound()
    {
        var error = Assert.Throws<DataNotFoundException>(() => Cifar10.Load(root))!;
        Assert.That(error.Message, Does.Contain(root).And.Contain("data_batch_1.bin"));
    }

    [Test]
    public void FileOneByteShortIsAFormatErrorNamingTheFile()
    {
        WriteAll(BatchesDir);
        string path = Path.Combine(BatchesDir, "data_batch_3.bin");
        File.WriteAllBytes(path, BatchBytes(3)[..^1]);

        var error = Assert.Throws<DataFormatException>(() => Cifar10.Load(root))!;
        Assert.That(error.Message, Does.StartWith(path)
            .And.Contain($"size {Records * RecordBytes - 1} bytes")
            .And.Contain("3073-byte record"));
        Assert.That(error.FilePath, Is.EqualTo(path));
        Assert.Throws<DataFormatException>(() => Cifar10.LoadBatchFile(path));
    }

    [Test]
    public void EmptyFileIsAFormatErrorNamingTheFile()
    {
        WriteAll(BatchesDir);
        string path = Path.Combine(BatchesDir, "test_batch.bin");
        File.WriteAllBytes(path, []);

        var error = Assert.Throws<DataFormatException>(() => Cifar10.Load(BatchesDir))!;
        Assert.That(error.Message, Does.StartWith(path).And.Contain("empty"));
        Assert.That(error.Message, Does.Not.Contain('\n'));
    }

    [Test]
    public void LabelTenIsAFormatErrorNamingTheFileAndRecord()
    {
        WriteAll(BatchesDir);
        var bytes = BatchBytes(5);
        bytes[5 * RecordBytes] = 10;
        string path = WriteBatch(BatchesDir, "data_batch_5.bin", bytes);

        var error = Assert.Throws<DataFormatException>(() => Cifar10.Load(root))!;
        Assert.That(error.Message, Does.StartWith(path).And.Contain("label 10").And.Contain("record 5"));
        Assert.That(error.Message, Does.Not.Contain('\n'));
        var direct = Assert.Throws<DataFormatException>(() => Cifar10.LoadBatchFile(path))!;
        Assert.That(direct.Message, Is.EqualTo(error.Message));
    }

    [Test]
    public void MissingOrDirectoryBatchFileIsAFormatError()
    {
        string missing = Path.Combine(root, "nope.bin");
        var error = Assert.Throws<DataFormatException>(() => Cifar10.LoadBatchFile(missing))!;
        Assert.That(error.Message, Does.StartWith(missing));
        Assert.Throws<DataFormatException>(() => Cifar10.LoadBatchFile(root));
    }

    [Test]
    public void RandomCorruptionsOnlyEverThrowDataFormatException()
    {
        var random = new Random(20260101);
        var good = BatchBytes(1);
        string path = Path.Combine(root, "data_batch_1.bin");
        int accepted = 0;
        int rejected = 0;
        for (int trial = 0; trial < 300; trial++)
        {
            var bytes = (byte[])good.Clone();
            int kind = random.Next(4);
            if (kind is 0 or 3)
            {
                // Truncate anywhere, including to nothing and to whole records.
                int length = random.Next(3) == 0
                    ? random.Next(Records + 1) * RecordBytes
                    : random.Next(bytes.Length + 1);
                bytes = bytes[..length];
            }
            if (kind is 1 or 3)
            {
                for (int n = random.Next(1, 3); n > 0; n--)
                {
                    int record = random.Next(Records);
                    if (record * RecordBytes < bytes.Length)
                    {
                        bytes[record * RecordBytes] = (byte)random.Next(256);
                    }
                }
            }
            if (kind == 2)
            {
                var extra = new byte[random.Next(1, 2 * RecordBytes)];
                random.NextBytes(extra);
                bytes = [.. bytes, .. extra];
            }
            File.WriteAllBytes(path, bytes);

            bool valid = bytes.Length > 0 && bytes.Length % RecordBytes == 0
                && Enumerable.Range(0, bytes.Length / RecordBytes).All(r => bytes[r * RecordBytes] < 10);
            try
            {
                var batch = Cifar10.LoadBatchFile(path);
                Assert.That(valid, Is.True, $"trial {trial}: accepted a corrupt file of {bytes.Length} bytes");
                Assert.That(batch.Count, Is.EqualTo(bytes.Length / RecordBytes), $"trial {trial}");
                accepted++;
            }
            catch (DataFormatException e)
            {
                Assert.That(valid, Is.False, $"trial {trial}: rejected a valid file: {e.Message}");
                Assert.That(e.Message, Does.StartWith(path).And.Not.Contain('\n'), $"trial {trial}");
                rejected++;
            }
        }
        Assert.That(accepted + rejected, Is.EqualTo(300));
        Assert.That(accepted, Is.Positive, "some corruptions leave a valid file");
        Assert.That(rejected, Is.Positive);
    }

    [Test]
    public void TheTrainingSetAsksForCropAndFlipWithBlackPaddingAndTheTestSetForNothing()
    {
        Assert.That(Cifar10.Augmentation.Padding, Is.EqualTo(4));
        Assert.That(Cifar10.Augmentation.Fill[0], Is.EqualTo(-0.4914f / 0.2470f).Within(1e-5f), "black, normalised, red");
        Assert.That(Cifar10.Augmentation.Fill[2], Is.EqualTo(-0.4465f / 0.2616f).Within(1e-5f), "black, normalised, blue");
    }

    [Test]
    public void ARealSizedBatchLoadsCompletely()
    {
        const int count = 10000;
        var bytes = new byte[count * RecordBytes];
        new Random(7).NextBytes(bytes);
        for (int r = 0; r < count; r++)
        {
            bytes[r * RecordBytes] = (byte)(r % 10);
        }
        var batch = Cifar10.LoadBatchFile(WriteBatch(root, "data_batch_1.bin", bytes));
        Assert.That(batch.Count, Is.EqualTo(count));
        Assert.That(batch.Labels[^1], Is.EqualTo((count - 1) % 10));
        Assert.That(batch.Features[^1], Is.EqualTo(Expected(bytes[^1], 2)).Within(1e-5));
    }

    [Test]
    public void RealCifar10LoadsWhenGiven()
    {
        string? directory = Environment.GetEnvironmentVariable("ZEROFL_CIFAR10_DIR");
        if (string.IsNullOrEmpty(directory))
        {
            Assert.Ignore("set ZEROFL_CIFAR10_DIR to the unpacked cifar-10-batches-bin folder (or its parent) to check the real data");
        }
        var (train, test) = Cifar10.Load(directory);
        Assert.That((train.Count, test.Count), Is.EqualTo((50000, 10000)));
        Assert.That(train.LabelCounts(), Is.All.EqualTo(5000), "CIFAR-10 is balanced");
        Assert.That(test.LabelCounts(), Is.All.EqualTo(1000));
        for (int c = 0; c < 3; c++)
        {
            double sum = 0;
            for (int i = 0; i < train.Count; i++)
            {
                foreach (float v in train.Sample(i).Slice(c * 1024, 1024))
                {
                    sum += v;
                }
            }
            Assert.That(sum / (train.Count * 1024.0), Is.EqualTo(0).Within(0.01), $"normalised mean of channel {c}");
        }
    }
}
