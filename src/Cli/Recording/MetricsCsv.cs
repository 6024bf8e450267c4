using System.Globalization;
using ZeroFL.Federation.Simulation;

namespace ZeroFL.Cli.Recording;

/// <summary>What a round moved through a cluster's coordinator (all zero in process).</summary>
/// <param name="Silos">Workers that trained the round's last sample.</param>
/// <param name="Sent">Bytes the coordinator sent (model pieces).</param>
/// <param name="Received">Bytes it received (encoded uploads).</param>
public readonly record struct ClusterTraffic(int Silos, long Sent, long Received);

/// <summary>One column of metrics.csv: its name and its value in a round's row.</summary>
/// <param name="Name">The header.</param>
/// <param name="Value">The cell of a round (invariant culture; empty when the round has no value).</param>
public sealed record MetricsField(string Name, Func<RoundMetrics, ClusterTraffic, string> Value);

/// <summary>metrics.csv, one row per round: the one list of its columns, in file order, each with how its value is written.</summary>
public static class MetricsCsv
{
    private static readonly CultureInfo C = CultureInfo.InvariantCulture;

    /// <summary>The columns, in file order (the analyses' before the cluster's).</summary>
    public static IReadOnlyList<MetricsField> Fields { get; } =
    [
        new("round", (m, _) => m.Round.ToString(C)),
        new("test_accuracy", (m, _) => Optional(m.TestAccuracy)),
        new("train_loss", (m, _) => m.TrainLoss.ToString("G6", C)),
        new("upload_bytes", (m, _) => m.UploadBytes.ToString(C)),
        new("dense_upload_bytes", (m, _) => m.DenseUploadBytes.ToString(C)),
        new("train_flops", (m, _) => m.TrainFlops.ToString("G6", C)),
        new("dense_train_flops", (m, _) => m.DenseTrainFlops.ToString("G6", C)),
        new("seconds", (m, _) => m.Seconds.ToString("G6", C)),
        new("server_seconds", (m, _) => m.ServerSeconds.ToString("G6", C)),
        new("encode_seconds", (m, _) => m.EncodeSeconds.ToString("G6", C)),
        new("clients", (m, _) => m.Clients.ToString(C)),
        new("failed_clients", (m, _) => m.Failures.Count.ToString(C)),
        new("lr", (m, _) => m.LearningRate.ToString("G6", C)),
        new("test_accuracy_dense_weights", (m, _) => Optional(m.TestAccuracyDenseWeights)),
        new("val_accuracy", (m, _) => Optional(m.ValidationAccuracy)),
        new("val_loss", (m, _) => Optional(m.ValidationLoss)),
        new("silos", (_, t) => t.Silos.ToString(C)),
        new("coordinator_bytes_sent", (_, t) => t.Sent.ToString(C)),
        new("coordinator_bytes_received", (_, t) => t.Received.ToString(C)),
    ];

    /// <summary>The header line.</summary>
    public static string Header => string.Join(',', Fields.Select(f => f.Name));

    /// <summary><paramref name="name"/>, which must be one of the columns (for readers such as the report, so that a renamed column fails loudly).</summary>
    public static string Column(string name) => Fields.Any(f => f.Name == name) ? name : throw new InvalidOperationException($"metrics.csv has no column '{name}'");

    /// <summary>Round <paramref name="m"/>'s line.</summary>
    public static string Row(RoundMetrics m, ClusterTraffic traffic) => string.Join(',', Fields.Select(f => f.Value(m, traffic)));

    private static string Optional(double? value) => value?.ToString("G6", C) ?? string.Empty;
}

/// <summary>layers.csv: per sparse layer (layout order) of a round, its non-zero ratio after aggregation and its mask stability.</summary>
public static class LayersCsv
{
    /// <summary>The header line.</summary>
    public const string Header = "round,layer,nonzero_ratio,mask_stability";

    /// <summary><paramref name="name"/>, which must be one of the columns.</summary>
    public static string Column(string name) => Header.Split(',').Contains(name) ? name : throw new InvalidOperationException($"layers.csv has no column '{name}'");

    /// <summary>
    /// The rows of a round: one per sparse layer when the round has a non-zero ratio (sparse
    /// uploads) or a mask record; a value the round does not have is an empty cell.
    /// </summary>
    public static IEnumerable<string> Rows(RoundMetrics m, IReadOnlyList<string> sparseLayers)
    {
        var c = CultureInfo.InvariantCulture;
        var stability = m.MaskStability ?? [];
        for (int i = 0; i < sparseLayers.Count && (i < m.NonZeroRatios.Count || i < stability.Count); i++)
        {
            string ratio = i < m.NonZeroRatios.Count ? m.NonZeroRatios[i].ToString("G6", c) : string.Empty;
            string stable = i < stability.Count ? stability[i].ToString("G6", c) : string.Empty;
            yield return $"{m.Round.ToString(c)},{sparseLayers[i]},{ratio},{stable}";
        }
    }
}
