using System.Diagnostics;
using ZeroFL.Cli;
using ZeroFL.Cluster;
using ZeroFL.Tests.Cli;

namespace ZeroFL.Tests.Cluster;

/// <summary>
/// A silo in its own process (<c>zerofl silo</c>) and the coordinator in this one, over TCP on
/// loopback: what the in-memory view of one process hides (the gateway connection, membership
/// between processes, SIGTERM). The model must equal the in-process run's byte for byte.
/// </summary>
[NonParallelizable]
public sealed class TwoProcessClusterTests
{
    private ZeroFL.Tests.Data.IdxFiles files = null!;

    [OneTimeSetUp]
    public void WriteData()
    {
        files = new ZeroFL.Tests.Data.IdxFiles();
        files.WriteMnistLike(trainCount: 240, testCount: 40);
    }

    [OneTimeTearDown]
    public void DeleteData() => files.Dispose();

    private static string Cli => Path.Combine(TestContext.CurrentContext.TestDirectory, "zerofl.dll");

    /// <summary>The short job writing to <paramref name="outDir"/>; an option in <paramref name="extra"/> replaces its default.</summary>
    private string[] Arguments(string outDir, params string[] extra)
    {
        (string Option, string Value)[] defaults =
            [("--data-dir", files.Directory), ("--device", "cpu"), ("--clients", "12"), ("--clients-per-round", "4"), ("--rounds", "2"), ("--batch-size", "16"), ("--eval-every", "2"), ("--seed", "4")];
        return ["run", .. defaults.Where(d => !extra.Contains(d.Option)).SelectMany(d => new[] { d.Option, d.Value }), "--quiet", "--out", outDir, .. extra];
    }

    /// <summary>Starts <c>zerofl silo</c> with <paramref name="args"/>; its stdout and stderr lines are collected.</summary>
    private static (Process Process, List<string> Lines) StartSilo(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Cli);
        start.ArgumentList.Add("silo");
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }
        var process = Process.Start(start)!;
        var lines = new List<string>();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (lines) { lines.Add(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (lines) { lines.Add("stderr: " + e.Data); } } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return (process, lines);
    }

    private static string Text(List<string> lines)
    {
        lock (lines)
        {
            return string.Join('\n', lines);
        }
    }

    [Test]
    public void ASiloProcessAndTheCoordinatorEndWithTheInProcessModel()
    {
        string baseline = Path.Combine(files.Directory, "baseline");
        var (code, _, err) = CliTests.Run(Arguments(baseline));
        Assert.That(code, Is.EqualTo(0), err);

        int port = LocalCluster.FreePortPairs(1)[0];
        var (silo, lines) = StartSilo("--device", "cpu", "--data-dir", files.Directory, "--listen", $"127.0.0.1:{port}");
        try
        {
            var clock = Stopwatch.StartNew();
            while (!Text(lines).Contains("ready") && !silo.HasExited && clock.Elapsed < TimeSpan.FromSeconds(120))
            {
                Thread.Sleep(50);
            }
            Assert.That(Text(lines), Does.Contain($"silo 127.0.0.1:{port} ready"), "the silo started");

            string clustered = Path.Combine(files.Directory, "clustered");
            (code, _, err) = CliTests.Run(Arguments(clustered, "--cluster", $"127.0.0.1:{port}"));
            Assert.That(code, Is.EqualTo(0), err);
            Assert.That(File.ReadAllBytes(Path.Combine(clustered, "model.safetensors")), Is.EqualTo(File.ReadAllBytes(Path.Combine(baseline, "model.safetensors"))));

            // SIGTERM stops the silo cleanly.
            Process.Start("kill", ["-TERM", silo.Id.ToString()])!.WaitForExit();
            Assert.That(silo.WaitForExit(TimeSpan.FromSeconds(30)), Is.True, "the silo stopped on SIGTERM");
            Assert.That(silo.ExitCode, Is.Zero, Text(lines));
            Assert.That(Text(lines), Does.Contain("stopped"));
        }
        finally
        {
            if (!silo.HasExited)
            {
                silo.Kill(entireProcessTree: true);
            }
            silo.WaitForExit();
            silo.Dispose();
        }
    }

    /// <summary>Waits (at most two minutes) for a silo process to say it is ready.</summary>
    private static void WaitReady(Process silo, List<string> lines, int port)
    {
        var clock = Stopwatch.StartNew();
        while (!Text(lines).Contains($"silo 127.0.0.1:{port} ready") && !silo.HasExited && clock.Elapsed < TimeSpan.FromSeconds(120))
        {
            Thread.Sleep(50);
        }
        Assert.That(Text(lines), Does.Contain($"silo 127.0.0.1:{port} ready"), "the silo started");
    }

    private static void Stop(Process silo)
    {
        if (!silo.HasExited)
        {
            silo.Kill(entireProcessTree: true);
        }
        silo.WaitForExit();
        silo.Dispose();
    }

    /// <summary>
    /// A second silo process, SIGKILLed while the coordinator is in round 2: its clients become
    /// "worker lost" failures (no clean leave, no answer on its connection), and the run finishes on
    /// the primary silo alone.
    /// </summary>
    [Test]
    public void ASiloProcessKilledMidRunBecomesWorkerLostFailuresAndTheRunFinishes()
    {
        var ports = LocalCluster.FreePortPairs(2);
        var (primary, primaryLines) = StartSilo("--device", "cpu", "--data-dir", files.Directory, "--listen", $"127.0.0.1:{ports[0]}");
        (Process Process, List<string> Lines)? second = null;
        try
        {
            WaitReady(primary, primaryLines, ports[0]);
            second = StartSilo("--device", "cpu", "--data-dir", files.Directory, "--listen", $"127.0.0.1:{ports[1]}", "--join", $"127.0.0.1:{ports[0]}");
            WaitReady(second.Value.Process, second.Value.Lines, ports[1]);

            // Rounds of a few seconds (many local epochs), so that the kill lands inside one.
            string outDir = Path.Combine(files.Directory, "killed-silo");
            var run = Task.Run(() => CliTests.Run(Arguments(outDir, "--rounds", "4", "--local-epochs", "30", "--fit-timeout", "120", "--cluster", $"127.0.0.1:{ports[0]}")));
            string metrics = Path.Combine(outDir, "metrics.csv");
            var clock = Stopwatch.StartNew();
            while (!run.IsCompleted && clock.Elapsed < TimeSpan.FromMinutes(5) && ReadOrEmpty(metrics).Split('\n', StringSplitOptions.RemoveEmptyEntries).Length < 2)
            {
                Thread.Sleep(10);
            }
            Assert.That(run.IsCompleted, Is.False, "the run was still going after round 1");
            Process.Start("kill", ["-KILL", second.Value.Process.Id.ToString()])!.WaitForExit();
            Assert.That(second.Value.Process.WaitForExit(TimeSpan.FromSeconds(30)), Is.True, "SIGKILL ends the silo");

            var (code, _, err) = run.GetAwaiter().GetResult();
            Assert.That(code, Is.EqualTo(0), err);
            var summary = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json"))).RootElement;
            Assert.That(summary.GetProperty("failures_by_reason").GetProperty("worker lost").GetInt32(), Is.Positive, summary.ToString());
            Assert.That(summary.GetProperty("silos").GetArrayLength(), Is.EqualTo(2), "both silos served the run");
            var rows = File.ReadAllLines(metrics).Select(l => l.Split(',')).ToArray();
            int silos = Array.IndexOf(rows[0], "silos");
            Assert.That(rows.Skip(1).Select(r => r[0]), Is.EqualTo(new[] { "1", "2", "3", "4" }), "every round was recorded");
            Assert.That(rows[1][silos], Is.EqualTo("2"));
            Assert.That(rows[4][silos], Is.EqualTo("1"), "the last round ran on the silo left");
            TestContext.Out.WriteLine($"run with a silo process killed after round 1: {clock.Elapsed.TotalSeconds:F1} s; rounds {string.Join(", ", rows.Skip(1).Select(r => r[Array.IndexOf(rows[0], "seconds")]))} s");
        }
        finally
        {
            if (second is { } s2)
            {
                Stop(s2.Process);
            }
            Stop(primary);
        }
    }

    /// <summary>The file's text, or empty while it is missing or being replaced.</summary>
    private static string ReadOrEmpty(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (IOException)
        {
            return string.Empty;
        }
    }

    [Test]
    public void ASiloJoiningAPrimaryNobodyRunsGivesUpInOneLine()
    {
        var ports = LocalCluster.FreePortPairs(2);
        var (silo, lines) = StartSilo("--device", "cpu", "--listen", $"127.0.0.1:{ports[0]}", "--join", $"127.0.0.1:{ports[1]}", "--start-timeout", "15");
        try
        {
            Assert.That(silo.WaitForExit(TimeSpan.FromSeconds(90)), Is.True, "gave up within its bound");
            silo.WaitForExit();
            Assert.That(silo.ExitCode, Is.EqualTo(Program.RuntimeError), Text(lines));
            var errors = Text(lines).Split('\n').Where(l => l.StartsWith("stderr: ", StringComparison.Ordinal)).ToList();
            Assert.That(errors, Has.Count.EqualTo(1), Text(lines));
            Assert.That(errors[0], Does.Contain($"joining the primary silo 127.0.0.1:{ports[1]}"));
        }
        finally
        {
            if (!silo.HasExited)
            {
                silo.Kill(entireProcessTree: true);
            }
            silo.Dispose();
        }
    }
}
