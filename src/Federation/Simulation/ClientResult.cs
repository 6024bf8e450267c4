using ZeroFL.Federation.Uplink;

namespace ZeroFL.Federation.Simulation;

/// <summary>What one client's local training measured (Flower's fit metrics).</summary>
/// <param name="TrainLoss">Mean training loss over its local steps (NaN when it did not train).</param>
/// <param name="TrainFlops">Conv/linear FLOPs actually used by local training.</param>
/// <param name="DenseTrainFlops">The same layers' dense-equivalent FLOPs.</param>
/// <param name="EncodeSeconds">Time spent encoding the upload (top-K, CSR, copy to host).</param>
public sealed record FitMetrics(double TrainLoss, double TrainFlops, double DenseTrainFlops, double EncodeSeconds = 0)
{
    /// <summary>A client that did not train: NaN loss, no FLOPs.</summary>
    public static FitMetrics None { get; } = new(double.NaN, 0, 0);
}

/// <summary>
/// What one client's Fit returned (Flower's FitRes): its upload, its example count and its
/// metrics; or, when it has no upload the server can take, the typed reason.
/// </summary>
/// <param name="ClientId">The client.</param>
/// <param name="Upload">The upload, or null when the client failed.</param>
/// <param name="Examples">Training examples (n_k).</param>
/// <param name="Metrics">What its training measured.</param>
/// <param name="Failure">Why the client failed, or null.</param>
public sealed record ClientResult(int ClientId, WireUpload? Upload, int Examples, FitMetrics Metrics, FitFailure? Failure)
{
    /// <summary>A client that trained and sent <paramref name="upload"/>.</summary>
    public static ClientResult Succeeded(int clientId, WireUpload upload, int examples, FitMetrics metrics) => new(clientId, upload, examples, metrics, null);

    /// <summary>A client that failed (<paramref name="kind"/>, <paramref name="detail"/>), with what it measured before.</summary>
    public static ClientResult Failed(int clientId, FailureKind kind, string detail, int examples = 0, FitMetrics? metrics = null) =>
        new(clientId, null, examples, metrics ?? FitMetrics.None, new FitFailure(kind, detail));

    /// <summary>Why the server leaves this client out: its failure, or a training failure when it sent no upload and said nothing; null when it has an upload.</summary>
    public ClientFailure? FailureRecord() => Upload is not null ? null : (Failure ?? new FitFailure(FailureKind.TrainingFailed, "no upload")).Of(ClientId);
}
