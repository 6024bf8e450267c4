using System.Diagnostics;
using System.Text.Json;
using ZeroFL.Cli;
using ZeroFL.Cli.Commands;
using ZeroFL.Cluster;
using ZeroFL.Engine.Devices;
using ZeroFL.Tests.Cli;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Cluster;

/// <summary>
/// Federated runs on Orleans clusters built in this process (CPU accelerator): a 3-silo cluster
/// started once for the fixture (the coordinator joins it with <c>--cluster</c>) and clusters that
/// <c>run --silos N</c> starts itself. The final model must equal the in-process run's byte for
/// byte, whatever the spread of clients; faults are recorded and the run goes on.
/// </summary>
[NonParallelizable]
public sealed class ClusterRunTests
{
    private ZeroFL.Tests.Data.IdxFiles files = null!;
    private LocalCluster cluster = null!;
    private readonly Dictionary<string, byte[]> baselines = [];

    [OneTimeSetUp]
    public async Task StartCluster()
    {
        files = new ZeroFL.Tests.Data.IdxFiles();
        files.WriteMnistLike(trainCount: 240, testCount: 40);
        cluster = await LocalCluster.StartAsync(3, (_, name) => new WorkerSettings(name, DeviceSpec.Parse("cpu"), files.Directory, null, SiloCommand.Setup), TimeSpan.FromSeconds(60));
    }

    [OneTimeTearDown]
    public async Task StopCluster()
    {
        await cluster.DisposeAsync();
        files.Dispose();
    }

    private string Out(string name) => Path.Combine(files.Directory, name);

    /// <summary>The short job writing to <paramref name="outDir"/>; an option in <paramref name="extra"/> replaces its default.</summary>
    private string[] Arguments(string outDir, params string[] extra)
    {
        (string Option, string Value)[] defaults =
            [("--data-dir", files.Directory), ("--device", "cpu"), ("--clients", "12"), ("--clients-per-round", "5"), ("--rounds", "2"), ("--batch-size", "16"), ("--eval-every", "2"), ("--seed", "3")];
        return ["run", .. defaults.Where(d => !extra.Contains(d.Option)).SelectMany(d => new[] { d.Option, d.Value }), "--quiet", "--out", outDir, .. extra];
    }

    /// <summary>Runs the CLI in this process; asserts exit code 0 and returns the run directory's final model.</summary>
    private static byte[] Model(string[] arguments)
    {
        var (code, _, err) = CliTests.Run(arguments);
        Assert.That(code, Is.EqualTo(0), err);
        return File.ReadAllBytes(Path.Combine(arguments[Array.IndexOf(arguments, "--out") + 1], "model.safetensors"));
    }

    /// <summary>The in-process run's final model with <paramref name="extra"/> options (computed once per option set).</summary>
    private byte[] Baseline(params string[] extra)
    {
        string key = string.Join(' ', extra);
        if (!baselines.TryGetValue(key, out var model))
        {
            model = Model(Arguments(Out($"baseline-{baselines.Count}"), extra));
            baselines[key] = model;
        }
        return model;
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

    private static JsonElement Summary(string outDir) => JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json"))).RootElement;

    private static string[][] MetricsRows(string outDir) =>
        File.ReadAllLines(Path.Combine(outDir, "metrics.csv")).Select(l => l.Split(',')).ToArray();

    private static string Column(string[][] rows, int row, string name) => rows[row][Array.IndexOf(rows[0], name)];

    [TestCase("dense")]
    [TestCase("swat")]
    [TestCase("topk-weights")]
    [TestCase("diff-on-topk")]
    [TestCase("topk-diff")]
    public void EveryStrategyEndsWithTheInProcessModelOnThreeSilos(string strategy)
    {
        string outDir = Out($"three-{strategy}");
        var model = Model(Arguments(outDir, "--strategy", strategy, "--cluster", cluster.Silos[0].ToString()));
        Assert.That(model, Is.EqualTo(Baseline("--strategy", strategy)), "model.safetensors byte for byte");
        var summary = Summary(outDir);
        Assert.That(summary.GetProperty("silos").GetArrayLength(), Is.EqualTo(3));
        Assert.That(summary.GetProperty("failed_clients").GetInt32(), Is.Zero);
        var rows = MetricsRows(outDir);
        Assert.That(Column(rows, 1, "silos"), Is.EqualTo("3"));
        // Each worker got the model once per round (3 x model bytes) and sent every upload back.
        long sent = long.Parse(Column(rows, 1, "coordinator_bytes_sent"));
        long received = long.Parse(Column(rows, 1, "coordinator_bytes_received"));
        long uploads = long.Parse(Column(rows, 1, "upload_bytes"));
        Assert.That(sent % 3, Is.Zero);
        Assert.That(sent, Is.GreaterThan(3L * 100_000));
        Assert.That(received, Is.GreaterThan(uploads), "uploads plus their framing");
        Assert.That(summary.GetProperty("coordinator_bytes_sent_total").GetInt64(), Is.EqualTo(sent + long.Parse(Column(rows, 2, "coordinator_bytes_sent"))));
    }

    /// <summary>The GPU code paths (OpenCL through rusticl in CI): two silos, each with its own device, against one process.</summary>
    [TestCaseSource(typeof(TestDevices), nameof(TestDevices.GpuSpecs))]
    public void OnAGpuBackendSilosEndWithTheInProcessModel(string spec)
    {
        var model = Model(Arguments(Out($"silos-{spec}"), "--device", spec, "--silos", "2"));
        Assert.That(model, Is.EqualTo(Baseline("--device", spec)));
    }

    [Test]
    public void SilosStartedByTheRunEndWithTheInProcessModel()
    {
        string outDir = Out("silos2");
        var model = Model(Arguments(outDir, "--rounds", "3", "--silos", "2"));
        Assert.That(model, Is.EqualTo(Baseline("--rounds", "3")), "run --silos 2 --rounds 3 against run --rounds 3");
        Assert.That(Summary(outDir).GetProperty("silos").GetArrayLength(), Is.EqualTo(2));
    }

    [Test]
    public void MalformedUploadsFromWorkersAreRejectedWithTheirReason()
    {
        string[] faults = ["--corrupt-upload-rate", "0.4", "--client-failure-rate", "0.1"];
        string outDir = Out("corrupt");
        var model = Model(Arguments(outDir, [.. faults, "--cluster", cluster.Silos[0].ToString()]));
        var summary = Summary(outDir);
        var reasons = summary.GetProperty("failures_by_reason");
        Assert.That(reasons.GetProperty("malformed upload").GetInt32(), Is.Positive, summary.ToString());
        var details = summary.GetProperty("failures").EnumerateArray().Select(f => f.GetString()!).Where(f => f.Contains("malformed upload")).ToList();
        Assert.That(details, Has.All.Match(": malformed upload: client \\d+(, layer [^:]+)?: .+"), "each rejection names its reason");
        Assert.That(model, Is.EqualTo(Baseline(faults)), "the same clients are rejected as in process, so the same model");
    }

    [Test]
    public void ASiloStoppedMidRoundIsRecordedAndTheRunFinishes()
    {
        string outDir = Out("stopped");
        var clock = Stopwatch.StartNew();
        var (code, _, err) = CliTests.Run(Arguments(outDir, "--rounds", "3", "--silos", "3", "--stop-silo-in-round", "2"));
        Assert.That(code, Is.EqualTo(0), err);
        var summary = Summary(outDir);
        Assert.That(summary.GetProperty("failures_by_reason").GetProperty("worker lost").GetInt32(), Is.Positive, summary.ToString());
        var rows = MetricsRows(outDir);
        Assert.That(Column(rows, 1, "silos"), Is.EqualTo("3"));
        Assert.That(Column(rows, 3, "silos"), Is.EqualTo("2"), "the next round runs on the silos left");
        Assert.That(Column(rows, 3, "failed_clients"), Is.EqualTo("0"));
        TestContext.Out.WriteLine($"run with a silo killed in round 2: {clock.Elapsed.TotalSeconds:F1} s; round 2 took {Column(rows, 2, "seconds")} s");
    }

    [Test]
    public void ASiloThatJoinsLaterGetsWorkInTheNextRound()
    {
        // Round 2 waits on the first silo until the second has joined: it must get work from round 3 on.
        var joined = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var small = LocalCluster.StartAsync(1, (_, name) => new WorkerSettings(name, DeviceSpec.Parse("cpu"), files.Directory, null, SiloCommand.Setup)
        {
            BeforeFit = round => round == 2 ? joined.Task : Task.CompletedTask,
        }, TimeSpan.FromSeconds(60)).GetAwaiter().GetResult();
        Microsoft.Extensions.Hosting.IHost? late = null;
        try
        {
            string outDir = Out("late-join");
            var run = Task.Run(() => CliTests.Run(Arguments(outDir, "--rounds", "4", "--cluster", small.Silos[0].ToString())));
            string metrics = Path.Combine(outDir, "metrics.csv");
            var clock = Stopwatch.StartNew();
            while (!run.IsCompleted && clock.Elapsed < TimeSpan.FromMinutes(5) && ReadOrEmpty(metrics).Split('\n', StringSplitOptions.RemoveEmptyEntries).Length < 2)
            {
                Thread.Sleep(20);
            }
            // A second silo joins the running cluster after round 1.
            int port = LocalCluster.FreePortPairs(1)[0];
            late = WorkerSilo.Build(new WorkerSettings($"127.0.0.1:{port}", DeviceSpec.Parse("cpu"), files.Directory, null, SiloCommand.Setup),
                System.Net.IPAddress.Loopback, port, port + 1, small.Silos[0].Silo);
            WorkerSilo.StartAsync(late, TimeSpan.FromSeconds(60), "the late silo").GetAwaiter().GetResult();
            joined.SetResult();
            var (code, _, err) = run.GetAwaiter().GetResult();
            Assert.That(code, Is.EqualTo(0), err);
            var rows = MetricsRows(outDir);
            Assert.That(Enumerable.Range(1, 4).Select(r => Column(rows, r, "silos")), Is.EqualTo(new[] { "1", "1", "2", "2" }), "the joined silo trains from the next round on");
            Assert.That(File.ReadAllBytes(Path.Combine(outDir, "model.safetensors")), Is.EqualTo(Baseline("--rounds", "4")));
        }
        finally
        {
            if (late is not null)
            {
                late.StopAsync(new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token).GetAwaiter().GetResult();
                late.Dispose();
            }
            small.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    [Test]
    public void AKilledCoordinatorResumesToTheUninterruptedModel()
    {
        string outDir = Out("killed-coordinator");
        var arguments = Arguments(outDir, "--rounds", "8", "--checkpoint-every", "1", "--silos", "2");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(TestContext.CurrentContext.TestDirectory, "zerofl.dll"));
        foreach (var a in arguments)
        {
            start.ArgumentList.Add(a);
        }
        using (var process = Process.Start(start)!)
        {
            // Killed (with its silos, which live in its process) once round 2's checkpoint is written.
            string checkpoint = Path.Combine(outDir, "checkpoint.json");
            var clock = Stopwatch.StartNew();
            while (!process.HasExited && clock.Elapsed < TimeSpan.FromMinutes(5)
                && !ReadOrEmpty(checkpoint).Contains("\"round\": 2"))
            {
                Thread.Sleep(20);
            }
            Assert.That(process.HasExited, Is.False, "the run was still going after round 2");
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }
        var (code, _, err) = CliTests.Run("run", "--resume", outDir);
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(File.ReadAllBytes(Path.Combine(outDir, "model.safetensors")), Is.EqualTo(Baseline("--rounds", "8")));
        Assert.That(MetricsRows(outDir).Skip(1).Select(r => r[0]), Is.EqualTo(Enumerable.Range(1, 8).Select(r => r.ToString())));
        Assert.That(Summary(outDir).GetProperty("silos").GetArrayLength(), Is.EqualTo(2), "the resumed run started its 2 silos again");
    }

    /// <summary>A coordinator of a remote cluster (<c>--cluster</c>), killed after round 2's checkpoint: <c>run --resume</c> joins the same cluster again and ends with the uninterrupted model.</summary>
    [Test]
    public void AKilledCoordinatorOfARemoteClusterResumesToTheUninterruptedModel()
    {
        string outDir = Out("killed-cluster-coordinator");
        var arguments = Arguments(outDir, "--rounds", "8", "--checkpoint-every", "1", "--cluster", cluster.Silos[0].ToString());
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(TestContext.CurrentContext.TestDirectory, "zerofl.dll"));
        foreach (var a in arguments)
        {
            start.ArgumentList.Add(a);
        }
        using (var process = Process.Start(start)!)
        {
            // The coordinator process is killed once round 2's checkpoint is written; the cluster (in this process) stays.
            string checkpoint = Path.Combine(outDir, "checkpoint.json");
            var clock = Stopwatch.StartNew();
            while (!process.HasExited && clock.Elapsed < TimeSpan.FromMinutes(5)
                && !ReadOrEmpty(checkpoint).Contains("\"round\": 2"))
            {
                Thread.Sleep(20);
            }
            Assert.That(process.HasExited, Is.False, "the run was still going after round 2");
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }
        var (code, _, err) = CliTests.Run("run", "--resume", outDir);
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(File.ReadAllBytes(Path.Combine(outDir, "model.safetensors")), Is.EqualTo(Baseline("--rounds", "8")));
        Assert.That(MetricsRows(outDir).Skip(1).Select(r => r[0]), Is.EqualTo(Enumerable.Range(1, 8).Select(r => r.ToString())));
        var summary = Summary(outDir);
        Assert.That(summary.GetProperty("cluster").GetString(), Does.Contain(cluster.Silos[0].ToString()), summary.ToString());
        Assert.That(summary.GetProperty("silos").GetArrayLength(), Is.EqualTo(3), "the resumed run trained on the cluster's 3 silos");
    }

    [Test]
    public void ASiloWithAnotherTrainingSetIsRefusedInOneLine()
    {
        using var other = new ZeroFL.Tests.Data.IdxFiles();
        other.WriteMnistLike(trainCount: 240, testCount: 40, gzip: true);
        File.WriteAllBytes(other.PathOf("train-labels-idx1-ubyte.gz"), ZeroFL.Tests.Data.IdxFiles.Gzip(ZeroFL.Tests.Data.IdxFiles.Encode(0x00000801, [240], ZeroFL.Tests.Data.IdxFiles.Bytes(240, 77, 10))));
        var stray = LocalCluster.StartAsync(1, (_, name) => new WorkerSettings(name, DeviceSpec.Parse("cpu"), other.Directory, null, SiloCommand.Setup), TimeSpan.FromSeconds(60)).GetAwaiter().GetResult();
        try
        {
            var (code, _, err) = CliTests.Run(Arguments(Out("stray"), "--cluster", stray.Silos[0].ToString()));
            Assert.That(code, Is.EqualTo(Program.RuntimeError), err);
            Assert.That(err.Trim().Split('\n'), Has.Length.EqualTo(1), err);
            Assert.That(err, Does.StartWith("zerofl: silo 127.0.0.1:").And.Contain("differs from the coordinator's"));
        }
        finally
        {
            stray.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    [Test]
    public void ASiloServingAnotherDataSetIsRefusedInOneLine()
    {
        var mnistOnly = LocalCluster.StartAsync(1, (_, name) => new WorkerSettings(name, DeviceSpec.Parse("cpu"), files.Directory, "mnist", SiloCommand.Setup), TimeSpan.FromSeconds(60)).GetAwaiter().GetResult();
        try
        {
            var (code, _, err) = CliTests.Run(Arguments(Out("mnist-only"), "--cluster", mnistOnly.Silos[0].ToString()));
            Assert.That(code, Is.EqualTo(Program.RuntimeError), err);
            Assert.That(err.Trim().Split('\n'), Has.Length.EqualTo(1), err);
            Assert.That(err, Does.Contain("serves data set mnist, the run asks for fashion-mnist"));
        }
        finally
        {
            mnistOnly.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    [Test]
    public void AnAddressNobodyAnswersIsOneLineWithinABoundedTime()
    {
        int port = LocalCluster.FreePortPairs(1)[0];
        var clock = Stopwatch.StartNew();
        var (code, _, err) = CliTests.Run(Arguments(Out("nobody"), "--cluster", $"127.0.0.1:{port}"));
        Assert.That(code, Is.EqualTo(Program.RuntimeError), err);
        Assert.That(err.Trim().Split('\n'), Has.Length.EqualTo(1), err);
        Assert.That(err, Does.StartWith($"zerofl: no silo answers at 127.0.0.1:{port}"));
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(60)));
    }

    [TestCase("run", "--silos", "-1")]
    [TestCase("run", "--silos", "2", "--cluster", "127.0.0.1:5000")]
    [TestCase("run", "--devices", "cpu,cpu")]
    [TestCase("run", "--silos", "2", "--devices", "cpu")]
    [TestCase("run", "--silos", "2", "--devices", "cpu,tpu")]
    [TestCase("run", "--cluster", "localhost")]
    [TestCase("run", "--cluster", "127.0.0.1:70000")]
    [TestCase("run", "--fit-timeout", "0")]
    [TestCase("run", "--stop-silo-in-round", "2")]
    [TestCase("silo", "--listen", "nowhere")]
    [TestCase("silo", "--device", "cpu")]
    [TestCase("silo", "--listen", "127.0.0.1:7000", "--join", "127.0.0.1:x")]
    [TestCase("silo", "--listen", "127.0.0.1:7000", "--dataset", "svhn")]
    public void BadClusterOptionsGiveOneLineAndExitCode2(params string[] args)
    {
        var (code, _, err) = CliTests.Run(args);
        Assert.That(code, Is.EqualTo(Program.UsageError), err);
        Assert.That(err.Trim().Split('\n'), Has.Length.EqualTo(1), err);
        Assert.That(err, Does.StartWith("zerofl: "));
    }
}
