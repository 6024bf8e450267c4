using System.Diagnostics;
using ZeroFL.Cli;

namespace ZeroFL.Tests.Cli;

/// <summary>
/// Checkpoints and <c>run --resume</c>: a run killed at any moment and resumed ends with the same
/// final model, bit for bit, as the same run left alone (CPU accelerator).
/// </summary>
[NonParallelizable]
public sealed class ResumeTests
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

    private string[] RunArguments(string outDir) =>
        ["run", "--data-dir", files.Directory, "--device", "cpu", "--clients", "12", "--clients-per-round", "3", "--rounds", "6",
         "--batch-size", "16", "--eval-every", "2", "--checkpoint-every", "1", "--seed", "5", "--quiet", "--out", outDir];

    private static (int Code, string Err) RunInProcess(params string[] args)
    {
        var (code, _, err) = CliTests.Run(args);
        return (code, err);
    }

    [Test]
    public void ARunKilledAtThreeRandomMomentsAndResumedEndsWithTheSameModel()
    {
        string baseline = Path.Combine(files.Directory, "baseline");
        var clock = Stopwatch.StartNew();
        var (code, err) = RunInProcess(RunArguments(baseline));
        Assert.That(code, Is.EqualTo(0), err);
        double seconds = clock.Elapsed.TotalSeconds;
        var expected = File.ReadAllBytes(Path.Combine(baseline, "model.safetensors"));

        string cli = Path.Combine(TestContext.CurrentContext.TestDirectory, "zerofl.dll");
        var random = new Random(17);
        int killed = 0;
        for (int attempt = 0; attempt < 3; attempt++)
        {
            string outDir = Path.Combine(files.Directory, $"killed{attempt}");
            var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
            start.ArgumentList.Add(cli);
            foreach (var a in RunArguments(outDir))
            {
                start.ArgumentList.Add(a);
            }
            using var process = Process.Start(start)!;
            // Start-up of a fresh process takes about a second; the rounds take about what the baseline took.
            int delay = (int)(1000 * (0.8 + random.NextDouble() * (seconds + 0.5)));
            if (!process.WaitForExit(delay))
            {
                process.Kill(entireProcessTree: true);
                killed++;
            }
            process.WaitForExit();
            if (!File.Exists(Path.Combine(outDir, "checkpoint.json")) && !File.Exists(Path.Combine(outDir, "checkpoint.prev.json")))
            {
                // Killed before the first checkpoint: nothing to resume, the run starts over.
                (code, err) = RunInProcess(RunArguments(outDir));
            }
            else
            {
                (code, err) = RunInProcess("run", "--resume", outDir);
            }
            Assert.That(code, Is.EqualTo(0), $"attempt {attempt} (killed after {delay} ms): {err}");
            Assert.That(File.ReadAllBytes(Path.Combine(outDir, "model.safetensors")), Is.EqualTo(expected), $"attempt {attempt}: the final model, killed after {delay} ms");
            var rounds = File.ReadAllLines(Path.Combine(outDir, "metrics.csv")).Skip(1).Select(l => l.Split(',')[0]);
            Assert.That(rounds, Is.EqualTo(Enumerable.Range(1, 6).Select(r => r.ToString())), "each round once in metrics.csv");
        }
        Assert.That(killed, Is.Positive, "at least one run was really killed mid-way");
    }

    [Test]
    public void ADamagedCheckpointFallsBackToThePreviousOneWithAWarning()
    {
        string baseline = Path.Combine(files.Directory, "whole");
        var (code, err) = RunInProcess(RunArguments(baseline));
        Assert.That(code, Is.EqualTo(0), err);
        var expected = File.ReadAllBytes(Path.Combine(baseline, "model.safetensors"));

        var model = Path.Combine(baseline, "checkpoint.safetensors");
        var bytes = File.ReadAllBytes(model);
        bytes[^3] ^= 0x40;
        File.WriteAllBytes(model, bytes);
        File.Delete(Path.Combine(baseline, "model.safetensors"));
        (code, err) = RunInProcess("run", "--resume", baseline);
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(err, Does.Contain("warning").And.Contain("checksum").And.Contain("previous checkpoint (after round 5)"));
        Assert.That(File.ReadAllBytes(Path.Combine(baseline, "model.safetensors")), Is.EqualTo(expected), "round 6 run again from round 5's checkpoint");
    }

    [Test]
    public void ResumingADirectoryWithoutACheckpointIsAOneLineError()
    {
        string empty = Path.Combine(files.Directory, "empty");
        Directory.CreateDirectory(empty);
        var (code, err) = RunInProcess("run", "--resume", empty);
        Assert.That(code, Is.EqualTo(Program.RuntimeError));
        Assert.That(err.Trim().Split('\n'), Has.Length.EqualTo(1), err);
        Assert.That(err, Does.Contain("no usable checkpoint"));
    }
}
