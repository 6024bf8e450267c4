using ILGPU;
using ILGPU.Runtime;
using ZeroFL.Kernels;
using ZeroFL.Kernels.Reference;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Kernels;

[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Specs))]
public sealed class IndexPackKernelTests(string device) : DeviceTest(device)
{
    private const int Block = IndexPackKernels.BlockLength;

    /// <summary>(tensor length, entries): empty, single, odd and even counts, many blocks, partial last blocks, exact multiples of 65536.</summary>
    private static IEnumerable<TestCaseData> RandomCases()
    {
        foreach (var (n, count) in new (long, int)[]
        {
            (1, 0), (1, 1), (100, 0), (100, 1), (100, 7), (100, 100),
            (Block, 1), (Block, 2), (Block, 1001), (Block, Block),
            (3L * Block, 999), (3L * Block, 4000),
            (Block + 5, Block + 5), (Block + 1, 3),
            (40L * Block + 123, 1001), (40L * Block + 123, 50_000),
            (200L * Block, 301),
        })
        {
            yield return new TestCaseData(n, count).SetArgDisplayNames($"n {n}", $"count {count}");
        }
    }

    [TestCaseSource(nameof(RandomCases))]
    public void RandomSortedIndicesRoundTrip(long n, int count)
    {
        var random = new Random((int)(n % 100_003) * 31 + count);
        var indices = SortedSample(random, n, count);
        CheckRoundTrip(indices, n);
    }

    [Test]
    public void BlockBoundariesAndLastPartialBlockRoundTrip()
    {
        // Entries on every side of each 65536 boundary, in the last partial block, and n - 1.
        long n = 5L * Block + 17;
        var set = new SortedSet<int>();
        for (int b = 0; b <= 5; b++)
        {
            foreach (int delta in new[] { -2, -1, 0, 1 })
            {
                long index = (long)b * Block + delta;
                if (index >= 0 && index < n)
                {
                    set.Add((int)index);
                }
            }
        }
        set.Add((int)n - 1);
        CheckRoundTrip(set.ToArray(), n);
        CheckRoundTrip([(int)n - 3, (int)n - 1], n);
        CheckRoundTrip([Block * 4 - 1, Block * 4], 4L * Block + 1);
        CheckRoundTrip([2 * Block - 1], 2L * Block);
    }

    [Test]
    public void EmptyBlocksGiveRepeatedTableEntries()
    {
        long n = 6L * Block;
        int[] indices = [3, 4 * Block + 9, 4 * Block + 10];
        var (_, table) = IndexPackReference.Pack(indices, n);
        Assert.That(table, Is.EqualTo(new[] { 0, 1, 1, 1, 1, 3, 3 }));
        CheckRoundTrip(indices, n);
    }

    [Test]
    public void ATableNotFromPackGivesIndicesInsideTheBlocksAndWritesEveryEntry()
    {
        // Decreasing, negative and too-large entries: wrong indices are allowed, a stray write or a
        // hang is not. Every output entry must be overwritten with a value below blocks * 65536.
        long n = 4L * Block;
        int count = 9_000;
        var packed = Upload(Enumerable.Range(0, (int)IndexPackKernels.PackedLength(count)).Select(i => i * 7919).ToArray());
        foreach (int[] table in new[] { new[] { 0, 8000, 100, -5, 9000 }, new[] { 50_000, -1, int.MaxValue, 3, 0 }, new[] { 9000, 9000, 9000, 9000, 9000 } })
        {
            var expanded = Upload(Filled(count + 1));
            Device.Kernels.IndexPack.Expand(packed, Upload(table), count, n, expanded.SubView(0, count));
            var result = expanded.Download(Device);
            Assert.That(result.Take(count), Has.All.InRange(0, (int)n - 1), string.Join(",", table));
            Assert.That(result[count], Is.EqualTo(-7), "the entry past the output is untouched");
        }
    }

    [Test]
    public void ArgumentsAreCheckedOnTheHost()
    {
        var kernels = Device.Kernels.IndexPack;
        var indices = Upload(new[] { 1, 2, 3 });
        var table = Upload(new int[2]);
        Assert.Throws<ArgumentException>(() => kernels.Pack(indices, 4, 3, Upload(new int[2]), table), "more entries than elements");
        Assert.Throws<ArgumentException>(() => kernels.Pack(indices, 3, 10, Upload(new int[1]), table), "packed too short");
        Assert.Throws<ArgumentException>(() => kernels.Pack(indices, 3, Block + 1, Upload(new int[2]), table), "table too short");
        Assert.Throws<ArgumentException>(() => kernels.Pack(indices, -1, 10, Upload(new int[2]), table), "negative count");
        Assert.Throws<ArgumentException>(() => kernels.Expand(Upload(new int[2]), table, 3, 10, Upload(new int[2])), "output too short");
        Assert.Throws<ArgumentException>(() => kernels.Pack(indices, 3, (long)int.MaxValue + 1, Upload(new int[2]), table), "tensor too large");
    }

    private void CheckRoundTrip(int[] indices, long n)
    {
        var kernels = Device.Kernels.IndexPack;
        int count = indices.Length;
        var (expectedPacked, expectedTable) = IndexPackReference.Pack(indices, n);
        Assert.That(IndexPackReference.Expand(expectedPacked, expectedTable, count), Is.EqualTo(indices), "reference round trip");
        Assert.That(expectedTable[0], Is.EqualTo(0));
        Assert.That(expectedTable[^1], Is.EqualTo(count));

        var deviceIndices = Upload(count == 0 ? [-1] : indices);
        var packed = Upload(Filled(Math.Max(1, IndexPackKernels.PackedLength(count))));
        var table = Upload(Filled(IndexPackKernels.TableLength(n)));
        kernels.Pack(deviceIndices, count, n, packed, table);
        Assert.That(packed.SubView(0, expectedPacked.Length).Download(Device), Is.EqualTo(expectedPacked), "packed low halves");
        Assert.That(table.Download(Device), Is.EqualTo(expectedTable), "block table");

        var expanded = Upload(Filled(Math.Max(1, count)));
        kernels.Expand(packed, table, count, n, expanded);
        Assert.That(expanded.SubView(0, count).Download(Device), Is.EqualTo(indices), "device round trip");
    }

    private static int[] Filled(long length) => Enumerable.Repeat(-7, (int)length).ToArray();

    private static int[] SortedSample(Random random, long n, int count)
    {
        if (count == n)
        {
            return Enumerable.Range(0, (int)n).ToArray();
        }
        var set = new HashSet<int>();
        while (set.Count < count)
        {
            set.Add((int)random.NextInt64(n));
        }
        return set.Order().ToArray();
    }
}
