using System.Diagnostics;
using System.Text.Json;

namespace ZeroFL.Perf;

/// <summary>Timing (warm-up, then the median of several synchronised runs, engine and reference alternating) and the JSON result line.</summary>
internal static class Measure
{
    /// <summary>
    /// Times the engine kernel (<paramref name="engine"/>, then <paramref name="sync"/>) and the
    /// reference (<paramref name="reference"/>, synchronous) in <paramref name="rounds"/> rounds of
    /// <paramref name="perRound"/> timed runs each, every block after one untimed warm-up run, so
    /// that both see similar background load on a shared machine. After each OpenBLAS block the
    /// harness sleeps briefly: OpenBLAS worker threads keep spinning for about 0.1 s after a call
    /// and would otherwise steal a core from the engine. Returns the median and best wall times.
    /// </summary>
    public static (Timing Engine, Timing Reference) TimePair(Action engine, Action sync, Action reference, int rounds, int perRound)
    {
        var engineTimes = new List<double>();
        var referenceTimes = new List<double>();
        var probe = LoadProbe.Start();
        for (int round = 0; round < rounds; round++)
        {
            engine();
            sync();
            for (int i = 0; i < perRound; i++)
            {
                long start = Stopwatch.GetTimestamp();
                engine();
                sync();
                engineTimes.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }
            reference();
            for (int i = 0; i < perRound; i++)
            {
                long start = Stopwatch.GetTimestamp();
                reference();
                referenceTimes.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }
            Thread.Sleep(OpenBlasSpinMs);
        }
        double? background = probe.BackgroundShare();
        return (Summarise(engineTimes.ToArray(), background), Summarise(referenceTimes.ToArray(), background));
    }

    /// <summary>How long OpenBLAS threads may busy-wait after a call (2^28 cycles by default).</summary>
    private const int OpenBlasSpinMs = 250;

    private static Timing Summarise(double[] times, double? background)
    {
        Array.Sort(times);
        int n = times.Length;
        double median = n % 2 == 1 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
        return new Timing(median, times[0], background);
    }

    /// <summary>Prints one benchmark result as a single JSON line.</summary>
    public static void Report(string name, string op, int m, int n, int k, double flops, Timing engine, Timing reference,
        string referenceName, string device, string validation)
    {
        double gflops = flops / (engine.MedianMs * 1e6);
        double referenceGflops = flops / (reference.MedianMs * 1e6);
        var line = new Dictionary<string, object>
        {
            ["name"] = name,
            ["op"] = op,
            ["m"] = m,
            ["n"] = n,
            ["k"] = k,
            ["ms"] = Math.Round(engine.MedianMs, 3),
            ["gflops"] = Math.Round(gflops, 1),
            ["best_gflops"] = Math.Round(flops / (engine.BestMs * 1e6), 1),
            ["reference"] = referenceName,
            ["reference_ms"] = Math.Round(reference.MedianMs, 3),
            ["reference_gflops"] = Math.Round(referenceGflops, 1),
            ["reference_best_gflops"] = Math.Round(flops / (reference.BestMs * 1e6), 1),
            ["ratio"] = Math.Round(gflops / referenceGflops, 3),
            ["device"] = device,
            ["background_cpu_share"] = engine.BackgroundShare is double share ? Math.Round(share, 2) : null!,
            ["validated"] = validation,
        };
        Console.WriteLine(JsonSerializer.Serialize(line));
    }
}

/// <summary>
/// Median and best wall time of one benchmark, in milliseconds, and the share of the machine's CPU
/// time that other processes used meanwhile (null where /proc/stat is unavailable).
/// </summary>
internal readonly record struct Timing(double MedianMs, double BestMs, double? BackgroundShare);

/// <summary>
/// Measures how busy the rest of the machine was during a benchmark: busy ticks of all CPUs from
/// /proc/stat minus this process's own CPU time (and that of the benchmark's child processes, as
/// given), as a share of all CPU time.
/// </summary>
internal readonly struct LoadProbe
{
    private readonly long[]? cpu;
    private readonly TimeSpan own;
    private readonly long start;

    private LoadProbe(long[]? cpu, TimeSpan own, long start)
    {
        this.cpu = cpu;
        this.own = own;
        this.start = start;
    }

    public static LoadProbe Start() => new(ReadCpu(), Process.GetCurrentProcess().TotalProcessorTime, Stopwatch.GetTimestamp());

    /// <summary>The share since <see cref="Start"/>; <paramref name="childCpuSeconds"/>: CPU seconds of the benchmark's own child processes, not background.</summary>
    public double? BackgroundShare(double childCpuSeconds = 0)
    {
        var now = ReadCpu();
        if (cpu is null || now is null)
        {
            return null;
        }
        double wall = Stopwatch.GetElapsedTime(start).TotalSeconds * Environment.ProcessorCount;
        long idle = now[3] + now[4] - cpu[3] - cpu[4];
        long total = now.Sum() - cpu.Sum();
        if (total <= 0 || wall <= 0)
        {
            return null;
        }
        double busySeconds = (total - idle) * wall / total;
        double ownSeconds = (Process.GetCurrentProcess().TotalProcessorTime - own).TotalSeconds;
        return Math.Clamp((busySeconds - ownSeconds - childCpuSeconds) / wall, 0, 1);
    }

    /// <summary>The aggregate "cpu" line of /proc/stat (user, nice, system, idle, iowait, ...), or null.</summary>
    private static long[]? ReadCpu()
    {
        try
        {
            string line = File.ReadLines("/proc/stat").First();
            return line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Take(8).Select(long.Parse).ToArray();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return null;
        }
    }
}
