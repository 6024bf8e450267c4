namespace ZeroFL.Data;

/// <summary>
/// The records of one CIFAR-10 batch file.
/// </summary>
/// <param name="Labels">One label per record, each in <c>0..9</c>, as stored in the file.</param>
/// <param name="Features">
/// Normalised features <c>[Count, 3, 32, 32]</c> row-major (red, green, blue planes), see
/// <see cref="Cifar10.Normalizations"/>.
/// </param>
public sealed record Cifar10Batch(int[] Labels, float[] Features)
{
    /// <summary>Number of records.</summary>
    public int Count => Labels.Length;
}

/// <summary>
/// CIFAR-10 in its binary version (<c>cifar-10-binary.tar.gz</c>, which unpacks to the folder
/// <see cref="BatchesFolder"/>): 50,000 training and 10,000 test 32x32 colour images of 10 classes.
/// Every batch file is a sequence of <see cref="RecordSize"/>-byte records: one label byte
/// (<c>0..9</c>), then 1024 red, 1024 green and 1024 blue bytes, each plane 32x32 row-major, which
/// is exactly the <c>[3, 32, 32]</c> layout of a <see cref="Dataset"/> sample.
/// </summary>
public static class Cifar10
{
    /// <summary>Short name used in data set names, e.g. "cifar10/train".</summary>
    public const string Name = "cifar10";

    /// <summary>Name for messages.</summary>
    public const string DisplayName = "CIFAR-10";

    /// <summary>The folder the binary archive unpacks to.</summary>
    public const string BatchesFolder = "cifar-10-batches-bin";

    /// <summary>The optional file listing the class names, one a line.</summary>
    public const string MetaFileName = "batches.meta.txt";

    /// <summary>The test batch file.</summary>
    public const string TestFileName = "test_batch.bin";

    /// <summary>Colour channels per image.</summary>
    public const int Channels = 3;

    /// <summary>Rows per image.</summary>
    public const int Height = 32;

    /// <summary>Columns per image.</summary>
    public const int Width = 32;

    /// <summary>Pixel bytes per channel plane: <see cref="Height"/> * <see cref="Width"/>.</summary>
    public const int PlaneSize = Height * Width;

    /// <summary>Pixel bytes per image: <see cref="Channels"/> * <see cref="PlaneSize"/>.</summary>
    public const int ImageSize = Channels * PlaneSize;

    /// <summary>Bytes per record: one label byte and <see cref="ImageSize"/> pixel bytes.</summary>
    public const int RecordSize = 1 + ImageSize;

    /// <summary>Number of classes; every label byte must be below it.</summary>
    public const int ClassCount = 10;

    /// <summary>Records per batch file in the real data set (the loader accepts any positive count).</summary>
    public const int RecordsPerRealBatch = 10000;

    // Records converted per read; about 3 MB of file buffer.
    private const int RecordsPerChunk = 1024;

    /// <summary>How to get the data, ending a one-line not-found message.</summary>
    public const string InstallHint =
        "download cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html, unpack it and pass --data-dir DIR (the "
        + BatchesFolder + " folder or its parent)";

    /// <summary>The training batch files, in the order their records are concatenated.</summary>
    public static IReadOnlyList<string> TrainFileNames { get; } = Array.AsReadOnly<string>(
    [
        "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin",
    ]);

    /// <summary>The class names by label, as listed in <see cref="MetaFileName"/>.</summary>
    public static IReadOnlyList<string> ClassNames { get; } = Array.AsReadOnly<string>(
    [
        "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
    ]);

    /// <summary>
    /// The standard per-channel constants (red, green, blue): a byte <c>b</c> of channel <c>c</c>
    /// becomes <c>(b / 255 - Mean[c]) / Std[c]</c> with mean (0.4914, 0.4822, 0.4465) and std
    /// (0.2470, 0.2435, 0.2616).
    /// </summary>
    public static IReadOnlyList<Normalization> Normalizations { get; } = Array.AsReadOnly<Normalization>(
    [
        new Normalization(0.4914f, 0.2470f),
        new Normalization(0.4822f, 0.2435f),
        new Normalization(0.4465f, 0.2616f),
    ]);

    // One 256-entry lookup table per channel.
    private static readonly float[][] Tables = [.. Normalizations.Select(n => n.Table())];

    /// <summary>
    /// The training augmentation of the CIFAR-10 literature (and SWAT's code): crop 32 from the image
    /// padded by 4, then a horizontal flip; the padding is black (0 before normalisation).
    /// </summary>
    public static CropFlip Augmentation { get; } = new(4, [.. Normalizations.Select(n => n.Table()[0])]);

    /// <summary>
    /// Loads the train set (the five data batches concatenated in order) and the test set
    /// (<see cref="TestFileName"/>) from <paramref name="dataDir"/>, which may be the
    /// <see cref="BatchesFolder"/> folder itself or its parent. Features are <c>[N, 3, 32, 32]</c>,
    /// normalised per channel. Throws <see cref="DataNotFoundException"/> when the directory is null
    /// or a file is missing and <see cref="DataFormatException"/> when a file is unusable.
    /// </summary>
    public static TrainTestSplit Load(string? dataDir)
    {
        var (trainPaths, testPath) = FindFiles(dataDir);
        var train = LoadDataset($"{Name}/train", trainPaths, Augmentation);
        var test = LoadDataset($"{Name}/test", [testPath], null);
        return new TrainTestSplit(train, test);
    }

    /// <summary>
    /// The directory holding the batch files: <paramref name="dataDir"/> itself when it holds
    /// <c>data_batch_1.bin</c> or <see cref="TestFileName"/>, else its <see cref="BatchesFolder"/>
    /// subfolder when that exists, else <paramref name="dataDir"/>. Checks nothing else.
    /// </summary>
    public static string ResolveBatchesDirectory(string dataDir)
    {
        ArgumentNullException.ThrowIfNull(dataDir);
        if (File.Exists(Path.Combine(dataDir, TrainFileNames[0])) || File.Exists(Path.Combine(dataDir, TestFileName)))
        {
            return dataDir;
        }
        string nested = Path.Combine(dataDir, BatchesFolder);
        return Directory.Exists(nested) ? nested : dataDir;
    }

    /// <summary>
    /// The five training batch paths in order and the test batch path under
    /// <paramref name="dataDir"/> (see <see cref="ResolveBatchesDirectory"/>), or throws
    /// <see cref="DataNotFoundException"/> with one line saying where it looked and how to get the data.
    /// </summary>
    public static (string[] TrainPaths, string TestPath) FindFiles(string? dataDir)
    {
        if (string.IsNullOrWhiteSpace(dataDir))
        {
            throw new DataNotFoundException($"{DisplayName}: no data directory given; {InstallHint}");
        }
        if (!Directory.Exists(dataDir))
        {
            throw new DataNotFoundException(
                $"{DisplayName} not found: directory {dataDir} does not exist; {InstallHint}", dataDir);
        }
        string directory = ResolveBatchesDirectory(dataDir);
        var names = TrainFileNames.Append(TestFileName).ToArray();
        var paths = names.Select(name => Path.Combine(directory, name)).ToArray();
        var missing = names.Where((_, i) => !File.Exists(paths[i])).ToList();
        if (missing.Count > 0)
        {
            string where = directory == dataDir && !Directory.Exists(Path.Combine(dataDir, BatchesFolder))
                ? $"{directory} (which has no {BatchesFolder} subfolder either)"
                : directory;
            throw new DataNotFoundException(
                $"{DisplayName} not found in {where}: no {string.Join(", ", missing)}; {InstallHint}", directory);
        }
        return (paths[..^1], paths[^1]);
    }

    /// <summary>
    /// Reads one batch file: its labels and its normalised features <c>[Count, 3, 32, 32]</c>.
    /// Throws <see cref="DataFormatException"/> naming the file when it cannot be opened or read,
    /// when its size is not a positive multiple of <see cref="RecordSize"/>, or when a label byte is
    /// above 9 (naming the record).
    /// </summary>
    public static Cifar10Batch LoadBatchFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var file = Open(path);
        int count = CountRecords(path, file.Length, 0);
        var labels = new int[count];
        var features = new float[(long)count * ImageSize];
        ReadRecords(path, file, count, labels, features, 0);
        return new Cifar10Batch(labels, features);
    }

    private static Dataset LoadDataset(string name, string[] paths, CropFlip? augmentation)
    {
        // Size every file first so the whole split is allocated once, without intermediate copies.
        var counts = new int[paths.Length];
        long total = 0;
        for (int f = 0; f < paths.Length; f++)
        {
            long length = FileLength(paths[f]);
            counts[f] = CountRecords(paths[f], length, total);
            total += counts[f];
        }
        var labels = new int[total];
        var features = new float[total * ImageSize];
        int offset = 0;
        for (int f = 0; f < paths.Length; f++)
        {
            using var file = Open(paths[f]);
            if (file.Length != (long)counts[f] * RecordSize)
            {
                throw new DataFormatException(paths[f], "changed size while being loaded");
            }
            ReadRecords(paths[f], file, counts[f], labels, features, offset);
            offset += counts[f];
        }
        return new Dataset(name, features, labels, Channels, Height, Width, ClassCount) { Augmentation = augmentation };
    }

    private static long FileLength(string path)
    {
        using var file = Open(path);
        return file.Length;
    }

    // The number of records in a file of `length` bytes that follows `before` records of the same split.
    private static int CountRecords(string path, long length, long before)
    {
        if (length == 0)
        {
            throw new DataFormatException(path, $"is empty; expected a multiple of the {RecordSize}-byte record");
        }
        if (length % RecordSize != 0)
        {
            throw new DataFormatException(path,
                $"size {length} bytes is not a multiple of the {RecordSize}-byte record (truncated or not a CIFAR-10 binary batch)");
        }
        long count = length / RecordSize;
        if ((before + count) * ImageSize > Array.MaxLength)
        {
            throw new DataFormatException(path,
                $"{count} records make the split larger than {Array.MaxLength} feature values");
        }
        return (int)count;
    }

    private static void ReadRecords(string path, FileStream file, int count, int[] labels, float[] features, int offset)
    {
        var buffer = new byte[Math.Min(count, RecordsPerChunk) * RecordSize];
        var red = Tables[0];
        var green = Tables[1];
        var blue = Tables[2];
        try
        {
            for (int first = 0; first < count; first += RecordsPerChunk)
            {
                int records = Math.Min(RecordsPerChunk, count - first);
                int bytes = records * RecordSize;
                int read = file.ReadAtLeast(buffer.AsSpan(0, bytes), bytes, throwOnEndOfStream: false);
                if (read < bytes)
                {
                    throw new DataFormatException(path,
                        $"truncated while reading: ended {(long)first * RecordSize + read} bytes in, expected {(long)count * RecordSize}");
                }
                for (int r = 0; r < records; r++)
                {
                    int source = r * RecordSize;
                    int label = buffer[source];
                    if (label >= ClassCount)
                    {
                        int record = first + r;
                        throw new DataFormatException(path,
                            $"label {label} of record {record} (byte offset {(long)record * RecordSize}) is outside 0..{ClassCount - 1}");
                    }
                    int sample = offset + first + r;
                    labels[sample] = label;
                    var pixels = buffer.AsSpan(source + 1, ImageSize);
                    var target = features.AsSpan((int)((long)sample * ImageSize), ImageSize);
                    ConvertPlane(pixels[..PlaneSize], target[..PlaneSize], red);
                    ConvertPlane(pixels.Slice(PlaneSize, PlaneSize), target.Slice(PlaneSize, PlaneSize), green);
                    ConvertPlane(pixels[(2 * PlaneSize)..], target[(2 * PlaneSize)..], blue);
                }
            }
        }
        catch (IOException e)
        {
            throw new DataFormatException(path, $"read error ({DataFiles.OneLine(e.Message)})", e);
        }
    }

    private static void ConvertPlane(ReadOnlySpan<byte> pixels, Span<float> target, float[] table)
    {
        for (int i = 0; i < pixels.Length; i++)
        {
            target[i] = table[pixels[i]];
        }
    }

    private static FileStream Open(string path)
    {
        var file = DataFiles.OpenRead(path, "a CIFAR-10 batch file");
        if (!file.CanSeek)
        {
            file.Dispose();
            throw new DataFormatException(path, "is not a regular file");
        }
        return file;
    }

}
