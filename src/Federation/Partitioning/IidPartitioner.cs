using ZeroFL.Data;
using ZeroFL.Federation.Randomness;

namespace ZeroFL.Federation.Partitioning;

/// <summary>
/// IID partition: shuffle all samples (seeded) and deal them into N parts of floor(M / N) samples;
/// the M mod N left over go one each to the first clients, so sizes differ by at most one and
/// every sample is used exactly once.
/// </summary>
public static class IidPartitioner
{
    /// <summary>Splits <paramref name="data"/> among <paramref name="clients"/> clients.</summary>
    public static Partition Create(Dataset data, int clients, PartitionOptions options)
    {
        ArgumentNullException.ThrowIfNull(data);
        return Create(data.Labels, data.ClassCount, clients, options);
    }

    /// <summary>Splits samples with the given <paramref name="labels"/> (values in 0..classCount-1) among <paramref name="clients"/> clients.</summary>
    public static Partition Create(ReadOnlySpan<int> labels, int classCount, int clients, PartitionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        PartitionBuilder.CheckLabels(labels, classCount);
        PartitionBuilder.CheckClients(clients, labels.Length);
        var order = new int[labels.Length];
        for (int i = 0; i < order.Length; i++)
        {
            order[i] = i;
        }
        var random = SplitMix64.For(options.Seed, RandomStream.IidPartition);
        random.Shuffle(order);
        int baseSize = labels.Length / clients;
        int extra = labels.Length % clients;
        var parts = new int[clients][];
        int start = 0;
        for (int k = 0; k < clients; k++)
        {
            int size = baseSize + (k < extra ? 1 : 0);
            parts[k] = order[start..(start + size)];
            start += size;
        }
        return PartitionBuilder.Build("iid", labels, classCount, parts, null, options);
    }
}
