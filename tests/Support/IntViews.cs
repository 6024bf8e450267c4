using ILGPU;
using ILGPU.Runtime;
using ZeroFL.Engine.Devices;

namespace ZeroFL.Tests.Support;

/// <summary>Host copies of integer device views (argmax, labels, predictions, counters).</summary>
public static class IntViews
{
    /// <summary>Copies <paramref name="view"/> back to the host after synchronising <paramref name="device"/>.</summary>
    public static int[] Download(this ArrayView<int> view, ComputeDevice device)
    {
        device.Synchronize();
        var result = new int[view.Length];
        view.CopyToCPU(result);
        return result;
    }

    /// <summary>Copies <paramref name="view"/> (16-bit patterns) back to the host after synchronising <paramref name="device"/>.</summary>
    public static ushort[] Download(this ArrayView<ushort> view, ComputeDevice device)
    {
        device.Synchronize();
        var result = new ushort[view.Length];
        view.CopyToCPU(result);
        return result;
    }
}
