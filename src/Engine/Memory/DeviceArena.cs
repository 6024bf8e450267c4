using System.Numerics;
using ILGPU;
using ILGPU.Runtime;
using ZeroFL.Engine.Devices;

namespace ZeroFL.Engine.Memory;

/// <summary>
/// An allocator over device memory for per-step temporaries (activations, their gradients, what
/// a backward keeps). <see cref="Allocate"/> hands out views; <see cref="Free"/> takes one back as
/// soon as its last reader has been launched, so that later allocations of the step reuse its
/// memory; <see cref="Reset"/> takes them all back at once. Free blocks are kept in size classes
/// (eight per power of two, a bitmap of the non-empty ones) and merged with free neighbours, so an
/// allocation or a free costs O(1) bookkeeping plus a scan of one class's short list.
/// When a step needs more than the arena holds, extra chunks are allocated and, at the next
/// <see cref="Reset"/>, merged into one chunk of the peak size plus 1/8, so a training loop stops
/// allocating after its first steps even when their sizes vary a little.
/// </summary>
/// <remarks>
/// Reuse after a free is safe on a device: a free is host bookkeeping only, and every kernel of a
/// step is launched on the accelerator's one default stream, which runs launches in order, so a
/// kernel launched after the free (the only kind that can be handed the memory again) starts after
/// every earlier kernel that read the freed view has finished. Code that launches on another stream
/// must not free a view such a launch may still read.
/// </remarks>
/// <typeparam name="T">Element type.</typeparam>
public sealed class DeviceArena<T> : IDisposable
    where T : unmanaged
{
    private const long Alignment = 64;
    private const int SubClasses = 8;
    private const int ClassCount = 64 * SubClasses;

    /// <summary>A merged chunk holds the peak plus 1/<see cref="Headroom"/> of it.</summary>
    public const long Headroom = 8;
    private readonly ComputeDevice device;
    private readonly List<Chunk> chunks = new();
    private readonly Block?[] freeLists = new Block?[ClassCount];
    private readonly ulong[] nonEmpty = new ulong[ClassCount / 64];
    private readonly Dictionary<(int Chunk, long Offset), Block> live = new();
    private readonly Stack<Block> spareBlocks = new();
    private long footprint;

    /// <summary>Creates an arena with one chunk of <paramref name="initialLength"/> elements.</summary>
    public DeviceArena(ComputeDevice device, long initialLength)
    {
        this.device = device;
        AddChunk(Math.Max(Alignment, initialLength));
    }

    /// <summary>Elements handed out and not freed since the last reset.</summary>
    public long Used { get; private set; }

    /// <summary>
    /// The most elements of the arena's memory a step has needed since the arena last merged its
    /// chunks: per chunk, the end of the highest view handed out since the last reset (views freed
    /// since and the holes between live views included), summed over the chunks, at its highest.
    /// </summary>
    public long Peak { get; private set; }

    /// <summary>The most elements live at once (handed out, not freed) since the arena last merged its chunks.</summary>
    public long PeakUsed { get; private set; }

    /// <summary>Elements of device memory the arena holds now.</summary>
    public long Capacity => chunks.Sum(c => c.Buffer.Length);

    /// <summary>Views handed out and not freed.</summary>
    public int LiveViews => live.Count;

    /// <summary>
    /// A view of <paramref name="length"/> elements, valid until it is freed or the next
    /// <see cref="Reset"/>. Not zeroed (it may hold what a freed view held).
    /// </summary>
    public ArrayView<T> Allocate(long length)
    {
        if (length < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(length), length, "allocation length must not be negative");
        }
        long rounded = (Math.Max(length, 1) + Alignment - 1) / Alignment * Alignment;
        var block = FindFree(rounded) ?? AddChunk(Math.Max(rounded, chunks[^1].Buffer.Length));
        Unlink(block);
        if (block.Length > rounded)
        {
            var rest = NewBlock(block.Chunk, block.Offset + rounded, block.Length - rounded);
            rest.Free = true;
            rest.Previous = block;
            rest.Next = block.Next;
            if (block.Next is not null)
            {
                block.Next.Previous = rest;
            }
            block.Next = rest;
            block.Length = rounded;
            Link(rest);
        }
        block.Free = false;
        live.Add((block.Chunk, block.Offset), block);
        Used += block.Length;
        PeakUsed = Math.Max(PeakUsed, Used);
        var chunk = chunks[block.Chunk];
        long end = block.Offset + block.Length;
        if (end > chunk.HighWater)
        {
            footprint += end - chunk.HighWater;
            chunk.HighWater = end;
            Peak = Math.Max(Peak, footprint);
        }
        return chunk.Buffer.View.SubView(block.Offset, length);
    }

    /// <summary>A zeroed view of <paramref name="length"/> elements.</summary>
    public ArrayView<T> AllocateZeroed(long length)
    {
        var view = Allocate(length);
        device.Kernels.Launch.Zero(view);
        return view;
    }

    /// <summary>
    /// Takes back the view that <paramref name="view"/> starts (a view <see cref="Allocate"/> handed
    /// out in this step, or one starting where it starts) once no kernel launched later will read it;
    /// kernels already launched may still be running (see the remarks of the class). Throws when no
    /// live view of this arena starts there (freed twice, or not from this arena).
    /// </summary>
    public void Free(ArrayView<T> view)
    {
        int chunkIndex = ChunkOf(view);
        if (chunkIndex < 0 || !live.Remove((chunkIndex, IndexOf(view)), out var block))
        {
            throw new InvalidOperationException("freeing a view that is not a live allocation of this arena (freed twice, or from elsewhere)");
        }
        Used -= block.Length;
        block.Free = true;
        if (block.Previous is { Free: true } previous)
        {
            Unlink(previous);
            previous.Length += block.Length;
            previous.Next = block.Next;
            if (block.Next is not null)
            {
                block.Next.Previous = previous;
            }
            Recycle(block);
            block = previous;
        }
        if (block.Next is { Free: true } next)
        {
            Unlink(next);
            block.Length += next.Length;
            block.Next = next.Next;
            if (next.Next is not null)
            {
                next.Next.Previous = block;
            }
            Recycle(next);
        }
        Link(block);
    }

    /// <summary>True when <paramref name="view"/> starts a live allocation of this arena.</summary>
    public bool IsLive(ArrayView<T> view)
    {
        int chunkIndex = ChunkOf(view);
        return chunkIndex >= 0 && live.ContainsKey((chunkIndex, IndexOf(view)));
    }

    /// <summary>
    /// Takes back every view handed out; merges chunks if the last step overflowed, into one chunk
    /// with <see cref="Headroom"/> above the most elements live at once (and at least 1/8 above the
    /// first chunk, so that repeated merges grow), then starts <see cref="Peak"/> and
    /// <see cref="PeakUsed"/> afresh: a step split over chunks leaves holes at their ends that one
    /// chunk does not have. Step sizes vary a little (a reused top-K threshold keeps a different count
    /// each step), and a merge to the exact need would be outgrown again at once: every merge is a
    /// fresh buffer whose pages the next step faults in (on the CPU accelerator ~0.1 s for the
    /// 0.5 GB of a ResNet-18 step).
    /// </summary>
    public void Reset()
    {
        long need = chunks.Count > 1 ? Math.Max(PeakUsed, chunks[0].Buffer.Length) : 0;
        long merged = need + need / Headroom;
        if (merged > 0)
        {
            Peak = 0;
            PeakUsed = 0;
        }
        if (merged > 0)
        {
            device.Synchronize();
            foreach (var chunk in chunks)
            {
                chunk.Buffer.Dispose();
            }
        }
        var lengths = merged > 0 ? [merged] : chunks.Select(c => c.Buffer.Length).ToArray();
        var buffers = merged > 0 ? null : chunks.Select(c => c.Buffer).ToArray();
        chunks.Clear();
        live.Clear();
        Array.Clear(freeLists);
        Array.Clear(nonEmpty);
        footprint = 0;
        Used = 0;
        for (int i = 0; i < lengths.Length; i++)
        {
            AddChunk(lengths[i], buffers?[i]);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var chunk in chunks)
        {
            chunk.Buffer.Dispose();
        }
        chunks.Clear();
        live.Clear();
    }

    /// <summary>A new chunk (a fresh buffer unless one is given), free as one block; returns that block.</summary>
    private Block AddChunk(long length, MemoryBuffer1D<T, Stride1D.Dense>? buffer = null)
    {
        var chunk = new Chunk(buffer ?? device.Accelerator.Allocate1D<T>(length));
        chunks.Add(chunk);
        var block = NewBlock(chunks.Count - 1, 0, chunk.Buffer.Length);
        block.Free = true;
        Link(block);
        return block;
    }

    /// <summary>The index of the chunk <paramref name="view"/> lies in, or -1.</summary>
    private int ChunkOf(ArrayView<T> view)
    {
        var buffer = BufferOf(view);
        for (int i = 0; i < chunks.Count; i++)
        {
            if (buffer is not null && ReferenceEquals(chunks[i].Raw, buffer))
            {
                return i;
            }
        }
        return -1;
    }

    /// <summary>The element offset of <paramref name="view"/> in its buffer (a constrained call: no boxing).</summary>
    private static long IndexOf<TView>(TView view)
        where TView : IContiguousArrayView => view.Index;

    /// <summary>The buffer <paramref name="view"/> lies in, null for an empty default view.</summary>
    private static MemoryBuffer? BufferOf<TView>(TView view)
        where TView : IArrayView => view.Buffer;

    /// <summary>
    /// A free block of at least <paramref name="length"/> elements, or null: the lowest-addressed
    /// fitting block of the length's own class, else one of the next non-empty class (all fit), and
    /// only when no hole fits, the top of the first chunk with room. Holes first keeps the top, and
    /// with it the peak, low: a best fit that took the top (often the smallest free block) for a
    /// gradient while freed activations leave a bigger hole lower down would raise the peak.
    /// </summary>
    private Block? FindFree(long length)
    {
        int cls = ClassOf(length);
        Block? best = null;
        for (var b = freeLists[cls]; b is not null; b = b.NextFree)
        {
            if (b.Length >= length && (best is null || (b.Chunk, b.Offset).CompareTo((best.Chunk, best.Offset)) < 0))
            {
                best = b;
            }
        }
        if (best is not null)
        {
            return best;
        }
        int above = NextNonEmpty(cls + 1);
        if (above < 0)
        {
            foreach (var chunk in chunks)
            {
                if (chunk.Top is { } top && top.Length >= length)
                {
                    return top;
                }
            }
            return null;
        }
        for (var b = freeLists[above]; b is not null; b = b.NextFree)
        {
            if (best is null || (b.Chunk, b.Offset).CompareTo((best.Chunk, best.Offset)) < 0)
            {
                best = b;
            }
        }
        return best;
    }

    /// <summary>The first class at or above <paramref name="from"/> with a free block, or -1.</summary>
    private int NextNonEmpty(int from)
    {
        for (int word = from / 64; word < nonEmpty.Length; word++)
        {
            ulong bits = nonEmpty[word];
            if (word == from / 64)
            {
                bits &= ulong.MaxValue << (from % 64);
            }
            if (bits != 0)
            {
                return word * 64 + BitOperations.TrailingZeroCount(bits);
            }
        }
        return -1;
    }

    /// <summary>Size class: exact below 8, else 8 classes per power of two (lengths within 1/8 of each other).</summary>
    private static int ClassOf(long length)
    {
        if (length < SubClasses)
        {
            return (int)length;
        }
        int log = BitOperations.Log2((ulong)length);
        int sub = (int)(length >> (log - 3)) - SubClasses;
        return SubClasses + (log - 3) * SubClasses + sub;
    }

    /// <summary>Makes a free block findable: the one ending its chunk becomes the chunk's top, any other goes in its class list.</summary>
    private void Link(Block block)
    {
        if (block.Next is null)
        {
            chunks[block.Chunk].Top = block;
            return;
        }
        int cls = ClassOf(block.Length);
        block.PreviousFree = null;
        block.NextFree = freeLists[cls];
        if (block.NextFree is not null)
        {
            block.NextFree.PreviousFree = block;
        }
        freeLists[cls] = block;
        nonEmpty[cls / 64] |= 1UL << (cls % 64);
    }

    private void Unlink(Block block)
    {
        var chunk = chunks[block.Chunk];
        if (ReferenceEquals(chunk.Top, block))
        {
            chunk.Top = null;
            return;
        }
        int cls = ClassOf(block.Length);
        if (block.PreviousFree is not null)
        {
            block.PreviousFree.NextFree = block.NextFree;
        }
        else
        {
            freeLists[cls] = block.NextFree;
        }
        if (block.NextFree is not null)
        {
            block.NextFree.PreviousFree = block.PreviousFree;
        }
        block.PreviousFree = block.NextFree = null;
        if (freeLists[cls] is null)
        {
            nonEmpty[cls / 64] &= ~(1UL << (cls % 64));
        }
    }

    private Block NewBlock(int chunk, long offset, long length)
    {
        var block = spareBlocks.Count > 0 ? spareBlocks.Pop() : new Block();
        block.Chunk = chunk;
        block.Offset = offset;
        block.Length = length;
        block.Free = false;
        block.Previous = block.Next = block.PreviousFree = block.NextFree = null;
        return block;
    }

    private void Recycle(Block block)
    {
        block.Previous = block.Next = block.PreviousFree = block.NextFree = null;
        spareBlocks.Push(block);
    }

    /// <summary>One device buffer and the end of the highest view handed out of it since the last reset.</summary>
    private sealed class Chunk(MemoryBuffer1D<T, Stride1D.Dense> buffer)
    {
        public MemoryBuffer1D<T, Stride1D.Dense> Buffer { get; } = buffer;

        /// <summary>The buffer the views of <see cref="Buffer"/> name (<see cref="ArrayView{T}.Buffer"/>).</summary>
        public MemoryBuffer? Raw { get; } = BufferOf(buffer.View.AsContiguous());

        public long HighWater { get; set; }

        /// <summary>The free block that ends the chunk (its untouched rest), or null.</summary>
        public Block? Top { get; set; }
    }

    /// <summary>A run of a chunk, free or handed out; its address neighbours, and its class list's when free.</summary>
    private sealed class Block
    {
        public int Chunk { get; set; }

        public long Offset { get; set; }

        public long Length { get; set; }

        public bool Free { get; set; }

        public Block? Previous { get; set; }

        public Block? Next { get; set; }

        public Block? PreviousFree { get; set; }

        public Block? NextFree { get; set; }
    }
}
