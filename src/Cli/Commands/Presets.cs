using System.Globalization;
using System.Reflection;
using CommandLine;
using ZeroFL.Federation.Simulation;

namespace ZeroFL.Cli.Commands;

/// <summary>
/// One of the paper's experimental setups (ZeroFL, ICLR 2022, Table 1 and its setup section; see
/// ZEROFL.md). Values the paper does not state are this project's choices, named in
/// <see cref="Presets"/>.
/// </summary>
/// <param name="Name">Name on the command line.</param>
/// <param name="Dataset">Data set.</param>
/// <param name="Model">Model.</param>
/// <param name="Clients">Clients (natural partitions: set by the data, this value is only informative).</param>
/// <param name="ClientsPerRound">Clients sampled per round.</param>
/// <param name="Rounds">Federated rounds.</param>
/// <param name="LearningRateStart">Client learning rate of the first round.</param>
/// <param name="LearningRateEnd">Client learning rate of the last round (exponential decay).</param>
/// <param name="Partition">Partition scheme.</param>
/// <param name="Alpha">LDA concentration (1.0: non-IID, 1000: IID).</param>
/// <param name="Sparsity">SWAT sparsity of the main result.</param>
/// <param name="BatchSize">Local batch size (not stated in the paper).</param>
public sealed record Preset(
    string Name, string Dataset, string Model, int Clients, int ClientsPerRound, int Rounds,
    double LearningRateStart, double LearningRateEnd, PartitionScheme Partition, double Alpha, double Sparsity, int BatchSize);

/// <summary>
/// The presets of <c>zerofl run --preset NAME</c>. Every run uses 1 local epoch of SGD (momentum 0.9,
/// weight decay 5e-4: SWAT's CIFAR-10 settings, the paper states neither), the Top-K-Weights uplink
/// with r_mask 0.1 and fp32 values (the paper's), and ZeroFL's sparse-layer rule. The batch size is
/// not stated in the paper: 32.
/// </summary>
public static class Presets
{
    /// <summary>Every preset.</summary>
    public static IReadOnlyList<Preset> All { get; } =
    [
        new("cifar10-resnet18", "cifar10", "resnet18", 100, 10, 700, 0.1, 0.01, PartitionScheme.Lda, 1.0, 0.9, 32),
        new("speech-resnet18", "speech-commands", "resnet18", 100, 10, 200, 0.01, 0.001, PartitionScheme.Lda, 1.0, 0.9, 32),
        new("femnist-cnn", "femnist", "femnist-cnn", 3597, 35, 1000, 0.004, 0.001, PartitionScheme.Natural, 1.0, 0.95, 32),
    ];

    /// <summary>The preset called <paramref name="name"/>; a usage error names the known ones.</summary>
    public static Preset Find(string name) =>
        All.FirstOrDefault(p => p.Name == name)
        ?? throw new UsageException($"unknown --preset '{name}' (expected one of: {string.Join(", ", All.Select(p => p.Name))})");

    /// <summary>
    /// Sets every option of <paramref name="options"/> that the preset defines, except those given
    /// on the command line <paramref name="args"/> (as <c>--name value</c> or <c>--name=value</c>).
    /// </summary>
    public static void Apply(Preset preset, RunOptions options, IReadOnlyList<string> args)
    {
        var given = new HashSet<string>(StringComparer.Ordinal);
        foreach (var arg in args)
        {
            if (arg.StartsWith("--", StringComparison.Ordinal))
            {
                int equals = arg.IndexOf('=');
                given.Add(equals < 0 ? arg[2..] : arg[2..equals]);
            }
        }
        void Set(string option, object value)
        {
            if (given.Contains(option))
            {
                return;
            }
            var property = typeof(RunOptions).GetProperties()
                .Single(p => p.GetCustomAttribute<OptionAttribute>()?.LongName == option);
            property.SetValue(options, Convert.ChangeType(value, property.PropertyType, CultureInfo.InvariantCulture));
        }
        Set("dataset", preset.Dataset);
        Set("model", preset.Model);
        Set("clients", preset.Clients);
        Set("clients-per-round", preset.ClientsPerRound);
        Set("rounds", preset.Rounds);
        Set("lr-start", preset.LearningRateStart);
        Set("lr-end", preset.LearningRateEnd);
        Set("partition", preset.Partition);
        Set("alpha", preset.Alpha);
        Set("sparsity", preset.Sparsity);
        Set("batch-size", preset.BatchSize);
        Set("local-epochs", 1);
        Set("momentum", 0.9f);
        Set("weight-decay", 5e-4f);
        Set("strategy", "topk-weights");
        Set("mask-ratio", 0.1);
        Set("upload-values", "fp32");
    }
}
