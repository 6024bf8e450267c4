namespace ZeroFL.Federation.Simulation;

/// <summary>Why a client was left out of a round.</summary>
public enum FailureKind
{
    /// <summary>Training threw or had no data.</summary>
    TrainingFailed,

    /// <summary>Training produced NaN or infinity (or a value its upload's value width cannot carry).</summary>
    NonFiniteUpdate,

    /// <summary>The upload did not pass the server's validation (or the worker's reply was inconsistent).</summary>
    MalformedUpload,

    /// <summary>The cluster worker training the client was lost (its silo died, failed a call or did not answer in time).</summary>
    WorkerLost,
}

/// <summary>The text of each <see cref="FailureKind"/> as metrics and summaries record it.</summary>
public static class FailureKinds
{
    /// <summary>The short reason written to summary.json ("training failed", "non-finite update", "malformed upload", "worker lost").</summary>
    public static string Reason(this FailureKind kind) => kind switch
    {
        FailureKind.TrainingFailed => "training failed",
        FailureKind.NonFiniteUpdate => "non-finite update",
        FailureKind.MalformedUpload => "malformed upload",
        FailureKind.WorkerLost => "worker lost",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "not a failure kind"),
    };
}

/// <summary>Why one client's Fit produced no upload the server can take: the kind and what happened.</summary>
/// <param name="Kind">The kind.</param>
/// <param name="Detail">What happened (one line).</param>
public sealed record FitFailure(FailureKind Kind, string Detail)
{
    /// <summary>This failure as client <paramref name="clientId"/>'s record of a round.</summary>
    public ClientFailure Of(int clientId) => new(clientId, Kind, Detail);
}

/// <summary>A client left out of a round: who, why, and the details.</summary>
/// <param name="ClientId">The client.</param>
/// <param name="Kind">Why.</param>
/// <param name="Detail">What happened.</param>
public sealed record ClientFailure(int ClientId, FailureKind Kind, string Detail)
{
    /// <summary>The kind's text (<see cref="FailureKinds.Reason"/>), the key of summary.json's failures_by_reason.</summary>
    public string Reason => Kind.Reason();

    /// <inheritdoc />
    public override string ToString() => $"client {ClientId}: {Reason}: {Detail}";
}
