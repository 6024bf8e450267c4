using System.Globalization;
using ZeroFL.Data;
using ZeroFL.Federation.Randomness;

namespace ZeroFL.Federation.Partitioning;

/// <summary>The mean of the class proportions a Dirichlet (LDA) partition draws for each client.</summary>
public enum DirichletPrior
{
    /// <summary>
    /// The data set's class distribution p: q ~ Dir(alpha * C * p). Clients look like the whole data
    /// set on average, so large alpha gives IID clients even for unbalanced data.
    /// </summary>
    LabelDistribution,

    /// <summary>Uniform: q ~ Dir(alpha, ..., alpha), exactly Flower's <c>create_lda_partitions</c>.</summary>
    Uniform,
}

/// <summary>
/// Latent Dirichlet allocation over labels with equal client sizes, as in the ZeroFL / Flower
/// baselines (Flower's <c>create_lda_partitions</c>; Hsu et al. 2019):
/// <list type="number">
/// <item>Each class's samples form a pool, shuffled (seeded).</item>
/// <item>Every client gets a quota of floor(M / N) samples; the M mod N left over stay unassigned,
/// so all clients have the same size and no sample is used twice.</item>
/// <item>Client by client: draw class proportions q ~ Dir(alpha * C * prior), C the class count
/// (<see cref="DirichletPrior"/>; for a balanced data set both priors are Flower's Dir(alpha, ..., alpha)).
/// Then fill the quota one sample at a time: draw a class from q restricted to the classes whose
/// pool is not yet empty (renormalised), take the next sample from that pool. If q has no mass
/// left on any non-empty class, the draw is uniform over the non-empty classes (Flower adds a
/// small epsilon to every non-empty class for the same purpose).</item>
/// </list>
/// alpha = +infinity skips the draw and uses q = prior. Large alpha gives IID clients; small alpha
/// gives clients dominated by one or two classes (late clients may be pushed towards the classes
/// that remain, a known property of equal-size LDA).
/// </summary>
public static class DirichletPartitioner
{
    /// <summary>Splits <paramref name="data"/> among <paramref name="clients"/> clients with concentration <paramref name="alpha"/>.</summary>
    public static Partition Create(Dataset data, int clients, double alpha, PartitionOptions options,
        DirichletPrior prior = DirichletPrior.LabelDistribution)
    {
        ArgumentNullException.ThrowIfNull(data);
        return Create(data.Labels, data.ClassCount, clients, alpha, options, prior);
    }

    /// <summary>Splits samples with the given <paramref name="labels"/> (values in 0..classCount-1) among <paramref name="clients"/> clients.</summary>
    public static Partition Create(ReadOnlySpan<int> labels, int classCount, int clients, double alpha, PartitionOptions options,
        DirichletPrior prior = DirichletPrior.LabelDistribution)
    {
        ArgumentNullException.ThrowIfNull(options);
        PartitionBuilder.CheckLabels(labels, classCount);
        PartitionBuilder.CheckClients(clients, labels.Length);
        if (!(alpha > 0))
        {
            throw new ArgumentOutOfRangeException(nameof(alpha), alpha, "Dirichlet concentration alpha must be positive");
        }
        var random = SplitMix64.For(options.Seed, RandomStream.DirichletPartition);
        int[][] pools = ShuffledClassPools(labels, classCount, ref random);
        var remaining = pools.Select(p => p.Length).ToArray();
        var concentration = Concentration(remaining, alpha, prior);
        int quota = labels.Length / clients;
        var parts = new int[clients][];
        double concentrationSum = concentration.Sum();
        for (int k = 0; k < clients; k++)
        {
            double[] q = double.IsPositiveInfinity(alpha)
                ? concentration.Select(a => a / concentrationSum).ToArray()
                : GammaSampler.Dirichlet(concentration, ref random);
            var part = new int[quota];
            for (int s = 0; s < quota; s++)
            {
                int c = DrawClass(q, remaining, ref random);
                remaining[c]--;
                part[s] = pools[c][remaining[c]];
            }
            parts[k] = part;
        }
        string scheme = string.Create(CultureInfo.InvariantCulture,
            $"dirichlet(alpha={alpha:R}, prior={(prior == DirichletPrior.Uniform ? "uniform" : "label-distribution")})");
        return PartitionBuilder.Build(scheme, labels, classCount, parts, null, options);
    }

    private static int[][] ShuffledClassPools(ReadOnlySpan<int> labels, int classCount, ref SplitMix64 random)
    {
        var counts = new int[classCount];
        foreach (int label in labels)
        {
            counts[label]++;
        }
        var pools = new int[classCount][];
        for (int c = 0; c < classCount; c++)
        {
            pools[c] = new int[counts[c]];
        }
        var fill = new int[classCount];
        for (int i = 0; i < labels.Length; i++)
        {
            pools[labels[i]][fill[labels[i]]++] = i;
        }
        for (int c = 0; c < classCount; c++)
        {
            random.Shuffle(pools[c]);
        }
        return pools;
    }

    /// <summary>alpha * C * p_c (label distribution) or alpha (uniform); 0 for a class with no samples.</summary>
    private static double[] Concentration(int[] classCounts, double alpha, DirichletPrior prior)
    {
        int classes = classCounts.Length;
        long total = classCounts.Sum(c => (long)c);
        var concentration = new double[classes];
        for (int c = 0; c < classes; c++)
        {
            if (classCounts[c] == 0)
            {
                continue;
            }
            double mean = prior == DirichletPrior.Uniform ? 1.0 : (double)classes * classCounts[c] / total;
            concentration[c] = double.IsPositiveInfinity(alpha) ? mean : alpha * mean;
        }
        return concentration;
    }

    /// <summary>A class drawn from q restricted to classes with samples left (uniform over those if q has no mass there).</summary>
    private static int DrawClass(double[] q, int[] remaining, ref SplitMix64 random)
    {
        double mass = 0;
        int nonEmpty = 0;
        int lastPositive = -1;
        for (int c = 0; c < q.Length; c++)
        {
            if (remaining[c] > 0)
            {
                nonEmpty++;
                if (q[c] > 0)
                {
                    mass += q[c];
                    lastPositive = c;
                }
            }
        }
        if (lastPositive < 0)
        {
            int pick = random.NextBelow(nonEmpty);
            for (int c = 0; c < q.Length; c++)
            {
                if (remaining[c] > 0 && pick-- == 0)
                {
                    return c;
                }
            }
        }
        double u = random.NextDouble() * mass;
        for (int c = 0; c < q.Length; c++)
        {
            if (remaining[c] > 0 && q[c] > 0)
            {
                u -= q[c];
                if (u < 0)
                {
                    return c;
                }
            }
        }
        return lastPositive; // rounding left u a hair above zero
    }
}
