using System.Diagnostics;

namespace ZeroFL.Kernels;

/// <summary>
/// Runs the CPU accelerator's kernel launches on a pool of host threads that spin briefly between
/// launches. ILGPU's CPU accelerator wakes its OS threads through events on every launch and parks
/// them after it: about 30-60 us a launch on this machine plus a reschedule interrupt per wake, and a
/// ResNet-18 SWAT step makes ~360 launches. Every kernel of this project is a grid-stride loop over
/// its thread index with no barrier, so the same static method, called once per thread index on the
/// host, does the same work; only the launch machinery differs.
/// </summary>
/// <remarks>
/// One pool per process (<see cref="Shared"/>): the calling thread and P - 1 workers (P = the processor
/// count) claim thread indices one at a time from a counter tagged with the launch's generation, so a
/// worker that is asleep or descheduled (a loaded host) never holds a launch up: the caller runs the
/// indices nobody claimed. Launches from several host threads are serialised. A worker spins for
/// <see cref="SpinTicks"/> after its last launch (the next one usually follows within microseconds),
/// then sleeps until woken. Every index runs even when one throws; the first exception is rethrown on
/// the caller when all have finished.
/// </remarks>
internal sealed class HostWorkers
{
    /// <summary>The process's pool, one lane per processor.</summary>
    public static HostWorkers Shared { get; } = new(Environment.ProcessorCount);

    /// <summary>How long an idle worker spins before it sleeps: 100 us.</summary>
    private static readonly long SpinTicks = Stopwatch.Frequency / 10000;

    private readonly object launchLock = new();
    private readonly object gate = new();
    private readonly int lanes;
    private Action<int>? body;
    private int count;
    /// <summary>The launch's generation (high 32 bits) and its next unclaimed index (low 32 bits).</summary>
    private long claims;
    private int finished;
    private int sleepers;
    private Exception? failure;

    private HostWorkers(int lanes)
    {
        this.lanes = Math.Max(1, lanes);
        for (int lane = 1; lane < this.lanes; lane++)
        {
            new Thread(Work) { IsBackground = true, Name = $"zerofl-cpu-{lane}" }.Start();
        }
    }

    /// <summary>Lanes (threads) the pool runs at once, the caller's included.</summary>
    public int Lanes => lanes;

    /// <summary>
    /// Calls <paramref name="kernel"/> once for every thread index in [0, <paramref name="threads"/>),
    /// spread over the lanes, and returns when all have finished.
    /// </summary>
    public void Run(int threads, Action<int> kernel)
    {
        if (threads == 1)
        {
            kernel(0);
            return;
        }
        if (threads <= 0)
        {
            return;
        }
        lock (launchLock)
        {
            body = kernel;
            count = threads;
            failure = null;
            Volatile.Write(ref finished, 0);
            long generation = (Volatile.Read(ref claims) >> 32) + 1;
            Interlocked.Exchange(ref claims, generation << 32); // publishes the launch (full fence)
            if (lanes > 1 && Volatile.Read(ref sleepers) > 0)
            {
                lock (gate)
                {
                    Monitor.PulseAll(gate);
                }
            }
            RunClaimed(generation);
            var spin = new SpinWait();
            while (Volatile.Read(ref finished) != threads)
            {
                spin.SpinOnce(sleep1Threshold: -1);
            }
            body = null;
            if (failure is { } e)
            {
                throw new AggregateException($"a CPU kernel thread failed: {e.Message}", e);
            }
        }
    }

    /// <summary>Runs indices of launch <paramref name="generation"/> until none is left unclaimed.</summary>
    private void RunClaimed(long generation)
    {
        while (true)
        {
            long state = Volatile.Read(ref claims);
            if (state >> 32 != generation)
            {
                return;
            }
            // Read before the claim: a successful claim proves the launch was still open, so these
            // belong to it (the caller publishes the next launch only after every index finished).
            var kernel = body;
            int n = count;
            int index = (int)state;
            if (index >= n || kernel is null)
            {
                return;
            }
            if (Interlocked.CompareExchange(ref claims, state + 1, state) != state)
            {
                continue;
            }
            try
            {
                kernel(index);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref failure, e, null);
            }
            Interlocked.Increment(ref finished);
        }
    }

    private void Work()
    {
        long seen = 0;
        while (true)
        {
            long started = Stopwatch.GetTimestamp();
            while (Volatile.Read(ref claims) >> 32 == seen)
            {
                if (Stopwatch.GetTimestamp() - started < SpinTicks)
                {
                    Thread.SpinWait(20);
                    continue;
                }
                lock (gate)
                {
                    Interlocked.Increment(ref sleepers); // full fence before the re-check: pairs with the caller's
                    while (Volatile.Read(ref claims) >> 32 == seen)
                    {
                        Monitor.Wait(gate);
                    }
                    Interlocked.Decrement(ref sleepers);
                }
            }
            seen = Volatile.Read(ref claims) >> 32;
            RunClaimed(seen);
        }
    }
}
