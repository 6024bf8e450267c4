using ILGPU;
using ILGPU.Runtime;
using ZeroFL.Engine.Devices;

namespace ZeroFL.Engine.Memory;

/// <summary>
/// A bump allocator over device memory for per-step temporaries (activations, their gradients,
/// scratch). <see cref="Allocate"/> hands out views; <see cref="Reset"/> takes them all back at once.
/// When a step needs more than the arena holds, extra chunks are allocated and, at the next
/// <see cref="Reset"/>, merged into one chunk of the peak size plus 1/8, so a training loop stops
/// allocating after its first steps even when their sizes vary a little.
/// </summary>
/// <typeparam name="T">Element type.</typeparam>
public sealed class DeviceArena<T> : IDisposable
    where T : unmanaged
{
    private const long Alignment = 64;

    /// <summary>A merged chunk holds the peak plus 1/<see cref="Headroom"/> of it.</summary>
    public const long Headroom = 8;
    private readonly ComputeDevice device;
    private readonly List<MemoryBuffer1D<T, Stride1D.Dense>> chunks = new();
    private long offset;
    private long usedInEarlierChunks;

    /// <summary>Creates an arena with one chunk of <paramref name="initialLength"/> elements.</summary>
    public DeviceArena(ComputeDevice device, long initialLength)
    {
        this.device = device;
        chunks.Add(device.Accelerator.Allocate1D<T>(Math.Max(Alignment, initialLength)));
    }

    /// <summary>Elements handed out since the last reset.</summary>
    public long Used => usedInEarlierChunks + offset;

    /// <summary>The most elements handed out between two resets so far.</summary>
    public long Peak { get; private set; }

    /// <summary>Elements of device memory the arena holds now.</summary>
    public long Capacity => chunks.Sum(c => c.Length);

    /// <summary>A view of <paramref name="length"/> elements, valid until the next <see cref="Reset"/>. Not zeroed.</summary>
    public ArrayView<T> Allocate(long length)
    {
        if (length < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(length), length, "allocation length must not be negative");
        }
        long rounded = (Math.Max(length, 1) + Alignment - 1) / Alignment * Alignment;
        var current = chunks[^1];
        if (offset + rounded > current.Length)
        {
            usedInEarlierChunks += offset;
            long size = Math.Max(rounded, current.Length);
            current = device.Accelerator.Allocate1D<T>(size);
            chunks.Add(current);
            offset = 0;
        }
        var view = current.View.SubView(offset, length);
        offset += rounded;
        Peak = Math.Max(Peak, Used);
        return view;
    }

    /// <summary>A zeroed view of <paramref name="length"/> elements.</summary>
    public ArrayView<T> AllocateZeroed(long length)
    {
        var view = Allocate(length);
        device.Kernels.Launch.Zero(view);
        return view;
    }

    /// <summary>
    /// Takes back every view handed out; merges chunks if the last step overflowed, into one chunk
    /// with <see cref="Headroom"/> above the peak. Step sizes vary a little (a reused top-K threshold
    /// keeps a different count each step), and a merge to the exact peak would be outgrown again at
    /// once: every merge is a fresh buffer whose pages the next step faults in (on the CPU
    /// accelerator ~0.1 s for the 0.5 GB of a ResNet-18 step).
    /// </summary>
    public void Reset()
    {
        if (chunks.Count > 1)
        {
            device.Synchronize();
            long size = Peak + Peak / Headroom;
            foreach (var chunk in chunks)
            {
                chunk.Dispose();
            }
            chunks.Clear();
            chunks.Add(device.Accelerator.Allocate1D<T>(size));
        }
        offset = 0;
        usedInEarlierChunks = 0;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var chunk in chunks)
        {
            chunk.Dispose();
        }
        chunks.Clear();
    }
}
