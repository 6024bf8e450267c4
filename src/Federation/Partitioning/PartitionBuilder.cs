using ZeroFL.Federation.Randomness;

namespace ZeroFL.Federation.Partitioning;

/// <summary>Shared steps of the partitioners: argument checks and turning client index lists into shards.</summary>
internal static class PartitionBuilder
{
    public static void CheckLabels(ReadOnlySpan<int> labels, int classCount)
    {
        if (classCount <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(classCount), classCount, "class count must be positive");
        }
        for (int i = 0; i < labels.Length; i++)
        {
            if ((uint)labels[i] >= (uint)classCount)
            {
                throw new ArgumentException($"label {labels[i]} of sample {i} is outside 0..{classCount - 1}", nameof(labels));
            }
        }
    }

    public static void CheckClients(int clients, int samples)
    {
        if (clients <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(clients), clients, "client count must be positive");
        }
        if (clients > samples)
        {
            throw new ArgumentException($"cannot split {samples} samples among {clients} clients (each needs at least one)", nameof(clients));
        }
    }

    /// <summary>
    /// Shards from per-client index lists (each list is taken over and reordered): a seeded random
    /// floor(n * fraction) of each client's samples become its validation set; both sets are sorted.
    /// </summary>
    public static Partition Build(string scheme, ReadOnlySpan<int> labels, int classCount, int[][] clientIndices,
        int?[]? groups, PartitionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var shards = new ClientShard[clientIndices.Length];
        for (int k = 0; k < clientIndices.Length; k++)
        {
            int[] indices = clientIndices[k];
            int validationCount = options.ValidationCount(indices.Length);
            var random = SplitMix64.For(options.Seed, RandomStream.ValidationSplit, k);
            // Partial Fisher-Yates: the first validationCount slots get a uniform random subset.
            for (int i = 0; i < validationCount; i++)
            {
                int j = i + random.NextBelow(indices.Length - i);
                (indices[i], indices[j]) = (indices[j], indices[i]);
            }
            int[] validation = indices[..validationCount];
            int[] train = indices[validationCount..];
            Array.Sort(validation);
            Array.Sort(train);
            var trainCounts = Count(labels, train, classCount);
            var allCounts = Count(labels, validation, classCount);
            for (int c = 0; c < classCount; c++)
            {
                allCounts[c] += trainCounts[c];
            }
            shards[k] = new ClientShard(k, groups?[k], train, validation, allCounts, trainCounts);
        }
        return new Partition(scheme, labels.Length, classCount, shards);
    }

    private static int[] Count(ReadOnlySpan<int> labels, int[] indices, int classCount)
    {
        var counts = new int[classCount];
        foreach (int index in indices)
        {
            counts[labels[index]]++;
        }
        return counts;
    }
}
