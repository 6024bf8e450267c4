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
    /// <summary>Throws <see cref="ArgumentException"/> with one line naming the first bad value.</summary>
    public void Validate()
    {
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
        Sampling.CountFor(Clients);
    }
}
