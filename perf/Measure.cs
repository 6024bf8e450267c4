using System.Diagnostics;
using System.Text.Json;

namespace ZeroFL.Perf;

/// <summary>Timing (warm-up, then the median of several synchronised runs) and the JSON result line.</summary>
internal static class Measure
{
    /// <summary>
    /// Wall time in milliseconds of <paramref name="run"/> followed by <paramref name="sync"/>, after
    /// <paramref name="warmup"/> untimed runs: the median and the best of <paramref name="repetitions"/>.
    /// </summary>
    public static Timing Time(Action run, Action sync, int warmup, int repetitions)
    {
        for (int i = 0; i < warmup; i++)
        {
            run();
            sync();
        }
        var times = new double[repetitions];
        for (int i = 0; i < repetitions; i++)
        {
            long start = Stopwatch.GetTimestamp();
            run();
            sync();
            times[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }
        Array.Sort(times);
        double median = repetitions % 2 == 1 ? times[repetitions / 2] : 0.5 * (times[repetitions / 2 - 1] + times[repetitions / 2]);
        return new Timing(median, times[0]);
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
            ["validated"] = validation,
        };
        Console.WriteLine(JsonSerializer.Serialize(line));
    }
}

/// <summary>Median and best wall time of one benchmark, in milliseconds.</summary>
internal readonly record struct Timing(double MedianMs, double BestMs);
