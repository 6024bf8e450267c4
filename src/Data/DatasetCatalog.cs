namespace ZeroFL.Data;

/// <summary>
/// The data sets the command line knows by name, each loaded from its own real format. Data sets
/// with a natural partition (writers, speakers) return their group ids in
/// <see cref="TrainTestSplit.TrainGroups"/>.
/// </summary>
public static class DatasetCatalog
{
    /// <summary>Names accepted by <see cref="Load"/>.</summary>
    public static IReadOnlyList<string> Names { get; } = ["fashion-mnist", "mnist", "cifar10", "femnist", "speech-commands"];

    /// <summary>The data sets whose training samples carry natural group ids (writers, speakers).</summary>
    public static IReadOnlySet<string> WithNaturalGroups { get; } = new HashSet<string> { "femnist", "speech-commands" };

    /// <summary>
    /// Loads data set <paramref name="name"/> from <paramref name="dataDir"/> (null: its default
    /// place, where it has one). <paramref name="seed"/> drives any random choice a loader makes.
    /// Throws <see cref="ArgumentException"/> for an unknown name, <see cref="DataNotFoundException"/>
    /// and <see cref="DataFormatException"/> as the loaders do.
    /// </summary>
    public static TrainTestSplit Load(string name, string? dataDir, int seed = 0) => name switch
    {
        "fashion-mnist" => FashionMnist.Load(dataDir),
        "mnist" => Mnist.Load(dataDir),
        "cifar10" => Cifar10.Load(dataDir),
        "femnist" => Femnist.Load(dataDir),
        "speech-commands" => SpeechCommands.Load(dataDir, seed),
        _ => throw new ArgumentException($"unknown dataset '{name}' (expected one of: {string.Join(", ", Names)})"),
    };
}
