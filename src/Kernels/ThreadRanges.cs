namespace ZeroFL.Kernels;

/// <summary>
/// Which elements of [0, n) each launched thread visits: thread i starts at i * First, steps by
/// Step and stops before min(n, i * First + Extent). On the CPU accelerator every thread takes one
/// contiguous block (First = Extent = block length, Step = 1: no two threads write the same cache
/// line); on GPUs it is the usual grid stride (First = 1, Extent = n, Step = threads: coalesced).
/// A kernel parameter: <c>for (long i = r.Begin(index); i &lt; r.End(index); i += r.Step)</c>.
/// </summary>
internal readonly struct ThreadRanges(int n, int first, int extent, int step)
{
    /// <summary>Element count.</summary>
    public int N { get; } = n;

    /// <summary>Distance between the first elements of consecutive threads.</summary>
    public int First { get; } = first;

    /// <summary>Length of the span a thread's elements lie in.</summary>
    public int Extent { get; } = extent;

    /// <summary>Distance between consecutive elements of one thread.</summary>
    public int Step { get; } = step;

    /// <summary>First element of thread <paramref name="index"/>.</summary>
    public long Begin(int index) => (long)index * First;

    /// <summary>One past the last element of thread <paramref name="index"/>.</summary>
    public long End(int index) => Math.Min(N, (long)index * First + Extent);

    /// <summary>Ranges for <paramref name="threads"/> threads over n elements.</summary>
    public static ThreadRanges For(int n, int threads, bool contiguous)
    {
        if (!contiguous)
        {
            return new ThreadRanges(n, 1, n, threads);
        }
        int block = (int)Math.Max(1, (n + (long)threads - 1) / threads);
        return new ThreadRanges(n, block, block, 1);
    }
}
