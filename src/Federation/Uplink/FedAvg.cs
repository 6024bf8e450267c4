namespace ZeroFL.Federation.Uplink;

/// <summary>The server's new global weights after a round and how much of each layer the clients' uploads covered.</summary>
public sealed class AggregationResult
{
    internal AggregationResult(UplinkStrategy strategy, long totalExamples, float[][] weights, double[] maskUnionRatio, double[] nonZeroRatio)
    {
        Strategy = strategy;
        TotalExamples = totalExamples;
        Weights = weights;
        MaskUnionRatio = maskUnionRatio;
        NonZeroRatio = nonZeroRatio;
    }

    /// <summary>The strategy of the uploads.</summary>
    public UplinkStrategy Strategy { get; }

    /// <summary>n = sum_k n_k.</summary>
    public long TotalExamples { get; }

    /// <summary>w_{t+1}: one new array per layer of the layout.</summary>
    public IReadOnlyList<float[]> Weights { get; }

    /// <summary>
    /// Per layer: positions sent by at least one client (the union of their masks) / layer size.
    /// 1 for layers sent whole. For sparse layers this is the paper's "non-zero ratio after
    /// aggregation" (Fig. 2), the overlap measure of the clients' top-K masks.
    /// </summary>
    public IReadOnlyList<double> MaskUnionRatio { get; }

    /// <summary>
    /// Per layer: non-zero entries of the aggregated upload sum_k (n_k/n) u^k / layer size. Equals
    /// <see cref="MaskUnionRatio"/> unless sent values are exactly zero or cancel.
    /// </summary>
    public IReadOnlyList<double> NonZeroRatio { get; }
}

/// <summary>
/// Server aggregation as a pure function (FedAvg weighted by example counts, ZEROFL.md). With
/// u^k the dense form of client k's upload (zero where it sent nothing) and n = sum_k n_k:
/// <list type="bullet">
/// <item>Dense, Swat, TopKWeights: w_{t+1} = sum_k (n_k/n) u^k, so an entry a client did not send
/// pulls towards zero, exactly the paper's rule.</item>
/// <item>DiffOnTopKWeights, TopKWeightsDiff: w_{t+1} = w_t + sum_k (n_k/n) u^k, so an unsent entry means no change.</item>
/// </list>
/// Sums are accumulated in double and rounded to float once per entry; device code that
/// accumulates in float (in another client order) agrees only to a tolerance, so compare with one.
/// </summary>
public static class FedAvg
{
    /// <summary>
    /// Aggregates one round's <paramref name="uploads"/> (all of one strategy, at least one, total
    /// examples positive) over <paramref name="global"/> (w_t, one array per layer; read only).
    /// </summary>
    public static AggregationResult Aggregate(ModelLayout layout, IReadOnlyList<float[]> global, IReadOnlyList<ClientUpload> uploads)
    {
        ArgumentNullException.ThrowIfNull(layout);
        ArgumentNullException.ThrowIfNull(uploads);
        layout.CheckWeights(global, "global weights");
        if (uploads.Count == 0)
        {
            throw new ArgumentException("aggregation needs at least one client upload", nameof(uploads));
        }
        var strategy = uploads[0].Strategy;
        long total = 0;
        for (int k = 0; k < uploads.Count; k++)
        {
            var upload = uploads[k] ?? throw new ArgumentException($"upload {k} is null", nameof(uploads));
            if (upload.Strategy != strategy)
            {
                throw new ArgumentException($"upload {k} uses {upload.Strategy.Name()}, upload 0 uses {strategy.Name()}", nameof(uploads));
            }
            if (upload.Layers.Count != layout.Layers.Count)
            {
                throw new ArgumentException($"upload {k} has {upload.Layers.Count} layers, the layout {layout.Layers.Count}", nameof(uploads));
            }
            for (int l = 0; l < layout.Layers.Count; l++)
            {
                if (upload.Layers[l].Layer.Name != layout.Layers[l].Name || upload.Layers[l].Layer.Length != layout.Layers[l].Length)
                {
                    throw new ArgumentException($"upload {k} layer {l} is {upload.Layers[l].Layer}, the layout has {layout.Layers[l]}", nameof(uploads));
                }
            }
            total += upload.ExampleCount;
        }
        if (total <= 0)
        {
            throw new ArgumentException("the uploads' example counts sum to zero", nameof(uploads));
        }

        bool differences = strategy.SendsDifferences();
        var weights = new float[layout.Layers.Count][];
        var unionRatio = new double[layout.Layers.Count];
        var nonZeroRatio = new double[layout.Layers.Count];
        for (int l = 0; l < layout.Layers.Count; l++)
        {
            int n = layout.Layers[l].Length;
            var sum = new double[n];
            var sent = new bool[n];
            foreach (var upload in uploads)
            {
                upload.Layers[l].AccumulateInto(sum, sent, (double)upload.ExampleCount / total);
            }
            var next = new float[n];
            int union = 0, nonZero = 0;
            for (int i = 0; i < n; i++)
            {
                union += sent[i] ? 1 : 0;
                nonZero += sum[i] != 0 ? 1 : 0;
                next[i] = differences ? (float)(global[l][i] + sum[i]) : (float)sum[i];
            }
            weights[l] = next;
            unionRatio[l] = (double)union / n;
            nonZeroRatio[l] = (double)nonZero / n;
        }
        return new AggregationResult(strategy, total, weights, unionRatio, nonZeroRatio);
    }
}
