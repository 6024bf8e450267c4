using ILGPU;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>
/// What an exact magnitude top-K keeps: every element whose magnitude key (the bit pattern of |x|,
/// see <see cref="TopKKernels"/>) is greater than <see cref="ThresholdBits"/>, and of the elements
/// whose key equals it, the first <see cref="TiesToKeep"/> in increasing index order.
/// <see cref="TopKKernels.Select"/> makes one; <see cref="TopKKernels.Mask"/>,
/// <see cref="TopKKernels.Compress"/> and <see cref="TopKKernels.CountKept"/> apply one, to the same
/// tensor or (threshold reuse) to a changed one.
/// <para>
/// Where it lives: a selection made on a GPU backend into a caller's state view stays on the
/// device (<see cref="OnDeviceOnly"/>): only K is known on the host, and every kernel that applies
/// it reads the threshold and the ties from <see cref="State"/>, so nothing is read back. The
/// host fields of such a selection are 0; <see cref="SelectionStates.OnHost"/> reads them (one
/// sync) where a host decision needs them.
/// </para>
/// </summary>
/// <param name="ThresholdBits">
/// Magnitude key of the K-th largest element: <c>bits(x) &amp; 0x7FFFFFFF</c>. A value above
/// <c>0x7FFFFFFF</c> (as in <see cref="None"/>) keeps nothing.
/// </param>
/// <param name="TiesToKeep">How many elements with key == <see cref="ThresholdBits"/> are kept, lowest index first (at least 0).</param>
/// <param name="Kept">K: how many elements the selection kept on the tensor it was selected from.</param>
/// <param name="Tied">How many elements of that tensor had key == <see cref="ThresholdBits"/> (at least <see cref="TiesToKeep"/>).</param>
public readonly record struct TopKSelection(uint ThresholdBits, int TiesToKeep, int Kept, int Tied)
{
    /// <summary>Ints of a device state: threshold bits, ties to keep, tied, error flag.</summary>
    public const int StateInts = 4;

    /// <summary>The selection that keeps nothing (K = 0).</summary>
    public static TopKSelection None => new(uint.MaxValue, 0, 0, 0);

    /// <summary>
    /// The selection as the device holds it (<see cref="StateInts"/> ints: threshold bits, ties to
    /// keep, tied, error flag), or an empty view when only the host has it.
    /// </summary>
    public ArrayView<int> State { get; init; }

    /// <summary>True when only <see cref="State"/> holds the threshold, the ties and the tie count (the host fields are 0).</summary>
    public bool OnDeviceOnly { get; init; }

    /// <summary>True when no tensor has an element this selection keeps.</summary>
    public bool KeepsNothing => !OnDeviceOnly && ThresholdBits > TopKKernels.MagnitudeMask;

    /// <summary>The threshold magnitude |x| as a float (NaN for <see cref="None"/> and for a selection only the device holds); for logging.</summary>
    public float Threshold => KeepsNothing || OnDeviceOnly ? float.NaN : BitConverter.UInt32BitsToSingle(ThresholdBits);

    /// <summary>A selection of K = <paramref name="kept"/> that only <paramref name="state"/> on the device holds.</summary>
    public static TopKSelection DeviceOnly(ArrayView<int> state, int kept) => new(0, 0, kept, 0) { State = state, OnDeviceOnly = true };
}

/// <summary>
/// Moves selections between host and device for the kernels that apply them: GPU kernels read a
/// selection from a device state (<see cref="OnDevice"/> uploads a host-only one into a small
/// buffer of its own, ordered with the launches on the same stream); host-planned CPU kernels take
/// its fields as arguments (<see cref="OnHost"/> reads a device-only one back, free on the CPU
/// accelerator). One per kernel family, its buffer freed with the accelerator; not thread-safe.
/// </summary>
public sealed class SelectionStates
{
    private readonly KernelLaunch launch;
    private readonly MemoryBuffer1D<int, Stride1D.Dense> uploaded;
    private readonly int[] host = new int[TopKSelection.StateInts];

    /// <summary>Allocates the upload buffer on the accelerator of <paramref name="launch"/>.</summary>
    public SelectionStates(KernelLaunch launch)
    {
        this.launch = launch;
        uploaded = launch.Accelerator.Allocate1D<int>(TopKSelection.StateInts);
    }

    /// <summary>The device state of <paramref name="selection"/>: its own, or its host fields uploaded.</summary>
    public ArrayView<int> OnDevice(TopKSelection selection)
    {
        if (selection.State.Length >= TopKSelection.StateInts)
        {
            return selection.State;
        }
        Store(selection, uploaded.View);
        return uploaded.View;
    }

    /// <summary>
    /// <paramref name="selection"/> with its host fields: itself, or read from its device state (one
    /// sync). Throws <see cref="InvalidOperationException"/> when the device select flagged an error.
    /// </summary>
    public TopKSelection OnHost(TopKSelection selection)
    {
        if (!selection.OnDeviceOnly)
        {
            return selection;
        }
        launch.ReadBack(selection.State.SubView(0, TopKSelection.StateInts), host);
        if (host[3] != 0)
        {
            throw new InvalidOperationException("top-k select: histogram counts do not add up (was x modified during the call?)");
        }
        return new TopKSelection((uint)host[0], host[1], selection.Kept, host[2]) { State = selection.State };
    }

    /// <summary>Writes the host fields of <paramref name="selection"/> into <paramref name="state"/> (<see cref="TopKSelection.StateInts"/> ints).</summary>
    internal void Store(TopKSelection selection, ArrayView<int> state)
    {
        host[0] = (int)selection.ThresholdBits;
        host[1] = selection.TiesToKeep;
        host[2] = selection.Tied;
        host[3] = 0;
        launch.Upload((ReadOnlySpan<int>)host, state.SubView(0, TopKSelection.StateInts));
    }
}
