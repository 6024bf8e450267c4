namespace ZeroFL.Data;

/// <summary>A training set and its test set.</summary>
/// <param name="Train">The training samples.</param>
/// <param name="Test">The test samples.</param>
/// <param name="TrainGroups">
/// For data sets with a natural partition (FEMNIST writers, Speech Commands speakers): one group id
/// per training sample, ids 0..groups-1 in order of first appearance; null otherwise.
/// </param>
public sealed record TrainTestSplit(Dataset Train, Dataset Test, int[]? TrainGroups = null)
{
    /// <summary>The two data sets, for <c>var (train, test) = split</c>.</summary>
    public void Deconstruct(out Dataset train, out Dataset test)
    {
        train = Train;
        test = Test;
    }
}

/// <summary>
/// Describes an MNIST-like data set stored as four IDX files (train/t10k images and labels) of
/// single-channel unsigned-byte images.
/// </summary>
/// <param name="Name">Short name used in data set names and on the command line, e.g. "fashion-mnist".</param>
/// <param name="DisplayName">Name for messages, e.g. "Fashion-MNIST".</param>
/// <param name="Normalization">Pixel normalisation constants.</param>
/// <param name="ClassCount">Number of classes; every label must be below it.</param>
/// <param name="DefaultDirectory">Where to look when no directory is given, or null when there is no default.</param>
/// <param name="InstallHint">How to get the data, ending a one-line not-found message.</param>
public sealed record IdxDatasetSpec(
    string Name, string DisplayName, Normalization Normalization, int ClassCount,
    string? DefaultDirectory, string InstallHint);

/// <summary>
/// Loads MNIST-like data sets from a directory of IDX files. Accepted names for each file are the
/// standard ones (<c>train-images-idx3-ubyte</c>, <c>train-labels-idx1-ubyte</c>,
/// <c>t10k-images-idx3-ubyte</c>, <c>t10k-labels-idx1-ubyte</c>), the dotted variant some archives
/// unpack to (<c>train-images.idx3-ubyte</c>), each plain or with <c>.gz</c>; the Debian package
/// <c>dataset-fashion-mnist</c> ships the standard names gzipped.
/// </summary>
public static class IdxDataset
{
    private static readonly (string Stem, string Kind)[] Roles =
    [
        ("train-images", "idx3-ubyte"),
        ("train-labels", "idx1-ubyte"),
        ("t10k-images", "idx3-ubyte"),
        ("t10k-labels", "idx1-ubyte"),
    ];

    /// <summary>The data sets that <see cref="Load(string, string?)"/> knows by name.</summary>
    public static IReadOnlyList<IdxDatasetSpec> Known { get; } = [FashionMnist.Spec, Mnist.Spec];

    /// <summary>
    /// Loads the data set called <paramref name="name"/> ("fashion-mnist" or "mnist") from
    /// <paramref name="dataDir"/>, or from its default directory when that is null.
    /// </summary>
    public static TrainTestSplit Load(string name, string? dataDir)
    {
        var spec = Known.FirstOrDefault(s => string.Equals(s.Name, name, StringComparison.OrdinalIgnoreCase))
            ?? throw new ArgumentException(
                $"unknown data set '{name}' (known: {string.Join(", ", Known.Select(s => s.Name))})", nameof(name));
        return Load(spec, dataDir);
    }

    /// <summary>
    /// Loads train and test sets described by <paramref name="spec"/> from <paramref name="dataDir"/>,
    /// or from the spec's default directory when that is null. Throws
    /// <see cref="DataNotFoundException"/> when a file is missing and <see cref="DataFormatException"/>
    /// when one is unusable.
    /// </summary>
    public static TrainTestSplit Load(IdxDatasetSpec spec, string? dataDir)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var paths = FindFiles(spec, dataDir);
        var train = Build(spec, "train", paths[0], paths[1]);
        var test = Build(spec, "test", paths[2], paths[3]);
        if (test.Height != train.Height || test.Width != train.Width)
        {
            throw new DataFormatException(paths[2],
                $"images are {test.Height}x{test.Width} but the training images are {train.Height}x{train.Width}");
        }
        return new TrainTestSplit(train, test);
    }

    /// <summary>
    /// The four file paths (train images, train labels, test images, test labels) for
    /// <paramref name="spec"/> in <paramref name="dataDir"/> (or the default directory), or throws
    /// <see cref="DataNotFoundException"/> with one line saying where it looked and how to get the data.
    /// </summary>
    public static string[] FindFiles(IdxDatasetSpec spec, string? dataDir)
    {
        ArgumentNullException.ThrowIfNull(spec);
        string? directory = string.IsNullOrWhiteSpace(dataDir) ? spec.DefaultDirectory : dataDir;
        if (directory is null)
        {
            throw new DataNotFoundException($"{spec.DisplayName}: no data directory given; {spec.InstallHint}");
        }
        string where = dataDir is null ? $"{directory} (the default; no --data-dir given)" : directory;
        if (!Directory.Exists(directory))
        {
            throw new DataNotFoundException(
                $"{spec.DisplayName} not found: directory {where} does not exist; {spec.InstallHint}", directory);
        }

        var paths = new string[Roles.Length];
        var missing = new List<string>();
        for (int r = 0; r < Roles.Length; r++)
        {
            var (stem, kind) = Roles[r];
            string? found = Candidates(stem, kind)
                .Select(name => Path.Combine(directory, name))
                .FirstOrDefault(File.Exists);
            if (found is null)
            {
                missing.Add($"{stem}-{kind}[.gz]");
            }
            else
            {
                paths[r] = found;
            }
        }
        if (missing.Count > 0)
        {
            throw new DataNotFoundException(
                $"{spec.DisplayName} not found in {where}: no {string.Join(", ", missing)}; {spec.InstallHint}", directory);
        }
        return paths;
    }

    private static IEnumerable<string> Candidates(string stem, string kind)
    {
        foreach (string name in new[] { $"{stem}-{kind}", $"{stem}.{kind}" })
        {
            yield return name;
            yield return name + ".gz";
        }
    }

    private static Dataset Build(IdxDatasetSpec spec, string split, string imagesPath, string labelsPath)
    {
        var (images, labels) = IdxReader.ReadLabelledImages(imagesPath, labelsPath);
        for (int i = 0; i < labels.Length; i++)
        {
            if (labels[i] >= spec.ClassCount)
            {
                throw new DataFormatException(labelsPath,
                    $"label {labels[i]} of sample {i} is outside 0..{spec.ClassCount - 1}");
            }
        }
        return Dataset.FromBytes($"{spec.Name}/{split}", images.Pixels, labels,
            images.Rows, images.Cols, spec.ClassCount, spec.Normalization);
    }
}
