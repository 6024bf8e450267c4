using System.Diagnostics;
using ZeroFL.Engine.Devices;
using ZeroFL.Tests.Cli;

namespace ZeroFL.Tests.Engine;

/// <summary>
/// Device selection and the OpenCL compatibility mode (Mesa rusticl on llvmpipe). The tests that
/// open the device need the process started with RUSTICL_ENABLE=llvmpipe and the Debian package
/// mesa-opencl-icd, as .ci/run does; elsewhere they are inconclusive.
/// </summary>
[NonParallelizable]
public sealed class DeviceSelectionTests
{
    private static void AssumeCompatibilityDevice()
    {
        using var context = ComputeDevice.CreateContext();
        Assume.That(context.Devices.Any(ComputeDevice.NeedsCompatibilityMode), Is.True,
            "no Mesa rusticl llvmpipe device: start the tests with RUSTICL_ENABLE=llvmpipe (mesa-opencl-icd installed)");
    }

    [Test]
    public void AutoNeverPicksTheCompatibilityDevice()
    {
        AssumeCompatibilityDevice();
        using var context = ComputeDevice.CreateContext();
        var picked = ComputeDevice.PickAuto(context.Devices.ToList());
        Assert.That(picked, Is.Not.Null);
        Assert.That(ComputeDevice.NeedsCompatibilityMode(picked!), Is.False, picked!.Name);
    }

    [Test]
    public void OpeningTheCompatibilityDeviceSaysSoOnceAndNamesTheDevice()
    {
        AssumeCompatibilityDevice();
        using var notices = new StringWriter();
        using var device = ComputeDevice.Open(DeviceSpec.Parse("opencl"), notices);
        Assert.That(device.IsCompatibilityMode, Is.True);
        Assert.That(device.Kernels.Launch.Features.DynamicSharedMemory, Is.False);
        Assert.That(device.Description, Does.StartWith("opencl:0 ").And.Contain("llvmpipe"));
        var lines = notices.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(1));
        Assert.That(lines[0], Does.Contain("compatibility mode"));
    }

    [Test]
    public void DevicesListsTheCompatibilityDeviceWithWhyItNeedsTheMode()
    {
        AssumeCompatibilityDevice();
        var (code, stdout, _) = CliTests.Run("devices");
        Assert.That(code, Is.EqualTo(0));
        Assert.That(stdout, Does.Contain("opencl:0").And.Contain("llvmpipe").And.Contain("compatibility mode"));
        var autoLine = stdout.Split('\n').Single(l => l.Contains("<- auto"));
        Assert.That(autoLine, Does.Not.Contain("llvmpipe"));
    }

    [Test]
    public void TheCompatibilityModeWithoutItsVariableIsOneLineAndExitCode1()
    {
        // rusticl reads the variable when the process loads OpenCL: a child process without it.
        string cli = Path.Combine(AppContext.BaseDirectory, "zerofl.dll");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { cli, "profile", "--model", "cnn", "--device", "opencl" })
        {
            start.ArgumentList.Add(arg);
        }
        start.Environment.Remove(OpenClCompatibility.EnableVariable);
        using var process = Process.Start(start)!;
        string stdout = process.StandardOutput.ReadToEnd();
        string stderr = process.StandardError.ReadToEnd();
        Assert.That(process.WaitForExit(120_000), Is.True);
        Assert.That(process.ExitCode, Is.EqualTo(1), stderr);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(1), stderr);
        Assert.That(lines[0], Does.StartWith("zerofl: no OpenCL device found").And.Contain("RUSTICL_ENABLE=llvmpipe"));
        Assert.That(stdout, Is.Empty);
    }
}
