using ZeroFL.Data;
using ZeroFL.Federation.Partitioning;

namespace ZeroFL.Tests.Federation;

public sealed class PartitionTests
{
    /// <summary>Balanced labels like CIFAR-10's training set: <paramref name="perClass"/> of each class, interleaved.</summary>
    internal static int[] BalancedLabels(int classes, int perClass) =>
        Enumerable.Range(0, classes * perClass).Select(i => i % classes).ToArray();

    private static readonly PartitionOptions Seed1 = new(Seed: 1);

    private static void AssertEachSampleAtMostOnce(Partition partition, bool exactlyOnce)
    {
        var seen = new int[partition.SampleCount];
        foreach (var client in partition.Clients)
        {
            foreach (int i in client.Train.Concat(client.Validation))
            {
                seen[i]++;
            }
        }
        Assert.That(seen, Is.All.LessThanOrEqualTo(1), "a sample given twice");
        if (exactlyOnce)
        {
            Assert.That(seen, Is.All.EqualTo(1), "a sample left out");
        }
    }

    private static int[][] ClientIndexLists(Partition p) => p.Clients.Select(c => c.AllIndices()).ToArray();

    [Test]
    public void IidDealsEverySampleOnceWithSizesDifferingByAtMostOne()
    {
        var labels = BalancedLabels(10, 101).Take(1003).ToArray();
        var p = IidPartitioner.Create(labels, 10, 10, Seed1);
        Assert.That(p.ClientCount, Is.EqualTo(10));
        Assert.That(p.Clients.Select(c => c.Count), Is.EqualTo(new[] { 101, 101, 101, 100, 100, 100, 100, 100, 100, 100 }));
        AssertEachSampleAtMostOnce(p, exactlyOnce: true);
        Assert.That(p.Clients.Select(c => c.Id), Is.EqualTo(Enumerable.Range(0, 10)));
        Assert.That(p.Clients.Select(c => c.Group), Is.All.Null);
        Assert.That(p.Scheme, Is.EqualTo("iid"));
    }

    [Test]
    public void IidIsDeterministicForASeedAndDiffersAcrossSeeds()
    {
        var labels = BalancedLabels(10, 100);
        var a = IidPartitioner.Create(labels, 10, 20, new PartitionOptions(7));
        var b = IidPartitioner.Create(labels, 10, 20, new PartitionOptions(7));
        var c = IidPartitioner.Create(labels, 10, 20, new PartitionOptions(8));
        Assert.That(ClientIndexLists(a), Is.EqualTo(ClientIndexLists(b)));
        Assert.That(a.Clients.Select(x => x.Validation), Is.EqualTo(b.Clients.Select(x => x.Validation)));
        Assert.That(ClientIndexLists(a), Is.Not.EqualTo(ClientIndexLists(c)));
    }

    [Test]
    public void DatasetOverloadUsesTheLabels()
    {
        var labels = BalancedLabels(3, 20);
        var data = new Dataset("toy", new float[labels.Length * 4], labels, 1, 2, 2, 3);
        var fromData = IidPartitioner.Create(data, 4, Seed1);
        var fromLabels = IidPartitioner.Create(labels, 3, 4, Seed1);
        Assert.That(ClientIndexLists(fromData), Is.EqualTo(ClientIndexLists(fromLabels)));
        foreach (var client in fromData.Clients)
        {
            Assert.That(client.LabelCounts, Is.EqualTo(data.LabelCounts(client.AllIndices())));
            Assert.That(client.TrainLabelCounts, Is.EqualTo(data.LabelCounts(client.Train)));
        }
    }

    [TestCase(0.1)]
    [TestCase(1.0)]
    [TestCase(1000.0)]
    public void DirichletGivesEqualClientsAndUsesEachSampleAtMostOnce(double alpha)
    {
        var labels = BalancedLabels(10, 1000).Take(10_007).ToArray();
        var p = DirichletPartitioner.Create(labels, 10, 20, alpha, Seed1);
        Assert.That(p.Clients.Select(c => c.Count), Is.All.EqualTo(500), "floor(10007 / 20) each");
        Assert.That(p.AssignedCount, Is.EqualTo(10_000), "the remainder stays unassigned");
        AssertEachSampleAtMostOnce(p, exactlyOnce: false);
        foreach (var client in p.Clients)
        {
            for (int c = 0; c < 10; c++)
            {
                Assert.That(client.LabelCounts[c], Is.EqualTo(client.AllIndices().Count(i => labels[i] == c)));
            }
        }
    }

    [Test]
    public void DirichletIsDeterministicForASeedAndDiffersAcrossSeeds()
    {
        var labels = BalancedLabels(10, 200);
        var a = DirichletPartitioner.Create(labels, 10, 10, 1.0, new PartitionOptions(5));
        var b = DirichletPartitioner.Create(labels, 10, 10, 1.0, new PartitionOptions(5));
        var c = DirichletPartitioner.Create(labels, 10, 10, 1.0, new PartitionOptions(6));
        Assert.That(ClientIndexLists(a), Is.EqualTo(ClientIndexLists(b)));
        Assert.That(ClientIndexLists(a), Is.Not.EqualTo(ClientIndexLists(c)));
        Assert.That(a.Scheme, Is.EqualTo("dirichlet(alpha=1, prior=label-distribution)"));
    }

    [Test]
    public void SkewGrowsAsAlphaFalls()
    {
        // CIFAR-10-like: 10 balanced classes, 100 clients of 500 samples (the paper's setting).
        var labels = BalancedLabels(10, 5000);
        double Skew(Partition p) => PartitionStatistics.Of(p).MeanTotalVariation;
        double iid = Skew(IidPartitioner.Create(labels, 10, 100, Seed1));
        double a1000 = Skew(DirichletPartitioner.Create(labels, 10, 100, 1000, Seed1));
        double a1 = Skew(DirichletPartitioner.Create(labels, 10, 100, 1.0, Seed1));
        double a01 = Skew(DirichletPartitioner.Create(labels, 10, 100, 0.1, Seed1));
        TestContext.Out.WriteLine($"mean TV: iid {iid:F3}, alpha=1000 {a1000:F3}, alpha=1 {a1:F3}, alpha=0.1 {a01:F3}");
        // 500 IID samples over 10 classes: sampling noise alone gives TV about sqrt(10 / (2 pi 500)) = 0.056.
        Assert.That(iid, Is.LessThan(0.08));
        Assert.That(a1000, Is.LessThan(0.08), "alpha = 1000 is IID");
        Assert.That(a1000, Is.EqualTo(iid).Within(0.02));
        Assert.That(a1, Is.GreaterThan(0.25), "alpha = 1 is skewed");
        Assert.That(a01, Is.GreaterThan(a1 + 0.2), "alpha = 0.1 is very skewed");
        Assert.That(a01, Is.GreaterThan(0.6));
    }

    [Test]
    public void InfiniteAlphaUsesThePriorItself()
    {
        var labels = BalancedLabels(10, 500);
        var p = DirichletPartitioner.Create(labels, 10, 10, double.PositiveInfinity, Seed1);
        Assert.That(PartitionStatistics.Of(p).MeanTotalVariation, Is.LessThan(0.08));
        Assert.That(p.Clients.Select(c => c.Count), Is.All.EqualTo(500));
    }

    [Test]
    public void PriorsAgreeOnBalancedDataAndDifferOnUnbalancedData()
    {
        var balanced = BalancedLabels(10, 300);
        var byLabels = DirichletPartitioner.Create(balanced, 10, 10, 1.0, Seed1, DirichletPrior.LabelDistribution);
        var uniform = DirichletPartitioner.Create(balanced, 10, 10, 1.0, Seed1, DirichletPrior.Uniform);
        Assert.That(ClientIndexLists(byLabels), Is.EqualTo(ClientIndexLists(uniform)), "both are Dir(alpha, ..., alpha) on balanced data");

        // Class 0 holds 70% of the samples: with a uniform prior, large alpha still skews clients
        // (early clients take a uniform mix, late ones get what is left); the label prior stays IID.
        var unbalanced = Enumerable.Range(0, 10_000).Select(i => i % 10 < 7 ? 0 : 1 + i % 3).ToArray();
        double labelPrior = PartitionStatistics.Of(DirichletPartitioner.Create(unbalanced, 4, 20, 1000, Seed1)).MeanTotalVariation;
        double uniformPrior = PartitionStatistics.Of(DirichletPartitioner.Create(unbalanced, 4, 20, 1000, Seed1, DirichletPrior.Uniform)).MeanTotalVariation;
        Assert.That(labelPrior, Is.LessThan(0.05));
        Assert.That(uniformPrior, Is.GreaterThan(0.3));
    }

    [Test]
    public void ClassesAbsentFromTheDataAreNeverDrawn()
    {
        var labels = BalancedLabels(3, 100); // classes 3 and 4 have no samples
        var p = DirichletPartitioner.Create(labels, 5, 6, 0.5, Seed1);
        Assert.That(p.Clients.Select(c => c.Count), Is.All.EqualTo(50));
        Assert.That(p.Clients.Select(c => c.LabelCounts[3] + c.LabelCounts[4]), Is.All.Zero);
        AssertEachSampleAtMostOnce(p, exactlyOnce: true);
    }

    [Test]
    public void NaturalGivesOneClientPerGroupInGroupOrder()
    {
        int[] groups = [42, 7, 42, -3, 7, 7, 1000, 42];
        int[] labels = [0, 1, 2, 0, 1, 1, 2, 2];
        var p = NaturalPartitioner.Create(labels, 3, groups, new PartitionOptions(1, ValidationFraction: 0));
        Assert.That(p.Clients.Select(c => c.Group), Is.EqualTo(new int?[] { -3, 7, 42, 1000 }));
        Assert.That(p.Clients.Select(c => c.Train), Is.EqualTo(new[] { new[] { 3 }, new[] { 1, 4, 5 }, new[] { 0, 2, 7 }, new[] { 6 } }));
        Assert.That(p.Clients[2].LabelCounts, Is.EqualTo(new[] { 1, 0, 2 }));
        AssertEachSampleAtMostOnce(p, exactlyOnce: true);
        Assert.That(p.Scheme, Is.EqualTo("natural"));
    }

    [Test]
    public void ValidationIsTheFloorOfATenthOfEachClient()
    {
        // Groups of 9, 10, 19, 20 and 105 samples.
        int[] sizes = [9, 10, 19, 20, 105];
        var groups = sizes.SelectMany((n, g) => Enumerable.Repeat(g, n)).ToArray();
        var labels = groups.Select((_, i) => i % 4).ToArray();
        var p = NaturalPartitioner.Create(labels, 4, groups, new PartitionOptions(3));
        Assert.That(p.Clients.Select(c => c.Validation.Length), Is.EqualTo(new[] { 0, 1, 1, 2, 10 }));
        foreach (var client in p.Clients)
        {
            Assert.That(client.Train.Intersect(client.Validation), Is.Empty);
            Assert.That(client.Train, Is.Ordered.Ascending);
            Assert.That(client.Validation, Is.Ordered.Ascending);
            Assert.That(client.AllIndices(), Is.EqualTo(Enumerable.Range(0, labels.Length).Where(i => groups[i] == client.Group)));
        }
        // The validation choice is random: not just the first samples of the group.
        Assert.That(p.Clients[4].Validation, Is.Not.EqualTo(p.Clients[4].AllIndices().Take(10)));
    }

    [Test]
    public void ValidationFractionIsReadExactly()
    {
        var options = new PartitionOptions(0, ValidationFraction: 0.3);
        Assert.That(options.ValidationCount(10), Is.EqualTo(3), "0.3 * 10 is 3, not 2.9999999999999996");
        Assert.That(new PartitionOptions(0).ValidationCount(500), Is.EqualTo(50));
        Assert.Throws<ArgumentOutOfRangeException>(() => new PartitionOptions(0, 1.0).ValidationCount(10));
    }

    [Test]
    public void BadArgumentsAreRejected()
    {
        var labels = BalancedLabels(2, 5);
        Assert.Throws<ArgumentException>(() => IidPartitioner.Create(labels, 2, 11, Seed1));
        Assert.Throws<ArgumentOutOfRangeException>(() => IidPartitioner.Create(labels, 2, 0, Seed1));
        Assert.Throws<ArgumentException>(() => IidPartitioner.Create([0, 2], 2, 1, Seed1));
        Assert.Throws<ArgumentOutOfRangeException>(() => DirichletPartitioner.Create(labels, 2, 2, 0, Seed1));
        Assert.Throws<ArgumentOutOfRangeException>(() => DirichletPartitioner.Create(labels, 2, 2, double.NaN, Seed1));
        Assert.Throws<ArgumentException>(() => NaturalPartitioner.Create(labels, 2, [1, 2], Seed1));
    }

    [Test]
    public void StatisticsHistogramAndSizes()
    {
        int[] groups = [0, 0, 0, 0, 1, 1];
        int[] labels = [0, 0, 1, 1, 0, 0];
        var stats = PartitionStatistics.Of(NaturalPartitioner.Create(labels, 2, groups, new PartitionOptions(0, 0)));
        Assert.That(stats.LabelHistogram, Is.EqualTo(new[] { new[] { 2, 2 }, new[] { 2, 0 } }));
        Assert.That(stats.GlobalDistribution, Is.EqualTo(new[] { 4 / 6.0, 2 / 6.0 }).Within(1e-12));
        // Client 0: |1/2 - 2/3| + |1/2 - 1/3| = 1/3, TV 1/6; client 1: |1 - 2/3| + |0 - 1/3| = 2/3, TV 1/3.
        Assert.That(stats.ClientTotalVariation, Is.EqualTo(new[] { 1 / 6.0, 1 / 3.0 }).Within(1e-12));
        Assert.That(stats.MeanTotalVariation, Is.EqualTo(0.25).Within(1e-12));
        Assert.That(stats.MinClientSize, Is.EqualTo(2));
        Assert.That(stats.MaxClientSize, Is.EqualTo(4));
    }
}
