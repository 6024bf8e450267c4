namespace ZeroFL.Federation.Partitioning;

/// <summary>
/// One client's share of a data set: indices into the data set's samples, split into training and
/// held-out validation samples. Index arrays are sorted ascending and must not be modified (they
/// are handed out without copying, like <see cref="ZeroFL.Data.Dataset.Labels"/>).
/// </summary>
public sealed class ClientShard
{
    internal ClientShard(int id, int? group, int[] train, int[] validation, int[] labelCounts, int[] trainLabelCounts)
    {
        Id = id;
        Group = group;
        Train = train;
        Validation = validation;
        LabelCounts = labelCounts;
        TrainLabelCounts = trainLabelCounts;
    }

    /// <summary>The client's number, 0..ClientCount-1 (its position in <see cref="Partition.Clients"/>).</summary>
    public int Id { get; }

    /// <summary>The group id (writer, speaker) of a natural partition; null for IID and Dirichlet partitions.</summary>
    public int? Group { get; }

    /// <summary>Training sample indices, ascending. Read only.</summary>
    public int[] Train { get; }

    /// <summary>Held-out validation sample indices, ascending (floor(Count * validation fraction) of them). Read only.</summary>
    public int[] Validation { get; }

    /// <summary>All of the client's samples (train plus validation).</summary>
    public int Count => Train.Length + Validation.Length;

    /// <summary>How many of all the client's samples (train and validation) carry each label: <c>[ClassCount]</c>. Read only.</summary>
    public int[] LabelCounts { get; }

    /// <summary>How many of the training samples carry each label: <c>[ClassCount]</c>. Read only.</summary>
    public int[] TrainLabelCounts { get; }

    /// <summary>All the client's sample indices (train and validation), ascending; a new array.</summary>
    public int[] AllIndices()
    {
        var all = new int[Count];
        Train.CopyTo(all, 0);
        Validation.CopyTo(all, Train.Length);
        Array.Sort(all);
        return all;
    }
}
