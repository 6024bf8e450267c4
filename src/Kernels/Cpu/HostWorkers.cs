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
/// One pool per process (<see cref="Shared"/>): the calling thread runs thread indices 0, P, 2P, ...
/// and each of the P - 1 workers its own residue class (P = the processor count). Launches from
/// several host threads are serialised. A worker spins for <see cref="SpinTicks"/> after its last
/// launch (the next one usually follows within microseconds), then sleeps until woken.
/// An exception thrown by a thread index is rethrown on the caller after every index has finished.
/// </remarks>
internal sealed class HostWorkers
{
    /// <summary>The process's pool, one lane per processor.</summary>
    public static HostWorkers Shared { get; } = new(Environment.ProcessorCount);

    /// <summary>How long an idle worker spins before it sleeps: 200 us.</summary>
    private static readonly long SpinTicks = Stopwatch.Frequency / 5000;

    private readonly object launchLock = new();
    private readonly object gate = new();
    private readonly int lanes;
    private Action<int>? body;
    private int count;
    private long generation;
    private int pending;
    private int sleepers;
    private Exception? failure;

    private HostWorkers(int lanes)
    {
        this.lanes = Math.Max(1, lanes);
        for (int lane = 1; lane < this.lanes; lane++)
        {
            int own = lane;
            new Thread(() => Work(own)) { IsBackground = true, Name = $"zerofl-cpu-{own}" }.Start();
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
        if (threads <= 1 || lanes == 1)
        {
            for (int i = 0; i < threads; i++)
            {
                kernel(i);
            }
            return;
        }
        lock (launchLock)
        {
            body = kernel;
            count = threads;
            failure = null;
            Volatile.Write(ref pending, lanes - 1);
            Interlocked.Increment(ref generation); // publishes the job (full fence)
            if (Volatile.Read(ref sleepers) > 0)
            {
                lock (gate)
                {
                    Monitor.PulseAll(gate);
                }
            }
            RunLane(0);
            var spin = new SpinWait();
            while (Volatile.Read(ref pending) != 0)
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

    private void RunLane(int lane)
    {
        try
        {
            var kernel = body!;
            for (int i = lane; i < count; i += lanes)
            {
                kernel(i);
            }
        }
        catch (Exception e)
        {
            Interlocked.CompareExchange(ref failure, e, null);
        }
    }

    private void Work(int lane)
    {
        long seen = 0;
        while (true)
        {
            long started = Stopwatch.GetTimestamp();
            while (Volatile.Read(ref generation) == seen)
            {
                if (Stopwatch.GetTimestamp() - started < SpinTicks)
                {
                    Thread.SpinWait(20);
                    continue;
                }
                lock (gate)
                {
                    Interlocked.Increment(ref sleepers); // full fence before the re-check: pairs with the caller's
                    while (Volatile.Read(ref generation) == seen)
                    {
                        Monitor.Wait(gate);
                    }
                    Interlocked.Decrement(ref sleepers);
                }
            }
            seen = Volatile.Read(ref generation);
            RunLane(lane);
            Interlocked.Decrement(ref pending);
        }
    }
}
