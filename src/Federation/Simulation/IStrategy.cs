using ZeroFL.Engine.Devices;
using ZeroFL.Engine.Models;
using ZeroFL.Engine.Training;

namespace ZeroFL.Federation.Simulation;

/// <summary>What <see cref="IStrategy.AggregateFit"/> made of a round's results (Flower's aggregated parameters and metrics; the parameters are the global model, changed in place on the device).</summary>
/// <param name="Clients">The clients whose uploads reached the model, in sampled order.</param>
/// <param name="TrainLoss">Their mean training loss, weighted by examples.</param>
/// <param name="NonZeroRatios">Per sparse layer (layout order): non-zero entries of the aggregated upload / layer size; empty when uploads are not sparsified.</param>
public sealed record FitAggregate(IReadOnlyList<int> Clients, double TrainLoss, IReadOnlyList<double> NonZeroRatios);

/// <summary>The server-side (centralised) evaluation of the global model on the test set (Flower's evaluate).</summary>
/// <param name="TopK">With its top-K weights in sparse layers (what the clients train).</param>
/// <param name="AllWeights">With all its weights (sparse layers run dense); the same as <paramref name="TopK"/> for a dense model.</param>
public sealed record CentralEvaluation(Evaluation TopK, Evaluation AllWeights);

/// <summary>What a strategy works with: the run's options and device, the global model and its uplink layout, and the test set's evaluations.</summary>
/// <param name="Device">The server's device.</param>
/// <param name="Options">The run's options.</param>
/// <param name="ClientCount">Clients in the partition (ids 0 .. count-1).</param>
/// <param name="Global">The global model (its values live on <paramref name="Device"/>).</param>
/// <param name="Uplink">The uplink's view of the global model (layers, sparse layers).</param>
/// <param name="EvaluateTest">Evaluates the global model on the test set with its top-K weights.</param>
/// <param name="EvaluateTestAllWeights">The same with all its weights.</param>
public sealed record StrategyContext(
    ComputeDevice Device, FederatedOptions Options, int ClientCount, Model Global, UplinkModel Uplink, Func<Evaluation> EvaluateTest, Func<Evaluation> EvaluateTestAllWeights);

/// <summary>
/// A federated strategy in Flower's vocabulary: what the server does in a round, whatever runs the
/// clients' Fit (this process's device or a cluster's workers). The round loop
/// (<see cref="FederatedServer.RunRound"/>) calls, per round: <see cref="ConfigureFit"/> (for each
/// sample drawn), <see cref="AggregateFit"/> with the clients' validated results, then on the new
/// model <see cref="ConfigureEvaluate"/> and <see cref="AggregateEvaluate"/> (the clients' validation
/// splits) and <see cref="Evaluate"/> (the server's test set). The global model stays on the device:
/// a strategy changes it in place, never through the host.
/// </summary>
public interface IStrategy : IDisposable
{
    /// <summary>Device bytes the strategy holds (aggregation buffers, server optimizer state).</summary>
    long DeviceBytes { get; }

    /// <summary>
    /// Flower's configure_fit: the clients that train in sample <paramref name="attempt"/> (0-based;
    /// a round is sampled again when <see cref="AggregateFit"/> refuses a sample) of round
    /// <paramref name="round"/> (1-based), and their configuration.
    /// </summary>
    FitInstructions ConfigureFit(int round, int attempt);

    /// <summary>
    /// Flower's aggregate_fit: folds the sample's successful <paramref name="results"/> (each upload
    /// already validated against the model layout, in sampled order) into the global model.
    /// <paramref name="results"/> is produced as it is read (clients train, or arrive from workers,
    /// while the strategy aggregates the ones before) and can be read once; read it to its end:
    /// <paramref name="failures"/> (the sample's clients left out, typed) is complete only then.
    /// Returns the aggregate, or null when the sample must not reach the model (the round is then
    /// sampled again from the same global model).
    /// </summary>
    FitAggregate? AggregateFit(int round, IEnumerable<ClientResult> results, IReadOnlyList<ClientFailure> failures);

    /// <summary>Flower's configure_evaluate: the clients that evaluate the new global model on their validation splits (a client without one is skipped).</summary>
    IReadOnlyList<int> ConfigureEvaluate(int round, FitAggregate fit);

    /// <summary>Flower's aggregate_evaluate: one figure from the clients' evaluations, or null when there are none.</summary>
    Evaluation? AggregateEvaluate(int round, IReadOnlyList<Evaluation> results);

    /// <summary>Flower's evaluate: the server's own evaluation of the new global model (test set), or null on a round that does not evaluate.</summary>
    CentralEvaluation? Evaluate(int round);
}
