using System.Numerics;
using ILGPU;
using ILGPU.Runtime;
using ZeroFL.Engine.Devices;
using ZeroFL.Kernels;

namespace ZeroFL.Engine.Memory;

/// <summary>
/// Per-step device temporaries: one float arena (activations, gradients, scratch) and one int
/// arena (labels, max-pool indices), each freeing a view when the tape says its last reader ran.
/// Reset once per step. As the memory of a family-level encode
/// (<see cref="IEncodeMemory"/>) it keeps results in the arenas and lends its reusable buffers.
/// </summary>
public sealed class Workspace : IDisposable, IEncodeMemory
{
    private MemoryBuffer1D<float, Stride1D.Dense>? scratch;
    private readonly long initialIntScratch;
    private MemoryBuffer1D<int, Stride1D.Dense>? intScratch;
    private MemoryBuffer1D<int, Stride1D.Dense>? topKScratch;
    private MemoryBuffer1D<int, Stride1D.Dense>? stagingScratch;

    /// <summary>Creates a workspace with initial capacities in elements.</summary>
    public Workspace(ComputeDevice device, long initialFloats = 1 << 20, long initialInts = 1 << 16)
    {
        Device = device;
        Floats = new DeviceArena<float>(device, initialFloats);
        Ints = new DeviceArena<int>(device, initialInts);
        initialIntScratch = Math.Max(1, initialInts);
    }

    /// <summary>The device the memory lives on.</summary>
    public ComputeDevice Device { get; }

    /// <summary>Float temporaries.</summary>
    public DeviceArena<float> Floats { get; }

    /// <summary>Int temporaries.</summary>
    public DeviceArena<int> Ints { get; }

    /// <summary>
    /// A scratch view of at least <paramref name="length"/> floats that stays valid only until the
    /// next call (ops use it inside one kernel sequence, e.g. for im2col). Grows when asked for more.
    /// </summary>
    public ArrayView<float> Scratch(long length)
    {
        if (scratch is null || scratch.Length < length)
        {
            Device.Synchronize();
            scratch?.Dispose();
            scratch = Device.Accelerator.Allocate1D<float>(Math.Max(length, 1));
        }
        return scratch.View.SubView(0, length);
    }

    /// <summary>
    /// A reusable view of at least <paramref name="length"/> ints, valid only until the next call
    /// (e.g. the full kept-activation indices between a top-K compress and their packing, or between
    /// their expansion and the weight-gradient kernel). A buffer of its own, never shared with
    /// <see cref="Scratch"/>, which kernels use at the same time. Grows to the next power of two when
    /// asked for more, and is never smaller than the int arena's first chunk: the lengths asked for
    /// (kept-entry counts) vary with the data and the batch size, and each growth costs a
    /// synchronisation and a new allocation.
    /// </summary>
    public ArrayView<int> IntScratch(long length) => GrowIntScratch(ref intScratch, length);

    /// <summary>
    /// The reusable scratch of the top-K kernels (<c>TopKKernels.ScratchLength</c> ints), valid only
    /// until the next call, with the growth of <see cref="IntScratch"/>. A third buffer: a top-K
    /// compress reads its plan from here while it writes indices into <see cref="IntScratch"/>.
    /// </summary>
    public ArrayView<int> TopKScratch(long length) => GrowIntScratch(ref topKScratch, length);

    /// <summary>
    /// The indices of a one-pass selection's staging (<c>EntryStaging</c>; its values go in
    /// <see cref="Scratch"/>), valid only until the next call, with the growth of
    /// <see cref="IntScratch"/>. A fourth buffer: a staged top-K compress reads it while it writes
    /// the kept indices into <see cref="IntScratch"/> and its plan sits in <see cref="TopKScratch"/>.
    /// </summary>
    public ArrayView<int> StagingScratch(long length) => GrowIntScratch(ref stagingScratch, length);

    private ArrayView<int> GrowIntScratch(ref MemoryBuffer1D<int, Stride1D.Dense>? buffer, long length)
    {
        if (buffer is null || buffer.Length < length)
        {
            Device.Synchronize();
            buffer?.Dispose();
            buffer = Device.Accelerator.Allocate1D<int>(Math.Max(initialIntScratch, (long)BitOperations.RoundUpToPowerOf2((ulong)Math.Max(length, 1))));
        }
        return buffer.View.SubView(0, length);
    }

    ArrayView<int> IEncodeMemory.KeepInts(long length) => Ints.Allocate(length);

    ArrayView<float> IEncodeMemory.KeepFloats(long length) => Floats.Allocate(length);

    ArrayView<int> IEncodeMemory.StagingIndices(long length) => StagingScratch(length);

    ArrayView<float> IEncodeMemory.StagingValues(long length) => Scratch(length);

    ArrayView<int> IEncodeMemory.Indices(long length) => IntScratch(length);

    /// <summary>
    /// The arenas' peaks in bytes (<see cref="DeviceArena{T}.Peak"/>: the high-water of the memory a
    /// step used, temporaries freed early included as holes, since the arenas last merged).
    /// </summary>
    public long PeakBytes => Floats.Peak * sizeof(float) + Ints.Peak * sizeof(int);

    /// <summary>Bytes of the reusable scratch buffers (also step temporaries; their size is the largest request).</summary>
    public long ScratchBytes => (scratch?.Length ?? 0) * sizeof(float) + ((intScratch?.Length ?? 0) + (topKScratch?.Length ?? 0) + (stagingScratch?.Length ?? 0)) * sizeof(int);

    /// <summary>Bytes of device memory held.</summary>
    public long CapacityBytes => Floats.Capacity * sizeof(float) + Ints.Capacity * sizeof(int) + ScratchBytes;

    /// <summary>Takes back every temporary.</summary>
    public void Reset()
    {
        Floats.Reset();
        Ints.Reset();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        topKScratch?.Dispose();
        stagingScratch?.Dispose();
        intScratch?.Dispose();
        scratch?.Dispose();
        Ints.Dispose();
        Floats.Dispose();
    }
}
