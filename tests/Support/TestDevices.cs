using ILGPU;
using ILGPU.Runtime;
using ZeroFL.Engine.Devices;

namespace ZeroFL.Tests.Support;

/// <summary>
/// The accelerators the device-parameterised fixtures run on: the CPU accelerator always, and
/// CUDA or OpenCL where this machine has one. One <see cref="ComputeDevice"/> per accelerator is
/// opened for the whole run, so kernels are loaded once.
/// </summary>
public static class TestDevices
{
    private static readonly Dictionary<string, ComputeDevice> Open = new();
    private static readonly object Gate = new();

    /// <summary>Device specs for <c>TestFixtureSource</c>.</summary>
    public static IEnumerable<string> Specs()
    {
        yield return "cpu";
        using var context = ComputeDevice.CreateContext();
        if (context.Devices.Any(d => d.AcceleratorType == AcceleratorType.Cuda))
        {
            yield return "cuda";
        }
        if (context.Devices.Any(d => d.AcceleratorType == AcceleratorType.OpenCL))
        {
            yield return "opencl";
        }
    }

    /// <summary>The specs of <see cref="Specs"/> other than the CPU accelerator: the GPU code paths.</summary>
    public static IEnumerable<string> GpuSpecs() => Specs().Where(s => s != "cpu");

    /// <summary>The shared device for <paramref name="spec"/>.</summary>
    public static ComputeDevice Get(string spec)
    {
        lock (Gate)
        {
            if (!Open.TryGetValue(spec, out var device))
            {
                device = ComputeDevice.Open(DeviceSpec.Parse(spec));
                Open[spec] = device;
            }
            return device;
        }
    }

    /// <summary>Disposes every device opened by the run.</summary>
    public static void DisposeAll()
    {
        lock (Gate)
        {
            foreach (var device in Open.Values)
            {
                device.Dispose();
            }
            Open.Clear();
        }
    }
}

/// <summary>Closes the shared devices after the last test.</summary>
[SetUpFixture]
public sealed class TestDevicesTeardown
{
    /// <summary>Runs once after every test.</summary>
    [OneTimeTearDown]
    public void DisposeDevices() => TestDevices.DisposeAll();
}

/// <summary>
/// Base of every fixture that runs kernels: parameterised by accelerator through
/// <c>[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Specs))]</c>, with helpers to
/// move arrays to and from the device. Buffers made by <see cref="Upload"/> are freed after each test.
/// </summary>
public abstract class DeviceTest
{
    private readonly List<IDisposable> buffers = new();

    /// <summary>Creates the fixture for the given device spec.</summary>
    protected DeviceTest(string deviceSpec)
    {
        DeviceSpecText = deviceSpec;
    }

    /// <summary>The spec this fixture runs on ("cpu", "cuda", "opencl").</summary>
    protected string DeviceSpecText { get; }

    /// <summary>The shared device.</summary>
    protected ComputeDevice Device => TestDevices.Get(DeviceSpecText);

    /// <summary>Copies <paramref name="data"/> to a new device buffer freed after the test.</summary>
    protected ArrayView<float> Upload(float[] data)
    {
        var buffer = Device.Accelerator.Allocate1D(data);
        buffers.Add(buffer);
        return buffer.View;
    }

    /// <summary>Copies <paramref name="data"/> to a new device buffer freed after the test.</summary>
    protected ArrayView<int> Upload(int[] data)
    {
        var buffer = Device.Accelerator.Allocate1D(data);
        buffers.Add(buffer);
        return buffer.View;
    }

    /// <summary>Copies <paramref name="data"/> to a new device buffer freed after the test.</summary>
    protected ArrayView<ushort> Upload(ushort[] data)
    {
        var buffer = Device.Accelerator.Allocate1D(data);
        buffers.Add(buffer);
        return buffer.View;
    }

    /// <summary>A zeroed device buffer of <paramref name="length"/> floats freed after the test.</summary>
    protected ArrayView<float> Zeros(long length)
    {
        var buffer = Device.Accelerator.Allocate1D<float>(length);
        buffer.MemSetToZero();
        buffers.Add(buffer);
        return buffer.View;
    }

    /// <summary>Copies a device view back to the host.</summary>
    protected float[] Download(ArrayView<float> view)
    {
        Device.Synchronize();
        var result = new float[view.Length];
        view.CopyToCPU(result);
        return result;
    }

    /// <summary>Frees the buffers of the finished test.</summary>
    [TearDown]
    public void FreeBuffers()
    {
        foreach (var buffer in buffers)
        {
            buffer.Dispose();
        }
        buffers.Clear();
    }
}
