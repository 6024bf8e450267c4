using System.Collections.Concurrent;
using ZeroFL.Kernels;

namespace ZeroFL.Tests.Kernels;

/// <summary>
/// The host pool that runs the CPU accelerator's launches: every thread index exactly once, spread
/// over the lanes, claimed one at a time (a held lane holds nothing else up), failures rethrown,
/// launches from several host threads kept apart, and sleeping workers woken.
/// </summary>
public sealed class HostWorkersTests
{
    private static HostWorkers Pool => HostWorkers.Shared;

    [TestCase(1)]
    [TestCase(2)]
    [TestCase(3)]
    [TestCase(17)]
    [TestCase(1000)]
    public void EveryThreadIndexRunsExactlyOnce(int threads)
    {
        var runs = new int[threads];
        Pool.Run(threads, i => Interlocked.Increment(ref runs[i]));
        Assert.That(runs, Is.All.EqualTo(1));
    }

    [Test]
    public void ZeroThreadsRunNothing()
    {
        int runs = 0;
        Pool.Run(0, _ => Interlocked.Increment(ref runs));
        Assert.That(runs, Is.Zero);
    }

    [Test]
    public void ThreadIndicesRunOnEveryLane()
    {
        Assert.That(Pool.Lanes, Is.EqualTo(Environment.ProcessorCount), "one lane per processor");
        if (Pool.Lanes == 1)
        {
            Assert.Ignore("one processor: the caller runs every index");
        }
        var lanes = new ConcurrentDictionary<int, int>();
        int lanesSeen = 0;
        // Index 0 runs on the caller; each index waits (bounded) until every lane has started one, so
        // the indices cannot all have run on one thread.
        Pool.Run(Pool.Lanes, i =>
        {
            lanes[Environment.CurrentManagedThreadId] = i;
            Interlocked.Increment(ref lanesSeen);
            SpinWait.SpinUntil(() => Volatile.Read(ref lanesSeen) == Pool.Lanes, TimeSpan.FromSeconds(10));
        });
        Assert.That(lanes, Has.Count.EqualTo(Pool.Lanes));
        Assert.That(lanes.Keys, Does.Contain(Environment.CurrentManagedThreadId), "the caller runs index 0");
    }

    [Test]
    public void AFailingIndexIsRethrownAfterEveryIndexRanAndThePoolGoesOn()
    {
        const int threads = 9;
        var runs = new int[threads];
        var e = Assert.Throws<AggregateException>(() => Pool.Run(threads, i =>
        {
            Interlocked.Increment(ref runs[i]);
            if (i == 4)
            {
                throw new InvalidOperationException("index 4 failed");
            }
        }));
        Assert.That(e!.InnerException, Is.TypeOf<InvalidOperationException>());
        Assert.That(e.Message, Does.Contain("index 4 failed"));
        Assert.That(runs, Is.All.EqualTo(1), "the other indices still ran, once each");
        var after = new int[threads];
        Pool.Run(threads, i => Interlocked.Increment(ref after[i]));
        Assert.That(after, Is.All.EqualTo(1));
    }

    [Test]
    public void TheCallerRunsWhatABusyWorkerDoesNotClaim()
    {
        if (Pool.Lanes == 1)
        {
            Assert.Ignore("one processor: the caller runs every index");
        }
        // The first index to start blocks its thread until every other index has run: were indices
        // dealt to lanes up front, the blocked lane's share would never run and this would time out.
        const int threads = 50;
        var runs = new int[threads];
        int started = 0, done = 0;
        var finished = Task.Run(() => Pool.Run(threads, i =>
        {
            if (Interlocked.Increment(ref started) == 1)
            {
                SpinWait.SpinUntil(() => Volatile.Read(ref done) == threads - 1, TimeSpan.FromSeconds(10));
            }
            else
            {
                Interlocked.Increment(ref done);
            }
            Interlocked.Increment(ref runs[i]);
        }));
        Assert.That(finished.Wait(TimeSpan.FromSeconds(20)), Is.True);
        Assert.That(Volatile.Read(ref done), Is.EqualTo(threads - 1), "the others ran while one index was held");
        Assert.That(runs, Is.All.EqualTo(1));
    }

    [Test]
    public void LaunchesFromSeveralHostThreadsDoNotMix()
    {
        const int callers = 4, launches = 200, threads = 7;
        var totals = new long[callers];
        var tasks = Enumerable.Range(0, callers).Select(c => Task.Run(() =>
        {
            for (int l = 0; l < launches; l++)
            {
                var runs = new int[threads];
                Pool.Run(threads, i => Interlocked.Increment(ref runs[i]));
                totals[c] += runs.Count(r => r == 1);
            }
        })).ToArray();
        Assert.That(Task.WaitAll(tasks, TimeSpan.FromSeconds(60)), Is.True, "launches finished");
        Assert.That(totals, Is.All.EqualTo((long)launches * threads));
    }

    [Test]
    public void WorkersThatFellAsleepAreWoken()
    {
        for (int round = 0; round < 5; round++)
        {
            Thread.Sleep(20); // far past the spin: the workers sleep
            var runs = new int[Pool.Lanes * 3];
            var finished = Task.Run(() => Pool.Run(runs.Length, i => Interlocked.Increment(ref runs[i])));
            Assert.That(finished.Wait(TimeSpan.FromSeconds(10)), Is.True, $"round {round} finished");
            Assert.That(runs, Is.All.EqualTo(1));
        }
    }
}
