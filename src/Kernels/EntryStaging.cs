using ILGPU;

namespace ZeroFL.Kernels;

/// <summary>
/// Room for a one-pass selection (a staged CSR encode, <see cref="CsrKernels.PlanSelected(ArrayView{float}, TopKSelection, int, int, ArrayView{int}, ArrayView{int}, EntryStaging)"/>,
/// or a staged top-K compress, <see cref="TopKKernels.PlanCompress(ArrayView{float}, TopKSelection, ArrayView{int}, EntryStaging)"/>):
/// <paramref name="Slot"/> (index, value) entries per segment (a matrix row, or a compress chunk),
/// segment s at s * Slot. The counting pass writes each segment's entries at or above the
/// threshold there, so the second pass copies the kept ones instead of reading the tensor again.
/// </summary>
public readonly record struct EntryStaging(ArrayView<int> Indices, ArrayView<float> Values, int Slot)
{
    /// <summary>
    /// A slot for <paramref name="segments"/> segments of <paramref name="length"/> elements expected
    /// to keep <paramref name="kept"/> entries in all: twice the mean segment plus 64, or at least
    /// <paramref name="longestSeen"/> + 1/8 when a previous plan found a longer one; never more
    /// than a whole segment.
    /// </summary>
    public static int SlotFor(int segments, int length, long kept, int longestSeen)
    {
        long mean = (kept + segments - 1) / Math.Max(1, segments);
        long slot = Math.Max(2 * mean + 64, longestSeen + longestSeen / 8L);
        return (int)Math.Clamp(slot, 1, Math.Max(1, length));
    }

    /// <summary>
    /// Staging for <paramref name="segments"/> segments of <paramref name="length"/> elements in the
    /// reusable views of <paramref name="memory"/>, its slot from <see cref="SlotFor"/>.
    /// </summary>
    public static EntryStaging In(IEncodeMemory memory, int segments, int length, long kept, int longestSeen)
    {
        int slot = SlotFor(segments, length, kept, longestSeen);
        long entries = (long)segments * slot;
        return new EntryStaging(memory.StagingIndices(entries), memory.StagingValues(entries), slot);
    }

    /// <summary>Throws <see cref="ArgumentException"/> unless the slot is in [1, length] and both views hold segments * slot entries.</summary>
    internal void Check(int segments, int length, string what)
    {
        if (Slot <= 0 || Slot > Math.Max(1, length))
        {
            throw new ArgumentException($"{what}: staging slot {Slot} is outside [1, {length}]");
        }
        long needed = (long)segments * Slot;
        if (needed > int.MaxValue || Indices.Length < needed || Values.Length < needed)
        {
            throw new ArgumentException(
                $"{what}: staging for {segments} segments of {Slot} needs {needed} entries, has indices {Indices.Length} and values {Values.Length}");
        }
    }
}

/// <summary>
/// The host's result of a staged plan: the kept count, whether every segment fitted its slot (the
/// second pass then copies from the staging; else it reads the tensor), and the longest segment's
/// count of entries at or above the threshold (what a slot must hold next time).
/// </summary>
public readonly record struct SelectedPlan(int Count, bool Staged, int Longest);
