namespace ZeroFL.Federation.Partitioning;

/// <summary>How a data set was divided among clients: each client's train and validation indices and label counts.</summary>
public sealed class Partition
{
    internal Partition(string scheme, int sampleCount, int classCount, IReadOnlyList<ClientShard> clients)
    {
        Scheme = scheme;
        SampleCount = sampleCount;
        ClassCount = classCount;
        Clients = clients;
    }

    /// <summary>What made it, e.g. "iid", "dirichlet(alpha=1, prior=label-distribution)", "natural".</summary>
    public string Scheme { get; }

    /// <summary>Samples in the partitioned data set (some may be left unassigned, see the partitioners).</summary>
    public int SampleCount { get; }

    /// <summary>Classes of the data set.</summary>
    public int ClassCount { get; }

    /// <summary>The clients, by id.</summary>
    public IReadOnlyList<ClientShard> Clients { get; }

    /// <summary>Number of clients.</summary>
    public int ClientCount => Clients.Count;

    /// <summary>Samples given to some client (train plus validation).</summary>
    public int AssignedCount => Clients.Sum(c => c.Count);
}

/// <summary>
/// Settings every partitioner shares. <see cref="ValidationFraction"/> is the held-out share of each
/// client's data (ZeroFL: 10%): a client with n samples keeps floor(n * fraction) for validation,
/// the fraction read exactly as typed (so 10% of 19 is 1 and 10% of 20 is 2), chosen at random
/// (seeded by <see cref="Seed"/> and the client id).
/// </summary>
/// <param name="Seed">Seed of every random choice; the same seed gives the same partition.</param>
/// <param name="ValidationFraction">Held-out share of each client's samples, in [0, 1).</param>
public sealed record PartitionOptions(int Seed, double ValidationFraction = 0.1)
{
    /// <summary>Validation samples of a client with <paramref name="count"/> samples: floor(count * fraction).</summary>
    public int ValidationCount(int count)
    {
        if (!(ValidationFraction >= 0 && ValidationFraction < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(ValidationFraction), ValidationFraction, "validation fraction must be in [0, 1)");
        }
        return (int)ExactFraction.FloorOf(ExactFraction.ToDecimal(ValidationFraction), count);
    }
}
