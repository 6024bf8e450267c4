using ILGPU;

namespace ZeroFL.Kernels;

/// <summary>
/// The plain loops of applying a top-K selection to one range [begin, end) of a tensor, shared by
/// the GPU kernels (<c>TopKKernels.Gpu.cs</c>, <c>CsrKernels.Gpu.cs</c>) and by the CPU engine's
/// Vector256 loops (<see cref="TopKRanges"/>) for their tails and where AVX2 is missing. Keys are
/// the bits of |x| (<see cref="TopKKernels.MagnitudeMask"/>), compared as unsigned ints.
/// </summary>
internal static class TopKLoops
{
    private const uint Magnitude = TopKKernels.MagnitudeMask;

    /// <summary>Counts elements of [begin, end) with key &gt; threshold (high 32 bits) and == threshold (low 32 bits).</summary>
    public static long Count(ArrayView<float> x, long begin, long end, uint threshold)
    {
        long greater = 0;
        long equal = 0;
        for (long i = begin; i < end; i++)
        {
            uint key = Interop.FloatAsInt(x[i]) & Magnitude;
            greater += key > threshold ? 1 : 0;
            equal += key == threshold ? 1 : 0;
        }
        return (greater << 32) | equal;
    }

    /// <summary>
    /// Of the elements of [begin, end) with key == threshold, keeps the first
    /// <paramref name="ties"/> and sets output to +0 at the others; output is untouched elsewhere
    /// (it may be x).
    /// </summary>
    public static void TrimTies(ArrayView<float> x, ArrayView<float> output, long begin, long end, uint threshold, int ties)
    {
        for (long i = begin; i < end; i++)
        {
            if ((Interop.FloatAsInt(x[i]) & Magnitude) == threshold)
            {
                if (ties > 0)
                {
                    ties--;
                }
                else
                {
                    output[i] = 0f;
                }
            }
        }
    }

    /// <summary>
    /// Writes the kept (value, index) pairs of [begin, end) in index order to positions
    /// [<paramref name="position"/>, <paramref name="limit"/>), never past limit: every key &gt;
    /// threshold and the first <paramref name="ties"/> keys == threshold.
    /// </summary>
    public static void Scatter(
        ArrayView<float> x, ArrayView<float> values, ArrayView<int> indices,
        long begin, long end, uint threshold, int position, int limit, int ties)
    {
        for (long i = begin; i < end && position < limit; i++)
        {
            float v = x[i];
            uint key = Interop.FloatAsInt(v) & Magnitude;
            bool keep = key > threshold;
            if (key == threshold && ties > 0)
            {
                ties--;
                keep = true;
            }
            if (keep)
            {
                values[position] = v;
                indices[position] = (int)i;
                position++;
            }
        }
    }
}
