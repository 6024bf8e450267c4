namespace ZeroFL.Data;

/// <summary>
/// Fashion-MNIST: 60,000 training and 10,000 test 28x28 gray images of 10 clothing classes.
/// Debian installs it with <c>apt-get install dataset-fashion-mnist</c> as gzipped IDX files in
/// <see cref="DefaultDirectory"/>.
/// </summary>
public static class FashionMnist
{
    /// <summary>Where the Debian package <c>dataset-fashion-mnist</c> puts the IDX files.</summary>
    public const string DefaultDirectory = "/usr/share/datasets/fashion-mnist";

    /// <summary>The IDX layout, normalisation and install hint of Fashion-MNIST.</summary>
    public static IdxDatasetSpec Spec { get; } = new(
        "fashion-mnist", "Fashion-MNIST", Normalization.FashionMnist, 10, DefaultDirectory,
        "install it with 'sudo apt-get install dataset-fashion-mnist' or pass --data-dir DIR with the IDX files");

    /// <summary>
    /// Loads the train and test sets from <paramref name="dataDir"/>, or from
    /// <see cref="DefaultDirectory"/> when it is null. Features are <c>[N, 1, 28, 28]</c>, normalised.
    /// </summary>
    public static TrainTestSplit Load(string? dataDir = null) => IdxDataset.Load(Spec, dataDir);
}

/// <summary>
/// MNIST handwritten digits: the same IDX layout as Fashion-MNIST with its own normalisation. No
/// Debian package ships it, so a directory must be given.
/// </summary>
public static class Mnist
{
    /// <summary>The IDX layout, normalisation and install hint of MNIST.</summary>
    public static IdxDatasetSpec Spec { get; } = new(
        "mnist", "MNIST", Normalization.Mnist, 10, null,
        "pass --data-dir DIR with the MNIST IDX files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz])");

    /// <summary>Loads the train and test sets from <paramref name="dataDir"/>. Features are <c>[N, 1, 28, 28]</c>, normalised.</summary>
    public static TrainTestSplit Load(string? dataDir) => IdxDataset.Load(Spec, dataDir);
}
