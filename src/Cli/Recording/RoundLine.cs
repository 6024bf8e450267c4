using System.Text.Json.Serialization;
using ZeroFL.Federation.Simulation;

namespace ZeroFL.Cli.Recording;

/// <summary>The JSON object <c>run --json</c> prints for each round, in field order.</summary>
/// <param name="Round">1-based round.</param>
/// <param name="TestAccuracy">Test accuracy (top-K weights), when evaluated.</param>
/// <param name="TrainLoss">Clients' weighted mean training loss, null when not finite.</param>
/// <param name="UploadBytes">Bytes uploaded this round.</param>
/// <param name="UploadBytesTotal">Bytes uploaded so far.</param>
/// <param name="DenseUploadBytes">What this round's uploads would have taken densely.</param>
/// <param name="TrainFlops">Training FLOPs used.</param>
/// <param name="DenseTrainFlops">Dense-equivalent training FLOPs.</param>
/// <param name="Seconds">Wall time of the round.</param>
/// <param name="ServerSeconds">Of which server work.</param>
/// <param name="Clients">Clients sampled.</param>
/// <param name="FailedClients">Clients that failed.</param>
/// <param name="LearningRate">Client learning rate.</param>
/// <param name="NonZeroRatios">Per sparse layer: non-zero ratio after aggregation.</param>
/// <param name="TestAccuracyDenseWeights">Test accuracy with all weights, when evaluated.</param>
/// <param name="ValidationAccuracy">The round's clients' weighted validation accuracy.</param>
/// <param name="ValidationLoss">Their weighted validation loss.</param>
/// <param name="MaskStability">Per sparse layer: mask stability, on rounds that record masks.</param>
public sealed record RoundLine(
    [property: JsonPropertyName("round")] int Round,
    [property: JsonPropertyName("test_accuracy")] double? TestAccuracy,
    [property: JsonPropertyName("train_loss")] double? TrainLoss,
    [property: JsonPropertyName("upload_bytes")] long UploadBytes,
    [property: JsonPropertyName("upload_bytes_total")] long UploadBytesTotal,
    [property: JsonPropertyName("dense_upload_bytes")] long DenseUploadBytes,
    [property: JsonPropertyName("train_flops")] double TrainFlops,
    [property: JsonPropertyName("dense_train_flops")] double DenseTrainFlops,
    [property: JsonPropertyName("seconds")] double Seconds,
    [property: JsonPropertyName("server_seconds")] double ServerSeconds,
    [property: JsonPropertyName("clients")] int Clients,
    [property: JsonPropertyName("failed_clients")] int FailedClients,
    [property: JsonPropertyName("lr")] double LearningRate,
    [property: JsonPropertyName("nonzero_ratios")] IReadOnlyList<double> NonZeroRatios,
    [property: JsonPropertyName("test_accuracy_dense_weights")] double? TestAccuracyDenseWeights,
    [property: JsonPropertyName("val_accuracy")] double? ValidationAccuracy,
    [property: JsonPropertyName("val_loss")] double? ValidationLoss,
    [property: JsonPropertyName("mask_stability")] IReadOnlyList<double>? MaskStability)
{
    /// <summary>Round <paramref name="m"/>'s line, <paramref name="uploadTotal"/> bytes uploaded so far.</summary>
    public static RoundLine Of(RoundMetrics m, long uploadTotal) => new(
        m.Round, m.TestAccuracy, double.IsFinite(m.TrainLoss) ? m.TrainLoss : null, m.UploadBytes, uploadTotal, m.DenseUploadBytes, m.TrainFlops, m.DenseTrainFlops,
        m.Seconds, m.ServerSeconds, m.Clients, m.Failures.Count, m.LearningRate, m.NonZeroRatios, m.TestAccuracyDenseWeights, m.ValidationAccuracy, m.ValidationLoss, m.MaskStability);
}
