namespace ZeroFL.Data;

/// <summary>
/// Mini-batch order over a set of sample indices (all of a data set, or one federated client's
/// index list). <see cref="StartEpoch"/> shuffles the indices with a generator seeded from
/// (seed, epoch), so the same seed and epoch always give the same order and different epochs give
/// different orders. Every index appears exactly once per epoch; the last batch may be partial.
/// After <see cref="StartEpoch"/>, <see cref="Batch"/> hands out slices of one internal buffer and
/// <see cref="GatherBatch"/> copies samples into caller-owned buffers, so the per-batch path
/// allocates nothing.
/// </summary>
public sealed class BatchSampler
{
    private readonly int[] source;
    private readonly int[] order;
    private readonly ulong seed;
    private readonly bool shuffle;

    /// <summary>A sampler over all samples 0..<paramref name="count"/>-1.</summary>
    public BatchSampler(int count, int batchSize, int seed, bool shuffle = true)
        : this(Enumerable.Range(0, CheckCount(count)).ToArray(), batchSize, seed, shuffle)
    {
    }

    /// <summary>A sampler over the given sample indices (copied; repeats are kept as given).</summary>
    public BatchSampler(ReadOnlySpan<int> indices, int batchSize, int seed, bool shuffle = true)
        : this(indices.ToArray(), batchSize, seed, shuffle)
    {
    }

    private BatchSampler(int[] indices, int batchSize, int seed, bool shuffle)
    {
        if (batchSize <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "batch size must be positive");
        }
        foreach (int index in indices)
        {
            if (index < 0)
            {
                throw new ArgumentOutOfRangeException(nameof(indices), index, "sample indices must not be negative");
            }
        }
        source = indices;
        order = (int[])source.Clone();
        BatchSize = batchSize;
        this.seed = unchecked((ulong)(uint)seed);
        this.shuffle = shuffle;
        Epoch = -1;
    }

    /// <summary>Samples per full batch.</summary>
    public int BatchSize { get; }

    /// <summary>Samples per epoch (the number of indices).</summary>
    public int SampleCount => source.Length;

    /// <summary>Batches per epoch, the last one partial when SampleCount is not a multiple of BatchSize.</summary>
    public int BatchCount => (SampleCount + BatchSize - 1) / BatchSize;

    /// <summary>The epoch set by the last <see cref="StartEpoch"/>, or -1 before the first.</summary>
    public int Epoch { get; private set; }

    /// <summary>The sample order of the current epoch, <c>[SampleCount]</c>.</summary>
    public ReadOnlySpan<int> Order => order;

    /// <summary>
    /// Arranges the indices for <paramref name="epoch"/>: a Fisher-Yates shuffle driven by a
    /// generator seeded from (seed, epoch), or the given order when shuffling is off.
    /// Allocates nothing.
    /// </summary>
    public void StartEpoch(int epoch)
    {
        if (epoch < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(epoch), epoch, "epoch must not be negative");
        }
        source.CopyTo(order, 0);
        if (shuffle)
        {
            var random = new SplitMix64(seed << 32 ^ (uint)epoch);
            for (int i = order.Length - 1; i > 0; i--)
            {
                int j = random.NextBelow(i + 1);
                (order[i], order[j]) = (order[j], order[i]);
            }
        }
        Epoch = epoch;
    }

    /// <summary>The sample indices of batch <paramref name="batch"/> (0..BatchCount-1) of the current epoch.</summary>
    public ReadOnlySpan<int> Batch(int batch)
    {
        if (Epoch < 0)
        {
            throw new InvalidOperationException("call StartEpoch before asking for batches");
        }
        if ((uint)batch >= (uint)BatchCount)
        {
            throw new ArgumentOutOfRangeException(nameof(batch), batch, $"epoch has {BatchCount} batches");
        }
        int start = batch * BatchSize;
        return order.AsSpan(start, Math.Min(BatchSize, order.Length - start));
    }

    /// <summary>A new array with the whole order of <paramref name="epoch"/> (convenience; allocates).</summary>
    public int[] EpochOrder(int epoch)
    {
        StartEpoch(epoch);
        return order.ToArray();
    }

    /// <summary>
    /// Copies the samples at <paramref name="indices"/> into <paramref name="features"/>
    /// (<c>[indices.Length, Channels, Height, Width]</c>, at least indices.Length * SampleSize long)
    /// and their labels into <paramref name="labels"/> (at least indices.Length long). Allocates nothing.
    /// </summary>
    public static void GatherBatch(Dataset dataset, ReadOnlySpan<int> indices, Span<float> features, Span<int> labels)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        int size = dataset.SampleSize;
        if (features.Length < (long)indices.Length * size)
        {
            throw new ArgumentException(
                $"feature buffer holds {features.Length} values, the batch needs {(long)indices.Length * size}", nameof(features));
        }
        if (labels.Length < indices.Length)
        {
            throw new ArgumentException(
                $"label buffer holds {labels.Length} values, the batch needs {indices.Length}", nameof(labels));
        }
        var all = dataset.Features.AsSpan();
        var allLabels = dataset.Labels;
        for (int i = 0; i < indices.Length; i++)
        {
            int index = indices[i];
            if ((uint)index >= (uint)dataset.Count)
            {
                throw new ArgumentOutOfRangeException(nameof(indices), index, $"{dataset.Name} has {dataset.Count} samples");
            }
            all.Slice(index * size, size).CopyTo(features.Slice(i * size, size));
            labels[i] = allLabels[index];
        }
    }

    private static int CheckCount(int count) => count >= 0
        ? count
        : throw new ArgumentOutOfRangeException(nameof(count), count, "sample count must not be negative");

    /// <summary>SplitMix64: small, fast, fully specified, so orders never change with the runtime.</summary>
    private struct SplitMix64(ulong state)
    {
        private ulong state = state;

        public ulong Next()
        {
            ulong z = state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }

        /// <summary>Uniform in 0..bound-1 without modulo bias (Lemire's multiply-shift with rejection).</summary>
        public int NextBelow(int bound)
        {
            uint range = (uint)bound;
            uint threshold = (0u - range) % range;
            while (true)
            {
                ulong product = (Next() >> 32) * range;
                if ((uint)product >= threshold)
                {
                    return (int)(product >> 32);
                }
            }
        }
    }
}
