namespace ZeroFL.Kernels.Reference;

/// <summary>Plain-loop reference for <see cref="MaskKernels"/> and the mask-stability fraction it serves.</summary>
public static class MaskReference
{
    /// <summary>The bitmap (ceil(length / 32) ints) of the positions in [0, length) among <paramref name="indices"/>; others are skipped.</summary>
    public static int[] Mark(ReadOnlySpan<int> indices, long length)
    {
        var bitmap = new int[(int)((length + 31) / 32)];
        foreach (int position in indices)
        {
            if (position >= 0 && position < length)
            {
                bitmap[position / 32] |= 1 << (position % 32);
            }
        }
        return bitmap;
    }

    /// <summary>Set bits that <paramref name="a"/> and <paramref name="b"/> share, word by word over the shorter.</summary>
    public static long CountCommon(ReadOnlySpan<int> a, ReadOnlySpan<int> b)
    {
        long count = 0;
        for (int w = 0; w < Math.Min(a.Length, b.Length); w++)
        {
            count += System.Numerics.BitOperations.PopCount((uint)(a[w] & b[w]));
        }
        return count;
    }

    /// <summary>
    /// Mask stability of a tensor between two records: the share of the top-<paramref name="k"/>
    /// positions by magnitude of <paramref name="before"/> (ties by lower index, see
    /// <see cref="TopKReference.KeptMask(float[], int)"/>) that are also top-K positions of
    /// <paramref name="after"/>: |kept(before) AND kept(after)| / K (1 when k = 0).
    /// </summary>
    public static double Stability(float[] before, float[] after, int k)
    {
        if (before.Length != after.Length)
        {
            throw new ArgumentException($"mask stability: {before.Length} entries before, {after.Length} after");
        }
        if (k == 0)
        {
            return 1;
        }
        var a = TopKReference.KeptMask(before, k);
        var b = TopKReference.KeptMask(after, k);
        int common = 0;
        for (int i = 0; i < a.Length; i++)
        {
            if (a[i] && b[i])
            {
                common++;
            }
        }
        return (double)common / k;
    }
}
