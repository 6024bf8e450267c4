namespace ZeroFL.Federation.Partitioning;

/// <summary>
/// Label statistics of a partition: per-client label histograms, the federation's label
/// distribution (over every assigned sample) and label skew as total-variation distance
/// TV(p_k, p) = 1/2 * sum_c |p_k,c - p_c| between each client's label distribution and the
/// federation's. TV is 0 for a client that looks exactly like the whole and approaches 1 for a
/// client holding one rare class; IID clients of n samples still show about
/// sqrt(C / (2 pi n)) from sampling noise alone.
/// </summary>
public sealed class PartitionStatistics
{
    private PartitionStatistics(int[][] histogram, double[] global, double[] totalVariation)
    {
        LabelHistogram = histogram;
        GlobalDistribution = global;
        ClientTotalVariation = totalVariation;
    }

    /// <summary>Label counts per client: <c>[clients][classes]</c> (all of a client's samples, train and validation).</summary>
    public IReadOnlyList<int[]> LabelHistogram { get; }

    /// <summary>Label distribution over all assigned samples: <c>[classes]</c>, sums to 1.</summary>
    public IReadOnlyList<double> GlobalDistribution { get; }

    /// <summary>TV distance of each client's label distribution from <see cref="GlobalDistribution"/>: <c>[clients]</c>.</summary>
    public IReadOnlyList<double> ClientTotalVariation { get; }

    /// <summary>Mean of <see cref="ClientTotalVariation"/>: the partition's label skew, 0 = every client like the whole.</summary>
    public double MeanTotalVariation => ClientTotalVariation.Average();

    /// <summary>Smallest client (samples, train plus validation).</summary>
    public int MinClientSize => LabelHistogram.Min(h => h.Sum());

    /// <summary>Largest client (samples, train plus validation).</summary>
    public int MaxClientSize => LabelHistogram.Max(h => h.Sum());

    /// <summary>Computes the statistics of <paramref name="partition"/> (clients with no samples count as TV 0).</summary>
    public static PartitionStatistics Of(Partition partition)
    {
        ArgumentNullException.ThrowIfNull(partition);
        int classes = partition.ClassCount;
        var histogram = partition.Clients.Select(c => (int[])c.LabelCounts.Clone()).ToArray();
        var totals = new long[classes];
        foreach (var h in histogram)
        {
            for (int c = 0; c < classes; c++)
            {
                totals[c] += h[c];
            }
        }
        long all = totals.Sum();
        var global = totals.Select(t => all == 0 ? 0.0 : (double)t / all).ToArray();
        var tv = new double[histogram.Length];
        for (int k = 0; k < histogram.Length; k++)
        {
            long n = histogram[k].Sum(c => (long)c);
            if (n == 0)
            {
                continue;
            }
            double distance = 0;
            for (int c = 0; c < classes; c++)
            {
                distance += Math.Abs((double)histogram[k][c] / n - global[c]);
            }
            tv[k] = distance / 2;
        }
        return new PartitionStatistics(histogram, global, tv);
    }
}
