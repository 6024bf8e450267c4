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

    /// <summary>Runs the short job to the end in files/<paramref name="name"/>: the directory and its final model's bytes.</summary>
    private (string Directory, byte[] Model) CompletedRun(string name)
    {
        string directory = Path.Combine(files.Directory, name);
        var (code, err) = RunInProcess(RunArguments(directory));
        Assert.That(code, Is.EqualTo(0), err);
        return (directory, File.ReadAllBytes(Path.Combine(directory, "model.safetensors")));
    }

    private string[] RunArguments(string outDir) =>
        ["run", "--data-dir", files.Directory, "--device", "cpu", "--clients", "12", "--clients-per-round", "3", "--rounds", "6",
         "--batch-size", "16", "--eval-every", "2", "--checkpoint-every", "1", "--seed", "5", "--quiet", "--out", outDir];

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

    [Test]
    public void ARunKilledAtThreeRandomMomentsAndResumedEndsWithTheSameModel()
    {
        var (baseline, expected) = CompletedRun("baseline");

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
            var (code, err) = started ? RunInProcess("run", "--resume", outDir) : RunInProcess(RunArguments(outDir));
            Assert.That(code, Is.EqualTo(0), $"attempt {attempt} (killed {extraMilliseconds} ms after round {afterRounds}): {err}");
            Assert.That(File.ReadAllBytes(Path.Combine(outDir, "model.safetensors")), Is.EqualTo(expected), $"attempt {attempt}: the final model, killed {extraMilliseconds} ms after round {afterRounds}");
            var rounds = File.ReadAllLines(Path.Combine(outDir, "metrics.csv")).Skip(1).Select(l => l.Split(',')[0]);
            Assert.That(rounds, Is.EqualTo(Enumerable.Range(1, 6).Select(r => r.ToString())), "each round once in metrics.csv");
        }
        Assert.That(killed, Is.Positive, "at least one run was really killed mid-way");
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
