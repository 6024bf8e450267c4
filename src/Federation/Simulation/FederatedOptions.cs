using ZeroFL.Engine.Sparsity;
using ZeroFL.Federation.Uplink;

namespace ZeroFL.Federation.Simulation;

/// <summary>How clients' data is split.</summary>
public enum PartitionScheme
{
    /// <summary>Shuffled equal shares.</summary>
    Iid,

    /// <summary>Dirichlet (LDA) over labels with equal samples per client; large alpha = IID.</summary>
    Lda,

    /// <summary>One client per natural group of the data set (FEMNIST writer, Speech Commands speaker).</summary>
    Natural,
}

/// <summary>Everything a federated run needs besides the data (typed, validated by <see cref="Validate"/>).</summary>
/// <param name="Model">Model name from the catalogue.</param>
/// <param name="Clients">Number of simulated clients.</param>
/// <param name="Sampling">Clients trained per round.</param>
/// <param name="Rounds">Rounds.</param>
/// <param name="LocalEpochs">Local epochs per client per round.</param>
/// <param name="BatchSize">Local mini-batch size.</param>
/// <param name="LearningRate">Exponential decay of the client learning rate over the rounds.</param>
/// <param name="Momentum">Client SGD momentum (reset every round).</param>
/// <param name="WeightDecay">Client SGD weight decay.</param>
/// <param name="Uplink">Strategy, sparsity and mask ratio.</param>
/// <param name="Sparsity">SWAT settings of local training (sparsity 0 for the dense strategy).</param>
/// <param name="Partition">How data is split.</param>
/// <param name="Alpha">Dirichlet concentration for <see cref="PartitionScheme.Lda"/>.</param>
/// <param name="EvaluateEvery">Evaluate the global model on the test set every this many rounds (and after the last).</param>
/// <param name="Seed">Seed of initialisation, partition, sampling and shuffling.</param>
public sealed record FederatedOptions(
    string Model,
    int Clients,
    ClientSampling Sampling,
    int Rounds,
    int LocalEpochs,
    int BatchSize,
    ExponentialDecay LearningRate,
    float Momentum,
    float WeightDecay,
    UplinkSettings Uplink,
    SparsitySettings Sparsity,
    PartitionScheme Partition,
    double Alpha,
    int EvaluateEvery,
    int Seed)
{
    /// <summary>Faults injected into clients (for testing robustness); none by default.</summary>
    public FaultInjection Faults { get; init; } = FaultInjection.None;

    /// <summary>A round counts only if at least this many clients succeeded; otherwise it is run again with a fresh sample.</summary>
    public int MinSuccessfulClients { get; init; } = 1;

    /// <summary>Samples tried per round before the run stops with an error.</summary>
    public int MaxRoundAttempts { get; init; } = 5;

    /// <summary>Record the global model's top-K masks every this many rounds (after the initial model, round 0) for the mask stability; the paper records every 20.</summary>
    public int MaskRecordEvery { get; init; } = 20;

    /// <summary>How the server applies each round's aggregate (plain FedAvg by default).</summary>
    public ServerOptimizerSettings ServerOptimizer { get; init; } = ServerOptimizerSettings.FedAvg;

    /// <summary>Clients recompute the model's segments in the backward (<see cref="ZeroFL.Engine.Training.Trainer.RecomputesSegments"/>): a lower peak, the same bits.</summary>
    public bool RecomputeSegments { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> with one line naming the first bad value.</summary>
    public void Validate()
    {
        if (!(Faults.ClientFailureRate >= 0 && Faults.ClientFailureRate < 1) || !(Faults.CorruptUploadRate >= 0 && Faults.CorruptUploadRate < 1))
        {
            throw new ArgumentException($"fault rates must be in [0, 1), got client failures {Faults.ClientFailureRate} and corrupt uploads {Faults.CorruptUploadRate}");
        }
        if (MinSuccessfulClients < 1 || MaxRoundAttempts < 1)
        {
            throw new ArgumentException("the minimum of successful clients and the attempts per round must be at least 1");
        }
        if (MaskRecordEvery < 1)
        {
            throw new ArgumentException($"the mask record period must be at least 1, got {MaskRecordEvery}");
        }
        if (Clients < 1)
        {
            throw new ArgumentException($"clients must be at least 1, got {Clients}");
        }
        if (Rounds < 1 || LocalEpochs < 1 || BatchSize < 1 || EvaluateEvery < 1)
        {
            throw new ArgumentException("rounds, local epochs, batch size and evaluate-every must be at least 1");
        }
        if (!(Momentum >= 0 && Momentum < 1) || !(WeightDecay >= 0) || !float.IsFinite(WeightDecay))
        {
            throw new ArgumentException($"momentum must be in [0, 1) and weight decay non-negative, got {Momentum} and {WeightDecay}");
        }
        if (Partition == PartitionScheme.Lda && !(Alpha > 0 && double.IsFinite(Alpha)))
        {
            throw new ArgumentException($"alpha must be a positive number, got {Alpha}");
        }
        Sparsity.Validate();
        ServerOptimizer.Validate();
        Sampling.CountFor(Clients);
    }
}

/// <summary>
/// Faults injected into sampled clients, drawn per (seed, round, attempt, client): a client fails
/// its training with probability <see cref="ClientFailureRate"/>; otherwise its upload is corrupted
/// on the way to the server with probability <see cref="CorruptUploadRate"/> (and is then rejected
/// by the server's validation like any malformed upload).
/// </summary>
/// <param name="ClientFailureRate">Share of clients whose training throws.</param>
/// <param name="CorruptUploadRate">Share of the other clients whose upload arrives corrupted.</param>
public sealed record FaultInjection(double ClientFailureRate, double CorruptUploadRate)
{
    /// <summary>No faults.</summary>
    public static FaultInjection None { get; } = new(0, 0);
}
