using ZeroFL.Data;

namespace ZeroFL.Federation.Partitioning;

/// <summary>
/// Natural partition (FEMNIST by writer, Speech Commands by speaker): one client per distinct
/// group id, clients ordered by ascending group id, each holding every sample of its group.
/// </summary>
public static class NaturalPartitioner
{
    /// <summary>Splits <paramref name="data"/> by <paramref name="groups"/> (one group id per sample).</summary>
    public static Partition Create(Dataset data, ReadOnlySpan<int> groups, PartitionOptions options)
    {
        ArgumentNullException.ThrowIfNull(data);
        return Create(data.Labels, data.ClassCount, groups, options);
    }

    /// <summary>Splits samples with the given <paramref name="labels"/> by <paramref name="groups"/> (same length, any int ids).</summary>
    public static Partition Create(ReadOnlySpan<int> labels, int classCount, ReadOnlySpan<int> groups, PartitionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        PartitionBuilder.CheckLabels(labels, classCount);
        if (groups.Length != labels.Length)
        {
            throw new ArgumentException($"{groups.Length} group ids for {labels.Length} samples", nameof(groups));
        }
        if (labels.Length == 0)
        {
            throw new ArgumentException("cannot partition an empty data set", nameof(labels));
        }
        // Stable sort of sample indices by group id: each client's indices come out ascending.
        var order = new int[groups.Length];
        var keys = groups.ToArray();
        for (int i = 0; i < order.Length; i++)
        {
            order[i] = i;
        }
        var byGroupThenIndex = new long[order.Length];
        for (int i = 0; i < order.Length; i++)
        {
            byGroupThenIndex[i] = ((long)keys[i] << 32) | (uint)i;
        }
        Array.Sort(byGroupThenIndex, order);
        var parts = new List<int[]>();
        var ids = new List<int?>();
        int start = 0;
        while (start < order.Length)
        {
            int group = keys[order[start]];
            int end = start + 1;
            while (end < order.Length && keys[order[end]] == group)
            {
                end++;
            }
            parts.Add(order[start..end]);
            ids.Add(group);
            start = end;
        }
        return PartitionBuilder.Build("natural", labels, classCount, parts.ToArray(), ids.ToArray(), options);
    }
}
