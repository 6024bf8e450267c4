using System.Text.Json.Serialization;
using ZeroFL.Federation.Simulation;

namespace ZeroFL.Cli.Recording;

/// <summary>summary.json of a run: its final figures, totals, failures and setup, in file order.</summary>
public sealed record RunSummary
{
    private static readonly HashSet<string> FieldNames = typeof(RunSummary).GetProperties()
        .Select(p => p.GetCustomAttributes(typeof(JsonPropertyNameAttribute), false).OfType<JsonPropertyNameAttribute>().FirstOrDefault()?.Name)
        .OfType<string>().ToHashSet();

    /// <summary><paramref name="name"/>, which must be one of summary.json's fields (for readers such as the report, so that a renamed field fails loudly).</summary>
    public static string Field(string name) => FieldNames.Contains(name) ? name : throw new InvalidOperationException($"summary.json has no field '{name}'");

    /// <summary>Last test accuracy measured (top-K weights).</summary>
    [JsonPropertyName("final_test_accuracy")]
    public required double? FinalTestAccuracy { get; init; }

    /// <summary>Last test accuracy measured with all weights.</summary>
    [JsonPropertyName("final_test_accuracy_dense_weights")]
    public required double? FinalTestAccuracyDenseWeights { get; init; }

    /// <summary>Last weighted validation accuracy of a round's clients.</summary>
    [JsonPropertyName("final_val_accuracy")]
    public required double? FinalValidationAccuracy { get; init; }

    /// <summary>Last weighted validation loss of a round's clients.</summary>
    [JsonPropertyName("final_val_loss")]
    public required double? FinalValidationLoss { get; init; }

    /// <summary>--val-fraction.</summary>
    [JsonPropertyName("val_fraction")]
    public required double ValidationFraction { get; init; }

    /// <summary>--mask-record-every.</summary>
    [JsonPropertyName("mask_record_every")]
    public required int MaskRecordEvery { get; init; }

    /// <summary>Rounds.</summary>
    [JsonPropertyName("rounds")]
    public required int Rounds { get; init; }

    /// <summary>Clients.</summary>
    [JsonPropertyName("clients")]
    public required int Clients { get; init; }

    /// <summary>Clients sampled per round.</summary>
    [JsonPropertyName("clients_per_round")]
    public required int ClientsPerRound { get; init; }

    /// <summary>Uplink strategy name.</summary>
    [JsonPropertyName("strategy")]
    public required string Strategy { get; init; }

    /// <summary>SWAT sparsity (0 under --strategy dense).</summary>
    [JsonPropertyName("sparsity")]
    public required float Sparsity { get; init; }

    /// <summary>r_mask as given.</summary>
    [JsonPropertyName("mask_ratio")]
    public required double MaskRatio { get; init; }

    /// <summary>Bytes uploaded.</summary>
    [JsonPropertyName("uplink_bytes_total")]
    public required long UplinkBytesTotal { get; init; }

    /// <summary>Bytes dense uploads would have taken.</summary>
    [JsonPropertyName("dense_uplink_bytes_total")]
    public required long DenseUplinkBytesTotal { get; init; }

    /// <summary>Their ratio, null when nothing would have been uploaded.</summary>
    [JsonPropertyName("uplink_fraction_of_dense")]
    public double? UplinkFractionOfDense => DenseUplinkBytesTotal > 0 ? (double)UplinkBytesTotal / DenseUplinkBytesTotal : null;

    /// <summary>--uplink-encoding.</summary>
    [JsonPropertyName("uplink_encoding")]
    public required string UplinkEncoding { get; init; }

    /// <summary>The server optimizer: <see cref="ServerOptimizerSummary.Of"/>.</summary>
    [JsonPropertyName("server_optimizer")]
    public required object ServerOptimizer { get; init; }

    /// <summary>--upload-values.</summary>
    [JsonPropertyName("upload_values")]
    public required string UploadValues { get; init; }

    /// <summary>Bytes uploaded per layer layout, by name (ordinal order).</summary>
    [JsonPropertyName("uplink_bytes_by_encoding")]
    public required IReadOnlyDictionary<string, long> UplinkBytesByEncoding { get; init; }

    /// <summary>Training FLOPs used.</summary>
    [JsonPropertyName("train_flops_total")]
    public required double TrainFlopsTotal { get; init; }

    /// <summary>Dense-equivalent training FLOPs.</summary>
    [JsonPropertyName("dense_train_flops_total")]
    public required double DenseTrainFlopsTotal { get; init; }

    /// <summary>Wall seconds of the rounds (over every resumed part).</summary>
    [JsonPropertyName("wall_seconds")]
    public required double WallSeconds { get; init; }

    /// <summary>Server seconds.</summary>
    [JsonPropertyName("server_seconds_total")]
    public required double ServerSecondsTotal { get; init; }

    /// <summary>Client failures.</summary>
    [JsonPropertyName("failed_clients")]
    public int FailedClients => Failures.Count;

    /// <summary>Client failures counted by reason (<see cref="FailureKinds.Reason"/>).</summary>
    [JsonPropertyName("failures_by_reason")]
    public required IReadOnlyDictionary<string, int> FailuresByReason { get; init; }

    /// <summary>Client failures, "round R: client C: reason: detail".</summary>
    [JsonPropertyName("failures")]
    public required IReadOnlyList<string> Failures { get; init; }

    /// <summary>--preset, or null.</summary>
    [JsonPropertyName("preset")]
    public required string? Preset { get; init; }

    /// <summary>Model name.</summary>
    [JsonPropertyName("model")]
    public required string Model { get; init; }

    /// <summary>Training set name.</summary>
    [JsonPropertyName("dataset")]
    public required string Dataset { get; init; }

    /// <summary>Partition scheme, as the partition describes itself.</summary>
    [JsonPropertyName("partition")]
    public required string Partition { get; init; }

    /// <summary>LDA alpha.</summary>
    [JsonPropertyName("alpha")]
    public required double Alpha { get; init; }

    /// <summary>Local epochs.</summary>
    [JsonPropertyName("local_epochs")]
    public required int LocalEpochs { get; init; }

    /// <summary>Batch size.</summary>
    [JsonPropertyName("batch_size")]
    public required int BatchSize { get; init; }

    /// <summary>First round's client learning rate.</summary>
    [JsonPropertyName("lr_start")]
    public required double LearningRateStart { get; init; }

    /// <summary>Last round's client learning rate.</summary>
    [JsonPropertyName("lr_end")]
    public required double LearningRateEnd { get; init; }

    /// <summary>--topk-period.</summary>
    [JsonPropertyName("topk_period")]
    public required int TopKPeriod { get; init; }

    /// <summary>--recompute.</summary>
    [JsonPropertyName("recompute")]
    public required bool Recompute { get; init; }

    /// <summary>Sparse layers, layout order.</summary>
    [JsonPropertyName("sparse_layers")]
    public required IReadOnlyList<string> SparseLayers { get; init; }

    /// <summary>Bytes of one dense upload.</summary>
    [JsonPropertyName("dense_upload_bytes_per_client")]
    public required long DenseUploadBytesPerClient { get; init; }

    /// <summary>The coordinator's device.</summary>
    [JsonPropertyName("device")]
    public required string Device { get; init; }

    /// <summary>Device bytes the server held.</summary>
    [JsonPropertyName("device_bytes")]
    public required long DeviceBytes { get; init; }

    /// <summary>What the coordinator was connected to, or null in process.</summary>
    [JsonPropertyName("cluster")]
    public required string? Cluster { get; init; }

    /// <summary>The silos that served the run: "silo" and "device" each.</summary>
    [JsonPropertyName("silos")]
    public required IReadOnlyList<IReadOnlyDictionary<string, string>> Silos { get; init; }

    /// <summary>Bytes the coordinator sent to workers.</summary>
    [JsonPropertyName("coordinator_bytes_sent_total")]
    public required long CoordinatorBytesSentTotal { get; init; }

    /// <summary>Bytes the coordinator received from workers.</summary>
    [JsonPropertyName("coordinator_bytes_received_total")]
    public required long CoordinatorBytesReceivedTotal { get; init; }

    /// <summary>Seed.</summary>
    [JsonPropertyName("seed")]
    public required int Seed { get; init; }
}

/// <summary>summary.json's server_optimizer: its name, and for the adaptive ones their settings.</summary>
public static class ServerOptimizerSummary
{
    /// <summary>FedAvg: the name only.</summary>
    /// <param name="Name">fedavg.</param>
    public sealed record Plain([property: JsonPropertyName("name")] string Name);

    /// <summary>FedAdam, FedYogi, FedAdagrad: the settings used (beta2 null for fedadagrad, which has none).</summary>
    /// <param name="Name">The optimizer.</param>
    /// <param name="LearningRate">eta.</param>
    /// <param name="Beta1">First-moment decay.</param>
    /// <param name="Beta2">Second-moment decay, or null.</param>
    /// <param name="Tau">Adaptivity constant.</param>
    public sealed record Adaptive(
        [property: JsonPropertyName("name")] string Name,
        [property: JsonPropertyName("lr")] double LearningRate,
        [property: JsonPropertyName("beta1")] double Beta1,
        [property: JsonPropertyName("beta2")] double? Beta2,
        [property: JsonPropertyName("tau")] double Tau);

    /// <summary>The entry for <paramref name="s"/>.</summary>
    public static object Of(ServerOptimizerSettings s) => s.IsAdaptive
        ? new Adaptive(s.Kind.Name(), s.LearningRate, s.Beta1, s.Kind == ServerOptimizerKind.FedAdagrad ? null : s.Beta2, s.Tau)
        : new Plain(s.Kind.Name());
}
