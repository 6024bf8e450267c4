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

    /// <summary>FedAdam at a server learning rate that keeps the tiny run stable.</summary>
    private static readonly string[] FedAdam = ["--server-optimizer", "fedadam", "--server-lr", "0.01"];

    /// <summary>Runs the short job to the end in files/<paramref name="name"/>: the directory and its final model's bytes.</summary>
    private (string Directory, byte[] Model) CompletedRun(string name, params string[] extra)
    {
        string directory = Path.Combine(files.Directory, name);
        var (code, err) = RunInProcess(RunArguments(directory, extra));
        Assert.That(code, Is.EqualTo(0), err);
        return (directory, File.ReadAllBytes(Path.Combine(directory, "model.safetensors")));
    }

    private string[] RunArguments(string outDir, params string[] extra) =>
        ["run", "--data-dir", files.Directory, "--device", "cpu", "--clients", "12", "--clients-per-round", "3", "--rounds", "6",
         "--batch-size", "16", "--eval-every", "2", "--checkpoint-every", "1", "--mask-record-every", "2", "--seed", "5", "--quiet", "--out", outDir, .. extra];

    private static (int Code, string Err) RunInProcess(params string[] args)
    {
        var (code, _, err) = CliTests.Run(args);
        return (code, err);
    }

    private static int ReadLines(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            int lines = 0;
            while (reader.ReadLine() is not null)
            {
                lines++;
            }
            return lines;
        }
        catch (IOException)
        {
            return 0; // being replaced at this moment
        }
    }

    [TestCase("fedavg")]
    [TestCase("fedadam")]
    public void ARunKilledAtThreeRandomMomentsAndResumedEndsWithTheSameModel(string serverOptimizer)
    {
        string[] extra = serverOptimizer == "fedadam" ? FedAdam : [];
        var (baseline, expected) = CompletedRun($"baseline-{serverOptimizer}", extra);

        string cli = Path.Combine(TestContext.CurrentContext.TestDirectory, "zerofl.dll");
        var random = new Random(17);
        int killed = 0;
        for (int attempt = 0; attempt < 3; attempt++)
        {
            string outDir = Path.Combine(files.Directory, $"killed{attempt}-{serverOptimizer}");
            var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
            start.ArgumentList.Add(cli);
            foreach (var a in RunArguments(outDir, extra))
            {
                start.ArgumentList.Add(a);
            }
            using var process = Process.Start(start)!;
            // Kill at a random moment inside the run: once metrics.csv shows a random number of
            // finished rounds, after a further random delay (timing alone is no guide: start-up and
            // round times vary with the machine's load).
            int afterRounds = 1 + 2 * attempt + random.Next(2);
            int extraMilliseconds = random.Next(60);
            string metrics = Path.Combine(outDir, "metrics.csv");
            while (!process.HasExited && (!File.Exists(metrics) || ReadLines(metrics) < 1 + afterRounds))
            {
                Thread.Sleep(5);
            }
            Thread.Sleep(extraMilliseconds);
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                killed++;
            }
            process.WaitForExit();
            // Killed before the first checkpoint: nothing to resume, the run starts over.
            bool started = File.Exists(Path.Combine(outDir, "checkpoint.json")) || File.Exists(Path.Combine(outDir, "checkpoint.prev.json"));
            var (code, err) = started ? RunInProcess("run", "--resume", outDir) : RunInProcess(RunArguments(outDir, extra));
            Assert.That(code, Is.EqualTo(0), $"attempt {attempt} (killed {extraMilliseconds} ms after round {afterRounds}): {err}");
            Assert.That(File.ReadAllBytes(Path.Combine(outDir, "model.safetensors")), Is.EqualTo(expected), $"attempt {attempt}: the final model, killed {extraMilliseconds} ms after round {afterRounds}");
            var rounds = File.ReadAllLines(Path.Combine(outDir, "metrics.csv")).Skip(1).Select(l => l.Split(',')[0]);
            Assert.That(rounds, Is.EqualTo(Enumerable.Range(1, 6).Select(r => r.ToString())), "each round once in metrics.csv");
            Assert.That(File.ReadAllLines(Path.Combine(outDir, "layers.csv")), Is.EqualTo(File.ReadAllLines(Path.Combine(baseline, "layers.csv"))),
                $"attempt {attempt}: the same non-zero ratios and mask stability");
        }
        Assert.That(killed, Is.Positive, "at least one run was really killed mid-way");
    }

    /// <summary>
    /// The mask record travels in the checkpoint: resumed after round 3 (checkpoints every 3
    /// rounds, records every 2), the record of round 2 is the predecessor of round 4's.
    /// </summary>
    [Test]
    public void AResumedRunWritesTheSameMaskStabilityAsOneLeftAlone()
    {
        string[] Arguments(string outDir)
        {
            var arguments = RunArguments(outDir);
            arguments[Array.IndexOf(arguments, "--checkpoint-every") + 1] = "3";
            return arguments;
        }
        string whole = Path.Combine(files.Directory, "masks-whole"), resumed = Path.Combine(files.Directory, "masks-resumed");
        foreach (var outDir in new[] { whole, resumed })
        {
            var (code, err) = RunInProcess(Arguments(outDir));
            Assert.That(code, Is.EqualTo(0), err);
        }
        // Lose the last checkpoint (round 6): the run resumes from round 3's.
        File.Delete(Path.Combine(resumed, "checkpoint.json"));
        File.Delete(Path.Combine(resumed, "model.safetensors"));
        using (var state = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(resumed, "checkpoint.prev.json"))))
        {
            var record = state.RootElement.GetProperty("totals").GetProperty("analyses").GetProperty("mask_record");
            Assert.That(state.RootElement.GetProperty("round").GetInt32(), Is.EqualTo(3));
            Assert.That(record.GetProperty("round").GetInt32(), Is.EqualTo(2), "the checkpoint after round 3 holds round 2's record");
        }
        var (resumeCode, resumeErr) = RunInProcess("run", "--resume", resumed);
        Assert.That(resumeCode, Is.EqualTo(0), resumeErr);
        Assert.That(resumeErr, Does.Contain("previous checkpoint (after round 3)"));
        var layers = File.ReadAllLines(Path.Combine(resumed, "layers.csv"));
        Assert.That(layers, Is.EqualTo(File.ReadAllLines(Path.Combine(whole, "layers.csv"))));
        Assert.That(layers.Count(l => l.StartsWith("4,", StringComparison.Ordinal) && !l.EndsWith(',')), Is.EqualTo(2), "round 4 has a stability per sparse layer");
        Assert.That(File.ReadAllBytes(Path.Combine(resumed, "model.safetensors")), Is.EqualTo(File.ReadAllBytes(Path.Combine(whole, "model.safetensors"))));
        using var summary = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(resumed, "summary.json")));
        using var wholeSummary = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(whole, "summary.json")));
        foreach (var key in new[] { "final_test_accuracy_dense_weights", "final_val_accuracy", "final_val_loss" })
        {
            Assert.That(summary.RootElement.GetProperty(key).GetDouble(), Is.EqualTo(wholeSummary.RootElement.GetProperty(key).GetDouble()), key);
        }
    }

    [Test]
    public void ADamagedCheckpointFallsBackToThePreviousOneWithAWarning()
    {
        var (baseline, expected) = CompletedRun("whole");

        var model = Path.Combine(baseline, "checkpoint.safetensors");
        var bytes = File.ReadAllBytes(model);
        bytes[^3] ^= 0x40;
        File.WriteAllBytes(model, bytes);
        File.Delete(Path.Combine(baseline, "model.safetensors"));
        var (code, err) = RunInProcess("run", "--resume", baseline);
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(err, Does.Contain("warning").And.Contain("checksum").And.Contain("previous checkpoint (after round 5)"));
        Assert.That(File.ReadAllBytes(Path.Combine(baseline, "model.safetensors")), Is.EqualTo(expected), "round 6 run again from round 5's checkpoint");
    }

    /// <summary>
    /// FedAdam's m and v are part of the checkpoint: a damaged state file falls back to the previous
    /// checkpoint, and round 6 run again from there (with round 5's m and v) gives the same model.
    /// </summary>
    [Test]
    public void ADamagedServerOptimizerStateFallsBackToThePreviousCheckpoint()
    {
        var (baseline, expected) = CompletedRun("adam-whole", FedAdam);

        var state = Path.Combine(baseline, "checkpoint.server-optimizer.safetensors");
        var bytes = File.ReadAllBytes(state);
        bytes[^5] ^= 0x10;
        File.WriteAllBytes(state, bytes);
        File.Delete(Path.Combine(baseline, "model.safetensors"));
        var (code, err) = RunInProcess("run", "--resume", baseline);
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(err, Does.Contain("warning").And.Contain("server-optimizer").And.Contain("previous checkpoint (after round 5)"));
        Assert.That(File.ReadAllBytes(Path.Combine(baseline, "model.safetensors")), Is.EqualTo(expected), "round 6 run again from round 5's model, m and v");
    }

    [Test]
    public void ARunStoppedBetweenTheTwoCheckpointRenamesResumesFromTheLatestModel()
    {
        var (baseline, expected) = CompletedRun("renames");

        // Save's first rename done, its second not: checkpoint.json (round 6) now names a model that
        // lies in checkpoint.prev.safetensors, and checkpoint.prev.json (round 5) a model that is gone.
        File.Move(Path.Combine(baseline, "checkpoint.safetensors"), Path.Combine(baseline, "checkpoint.prev.safetensors"), overwrite: true);
        File.Delete(Path.Combine(baseline, "model.safetensors"));
        var (code, err) = RunInProcess("run", "--resume", baseline);
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(err, Does.Not.Contain("previous checkpoint"));
        Assert.That(File.ReadAllBytes(Path.Combine(baseline, "model.safetensors")), Is.EqualTo(expected), "resumed after round 6, the last one");
    }

    /// <summary>
    /// The upload value width is one of the options a checkpoint keeps: a resumed fp16 run goes on
    /// in fp16 and ends with the fp16 run's model (which differs from the fp32 one).
    /// </summary>
    [Test]
    public void AResumedRunKeepsItsUploadValueWidth()
    {
        string Finished(string name, string values)
        {
            string directory = Path.Combine(files.Directory, name);
            var (code, err) = RunInProcess([.. RunArguments(directory), "--upload-values", values]);
            Assert.That(code, Is.EqualTo(0), err);
            return directory;
        }
        string fp16 = Finished("fp16", "fp16");
        var expected = File.ReadAllBytes(Path.Combine(fp16, "model.safetensors"));
        Assert.That(expected, Is.Not.EqualTo(File.ReadAllBytes(Path.Combine(Finished("fp32", "fp32"), "model.safetensors"))));

        // Round 6's checkpoint damaged: the resume runs round 6 again from round 5's.
        var model = Path.Combine(fp16, "checkpoint.safetensors");
        var bytes = File.ReadAllBytes(model);
        bytes[^3] ^= 0x40;
        File.WriteAllBytes(model, bytes);
        File.Delete(Path.Combine(fp16, "model.safetensors"));
        var (resumed, error) = RunInProcess("run", "--resume", fp16);
        Assert.That(resumed, Is.EqualTo(0), error);
        Assert.That(error, Does.Contain("previous checkpoint (after round 5)"));
        Assert.That(File.ReadAllBytes(Path.Combine(fp16, "model.safetensors")), Is.EqualTo(expected));
        using var summary = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(fp16, "summary.json")));
        Assert.That(summary.RootElement.GetProperty("upload_values").GetString(), Is.EqualTo("fp16"));
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
