using ZeroFL.Cli;

namespace ZeroFL.Tests.Cli;

/// <summary>The command line: bad input gives one line on stderr and exit code 2.</summary>
[NonParallelizable]
public sealed class CliTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var originalOut = Console.Out;
        var originalErr = Console.Error;
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        Console.SetOut(stdout);
        Console.SetError(stderr);
        try
        {
            int code = Program.Main(args);
            return (code, stdout.ToString(), stderr.ToString());
        }
        finally
        {
            Console.SetOut(originalOut);
            Console.SetError(originalErr);
        }
    }

    [TestCase("train", "--epochs", "0")]
    [TestCase("train", "--batch-size", "-3")]
    [TestCase("train", "--lr", "-1")]
    [TestCase("train", "--model", "vgg")]
    [TestCase("train", "--device", "tpu")]
    [TestCase("train", "--epochs", "many")]
    [TestCase("train", "--no-such-option")]
    [TestCase("frobnicate")]
    public void BadCommandLineGivesOneLineAndExitCode2(params string[] args)
    {
        var (code, _, err) = Run(args);
        Assert.That(code, Is.EqualTo(Program.UsageError), err);
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(1), err);
        Assert.That(lines[0], Does.StartWith("zerofl: "));
    }

    [Test]
    public void NoVerbIsAUsageError()
    {
        var (code, _, err) = Run();
        Assert.That(code, Is.EqualTo(Program.UsageError));
        Assert.That(err, Does.Contain("--help"));
    }

    [Test]
    public void HelpListsEveryTrainOption()
    {
        var (code, output, _) = Run("train", "--help");
        Assert.That(code, Is.EqualTo(0));
        foreach (var option in new[] { "--dataset", "--data-dir", "--model", "--epochs", "--batch-size", "--lr", "--device", "--out" })
        {
            Assert.That(output, Does.Contain(option));
        }
    }

    [Test]
    public void DevicesListsTheCpuAcceleratorAndTheAutoChoice()
    {
        var (code, output, err) = Run("devices");
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(output, Does.Contain("cpu:0"));
        Assert.That(output, Does.Contain("<- auto"));
    }

    [Test]
    public void MissingDatasetIsARuntimeErrorWithAnInstallHint()
    {
        string empty = Directory.CreateTempSubdirectory("zerofl-empty-").FullName;
        try
        {
            var (code, _, err) = Run("train", "--data-dir", empty, "--device", "cpu", "--out", Path.Combine(empty, "out"));
            Assert.That(code, Is.EqualTo(Program.RuntimeError));
            Assert.That(err.Trim().Split('\n'), Has.Length.EqualTo(1), err);
            Assert.That(err, Does.Contain("fashion-mnist"));
        }
        finally
        {
            Directory.Delete(empty, recursive: true);
        }
    }
}
