using ZeroFL.Engine.Modules;

namespace ZeroFL.Federation.Simulation;

/// <summary>What one attempt of a round asks of the sampled clients (Flower's configure-fit).</summary>
/// <param name="Round">1-based round.</param>
/// <param name="Attempt">0-based sample of the round (a round is re-sampled when too few clients succeed).</param>
/// <param name="Clients">The sampled client ids, in sampled order.</param>
/// <param name="LearningRate">The clients' learning rate this round.</param>
public sealed record FitInstructions(int Round, int Attempt, IReadOnlyList<int> Clients, float LearningRate);

/// <summary>
/// Where the sampled clients' Fit runs: on this process's device (<see cref="InProcessFit"/>) or on
/// the workers of a cluster. The server validates and aggregates what comes back, in sampled order,
/// whatever the backend; only where training happens changes.
/// </summary>
public interface IFitBackend
{
    /// <summary>
    /// Trains each client of <paramref name="instructions"/> from the global model
    /// <paramref name="global"/> and yields exactly one result per client, in sampled order. Results
    /// may be produced lazily (the in-process backend trains a client when its result is asked for).
    /// A client whose training or upload failed yields a result with no upload and its typed <see cref="FitFailure"/>.
    /// </summary>
    IEnumerable<ClientResult> Fit(FitInstructions instructions, ParameterStore global);
}
