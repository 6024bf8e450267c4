using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// What crosses the bus, counted. On a GPU every read of device memory by the host is a full
/// device synchronisation (the GPU idles while the host decides); on the CPU accelerator it is
/// free, but it is counted the same so that a CPU run shows what a GPU run would wait for.
/// </summary>
public sealed class HostTraffic
{
    /// <summary>Times the host waited for the device (explicit synchronisations and reads).</summary>
    public long Syncs { get; internal set; }

    /// <summary>Bytes copied from device to host.</summary>
    public long DeviceToHostBytes { get; internal set; }

    /// <summary>Bytes copied from host to device.</summary>
    public long HostToDeviceBytes { get; internal set; }

    /// <summary>The counts now, to subtract from a later snapshot.</summary>
    public (long Syncs, long DeviceToHostBytes, long HostToDeviceBytes) Snapshot() => (Syncs, DeviceToHostBytes, HostToDeviceBytes);
}

/// <summary>Host synchronisation and copies, every one counted in <see cref="Traffic"/>.</summary>
public sealed partial class KernelLaunch
{
    /// <summary>
    /// <c>ZEROFL_TRACE_SYNCS=1</c>: every host synchronisation prints its callers on stderr, to find
    /// what makes a GPU step wait.
    /// </summary>
    private static readonly bool TraceSyncs = Environment.GetEnvironmentVariable("ZEROFL_TRACE_SYNCS") == "1";

    /// <summary>Every synchronisation and copy made through this launch policy.</summary>
    public HostTraffic Traffic { get; } = new();

    /// <summary>Waits for every launched kernel (one host sync).</summary>
    public void Synchronize()
    {
        Traffic.Syncs++;
        if (TraceSyncs)
        {
            // Where the host waits: the callers, innermost first (a GPU step should show none).
            var callers = new System.Diagnostics.StackTrace().GetFrames().Skip(1).Take(6)
                .Select(f => $"{f.GetMethod()?.DeclaringType?.Name}.{f.GetMethod()?.Name}");
            Console.Error.WriteLine($"zerofl: host sync at {string.Join(" <- ", callers)}");
        }
        Accelerator.Synchronize();
    }

    /// <summary>Waits for the device, then copies <paramref name="source"/> into <paramref name="destination"/> (one host sync).</summary>
    public void ReadBack<T>(ArrayView<T> source, Span<T> destination)
        where T : unmanaged
    {
        Synchronize();
        Traffic.DeviceToHostBytes += source.LengthInBytes;
        source.CopyToCPU(destination);
    }

    /// <summary>Copies <paramref name="source"/> from the host into <paramref name="destination"/>.</summary>
    public void Upload<T>(ReadOnlySpan<T> source, ArrayView<T> destination)
        where T : unmanaged
    {
        Traffic.HostToDeviceBytes += (long)source.Length * Marshal.SizeOf<T>();
        destination.CopyFromCPU(source);
    }
}
