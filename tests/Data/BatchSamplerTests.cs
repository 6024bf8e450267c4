using ZeroFL.Data;

namespace ZeroFL.Tests.Data;

public sealed class BatchSamplerTests
{
    [Test]
    public void SameSeedAndEpochGiveSameOrder()
    {
        var a = new BatchSampler(1000, 32, seed: 42);
        var b = new BatchSampler(1000, 32, seed: 42);
        Assert.That(a.EpochOrder(3), Is.EqualTo(b.EpochOrder(3)));
        Assert.That(a.EpochOrder(0), Is.EqualTo(new BatchSampler(1000, 32, seed: 42).EpochOrder(0)));
    }

    [Test]
    public void OrderIsAFixedFunctionOfSeedAndEpoch()
    {
        // Pins the generator: a change here silently changes every experiment's batches.
        Assert.That(new BatchSampler(10, 4, seed: 1).EpochOrder(0), Is.EqualTo(new[] { 9, 8, 4, 2, 0, 6, 3, 5, 1, 7 }));
        Assert.That(new BatchSampler(10, 4, seed: 1).EpochOrder(7), Is.EqualTo(new[] { 5, 7, 6, 9, 2, 3, 0, 4, 8, 1 }));
    }

    [Test]
    public void DifferentEpochsAndSeedsDiffer()
    {
        var sampler = new BatchSampler(1000, 32, seed: 42);
        var epoch0 = sampler.EpochOrder(0);
        var epoch1 = sampler.EpochOrder(1);
        Assert.That(epoch1, Is.Not.EqualTo(epoch0));
        Assert.That(new BatchSampler(1000, 32, seed: 43).EpochOrder(0), Is.Not.EqualTo(epoch0));
        Assert.That(epoch0, Is.Not.EqualTo(Enumerable.Range(0, 1000).ToArray()), "shuffled");
    }

    [Test]
    public void ShuffleIsRoughlyUniform()
    {
        const int count = 10, epochs = 20_000;
        var sampler = new BatchSampler(count, 4, seed: 11);
        var firsts = new int[count];
        for (int epoch = 0; epoch < epochs; epoch++)
        {
            sampler.StartEpoch(epoch);
            firsts[sampler.Order[0]]++;
        }
        // Each index leads about 2000 times; 5 standard deviations is about 210.
        Assert.That(firsts, Is.All.InRange(1790, 2210));
    }

    [TestCase(1000, 32)]
    [TestCase(10, 3)]
    [TestCase(7, 7)]
    [TestCase(5, 64)]
    [TestCase(1, 1)]
    public void EachIndexExactlyOncePerEpochWithPartialLastBatch(int count, int batchSize)
    {
        var sampler = new BatchSampler(count, batchSize, seed: 5);
        Assert.That(sampler.BatchCount, Is.EqualTo((count + batchSize - 1) / batchSize));
        for (int epoch = 0; epoch < 3; epoch++)
        {
            sampler.StartEpoch(epoch);
            var seen = new List<int>();
            for (int b = 0; b < sampler.BatchCount; b++)
            {
                var batch = sampler.Batch(b);
                int expected = b < sampler.BatchCount - 1 ? batchSize : count - batchSize * (sampler.BatchCount - 1);
                Assert.That(batch.Length, Is.EqualTo(expected), $"batch {b}");
                seen.AddRange(batch.ToArray());
            }
            Assert.That(seen, Is.EquivalentTo(Enumerable.Range(0, count)), $"epoch {epoch}");
        }
    }

    [Test]
    public void SamplesOnlyTheGivenIndexList()
    {
        int[] client = [5, 17, 3, 99, 42, 8, 61];
        var sampler = new BatchSampler(client, 3, seed: 9);
        client[0] = -7; // the sampler keeps its own copy
        Assert.That(sampler.SampleCount, Is.EqualTo(7));
        Assert.That(sampler.BatchCount, Is.EqualTo(3));
        sampler.StartEpoch(2);
        var seen = new List<int>();
        for (int b = 0; b < sampler.BatchCount; b++)
        {
            seen.AddRange(sampler.Batch(b).ToArray());
        }
        Assert.That(seen, Is.EquivalentTo(new[] { 5, 17, 3, 99, 42, 8, 61 }));
        Assert.That(sampler.Batch(2).Length, Is.EqualTo(1));
    }

    [Test]
    public void UnshuffledSamplerKeepsOrder()
    {
        var sampler = new BatchSampler(5, 2, seed: 1, shuffle: false);
        Assert.That(sampler.EpochOrder(4), Is.EqualTo(new[] { 0, 1, 2, 3, 4 }));
    }

    [Test]
    public void MisuseThrows()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new BatchSampler(10, 0, seed: 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new BatchSampler(-1, 4, seed: 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new BatchSampler([1, -2], 4, seed: 1));
        var sampler = new BatchSampler(10, 4, seed: 1);
        Assert.Throws<InvalidOperationException>(() => sampler.Batch(0));
        sampler.StartEpoch(0);
        Assert.Throws<ArgumentOutOfRangeException>(() => sampler.Batch(3));
        Assert.Throws<ArgumentOutOfRangeException>(() => sampler.StartEpoch(-1));
    }

    [Test]
    public void GatherBatchFillsPreallocatedBuffers()
    {
        var data = DatasetTests.Toy(9);
        int size = data.SampleSize;
        var features = new float[4 * size];
        var labels = new int[4];
        Array.Fill(features, -1f);
        Array.Fill(labels, -1);

        BatchSampler.GatherBatch(data, [7, 2, 7], features, labels);

        Assert.That(features[..size], Is.EqualTo(data.Sample(7).ToArray()));
        Assert.That(features[size..(2 * size)], Is.EqualTo(data.Sample(2).ToArray()));
        Assert.That(features[(2 * size)..(3 * size)], Is.EqualTo(data.Sample(7).ToArray()));
        Assert.That(features[(3 * size)..], Is.All.EqualTo(-1f), "the rest of the buffer is untouched");
        Assert.That(labels, Is.EqualTo(new[] { data.Labels[7], data.Labels[2], data.Labels[7], -1 }));

        Assert.Throws<ArgumentException>(() => BatchSampler.GatherBatch(data, [1, 2, 3, 4, 5], features, new int[5]));
        Assert.Throws<ArgumentException>(() => BatchSampler.GatherBatch(data, [1, 2], features, new int[1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => BatchSampler.GatherBatch(data, [9], features, labels));
    }

    [Test]
    public void GatherBatchDoesNotAllocate()
    {
        var data = DatasetTests.Toy(64);
        var sampler = new BatchSampler(64, 8, seed: 3);
        var features = new float[8 * data.SampleSize];
        var labels = new int[8];
        sampler.StartEpoch(0);
        BatchSampler.GatherBatch(data, sampler.Batch(0), features, labels); // warm up

        long before = GC.GetAllocatedBytesForCurrentThread();
        sampler.StartEpoch(1);
        for (int b = 0; b < sampler.BatchCount; b++)
        {
            BatchSampler.GatherBatch(data, sampler.Batch(b), features, labels);
        }
        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.Zero);
    }
}
