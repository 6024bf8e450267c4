using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using ZeroFL.Engine.Modules;

namespace ZeroFL.Perf;

/// <summary>PyTorch's training steps of one block: every timed step's seconds, and the process's CPU time (all threads, whole life).</summary>
internal sealed record TorchSteps(double[] Seconds, double CpuSeconds, string Version, int Threads);

/// <summary>
/// The PyTorch side of the <c>torch</c> suite: <c>perf/torch_step.py</c> run by Debian's
/// <c>/usr/bin/python3</c> (python3-torch), one process per call. Also compiled into the tests
/// (tests/Engine/TorchPeerModelTests.cs, linked) for the parameter comparison.
/// </summary>
internal static class TorchPeer
{
    /// <summary>The interpreter Debian's python3-torch is installed for (the first python3 on PATH may be another).</summary>
    public const string Python = "/usr/bin/python3";

    private const string ScriptName = "torch_step.py";

    /// <summary>
    /// perf/torch_step.py in the first folder above <paramref name="start"/> that has it (the
    /// harness and test binaries live below the repository root), or null.
    /// </summary>
    public static string? FindScript(string start)
    {
        for (var folder = new DirectoryInfo(start); folder is not null; folder = folder.Parent)
        {
            string candidate = Path.Combine(folder.FullName, "perf", ScriptName);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        return null;
    }

    /// <summary>Null when <see cref="Python"/> imports torch, else why not.</summary>
    public static string? Unavailable()
    {
        if (!File.Exists(Python))
        {
            return $"{Python} does not exist (apt-get install python3-torch python3-numpy)";
        }
        try
        {
            Run(["-c", "import torch"]);
            return null;
        }
        catch (InvalidOperationException e)
        {
            return $"{Python} cannot import torch (apt-get install python3-torch python3-numpy): {e.Message}";
        }
    }

    /// <summary>Name and shape of every parameter and running statistic of the PyTorch model (num_batches_tracked left out).</summary>
    public static IReadOnlyDictionary<string, int[]> Tensors(string script, string model, int channels, int size, int classes)
    {
        using var line = Parse(Run([script, model, .. Shape(channels, size, classes), "--count-params"]));
        return line.RootElement.GetProperty("tensors").EnumerateObject()
            .ToDictionary(t => t.Name, t => t.Value.EnumerateArray().Select(d => d.GetInt32()).ToArray());
    }

    /// <summary>
    /// Differences between ZeroFL's parameters (<paramref name="zerofl"/>, running statistics
    /// included) and PyTorch's tensors: names on one side only, shapes that differ, and the
    /// trainable and running-statistic totals. Empty when the models are the same.
    /// </summary>
    public static IReadOnlyList<string> Differences(IReadOnlyList<Parameter> zerofl, IReadOnlyDictionary<string, int[]> torch)
    {
        var differences = new List<string>();
        foreach (var p in zerofl)
        {
            if (!torch.TryGetValue(p.FullName, out var shape))
            {
                differences.Add($"{p.FullName} {Text(p.Shape)}: not in PyTorch's model");
            }
            else if (!shape.SequenceEqual(p.Shape))
            {
                differences.Add($"{p.FullName}: ZeroFL {Text(p.Shape)}, PyTorch {Text(shape)}");
            }
        }
        var names = zerofl.Select(p => p.FullName).ToHashSet();
        differences.AddRange(torch.Where(t => !names.Contains(t.Key)).Select(t => $"{t.Key} {Text(t.Value)}: PyTorch only"));
        long zeroflTrainable = zerofl.Where(p => p.Trainable).Sum(p => p.Length);
        long zeroflStatistics = zerofl.Where(p => !p.Trainable).Sum(p => p.Length);
        long torchStatistics = torch.Where(t => t.Key.EndsWith(".running_mean", StringComparison.Ordinal) || t.Key.EndsWith(".running_var", StringComparison.Ordinal))
            .Sum(t => t.Value.Aggregate(1L, (a, d) => a * d));
        long torchTrainable = torch.Values.Sum(s => s.Aggregate(1L, (a, d) => a * d)) - torchStatistics;
        if (zeroflTrainable != torchTrainable || zeroflStatistics != torchStatistics)
        {
            differences.Add($"totals: ZeroFL {zeroflTrainable} trainable + {zeroflStatistics} running statistics, PyTorch {torchTrainable} + {torchStatistics}");
        }
        return differences;
    }

    /// <summary>
    /// Trains <paramref name="model"/> in a fresh PyTorch process: <paramref name="warmup"/>
    /// untimed steps, then <paramref name="steps"/> timed ones (dense, or SWAT masked at
    /// <paramref name="sparsity"/> &gt; 0).
    /// </summary>
    public static TorchSteps Steps(string script, string model, int channels, int size, int classes, int batch, float sparsity, int warmup, int steps)
    {
        using var line = Parse(Run([script, model, .. Shape(channels, size, classes),
            "--batch", Invariant(batch), "--sparsity", sparsity.ToString("R", CultureInfo.InvariantCulture),
            "--warmup", Invariant(warmup), "--steps", Invariant(steps)]));
        var root = line.RootElement;
        return new TorchSteps(
            root.GetProperty("step_s").EnumerateArray().Select(s => s.GetDouble()).ToArray(),
            root.GetProperty("cpu_s").GetDouble(),
            root.GetProperty("torch").GetString() ?? "?",
            root.GetProperty("threads").GetInt32());
    }

    private static JsonDocument Parse(string line)
    {
        try
        {
            return JsonDocument.Parse(line);
        }
        catch (JsonException e)
        {
            throw new InvalidOperationException($"{ScriptName} printed no JSON line ('{line}'): {e.Message}");
        }
    }

    private static string[] Shape(int channels, int size, int classes) =>
        ["--channels", Invariant(channels), "--size", Invariant(size), "--classes", Invariant(classes)];

    /// <summary>Runs <see cref="Python"/> with <paramref name="arguments"/>; returns the last line it printed, throws unless it exits 0.</summary>
    private static string Run(IReadOnlyList<string> arguments)
    {
        var start = new ProcessStartInfo(Python)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {Python}");
        var error = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            string last = error.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? "";
            throw new InvalidOperationException($"{Python} {string.Join(' ', arguments)} exited with {process.ExitCode}: {last}");
        }
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? "";
    }

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Text(int[] shape) => $"[{string.Join(", ", shape)}]";
}
