namespace ZeroFL.Kernels.Reference;

/// <summary>
/// Sort-based reference for <see cref="TopKKernels"/>: the truth tests compare against. Orders every
/// index by magnitude key descending, then index ascending, and keeps the first K.
/// </summary>
public static class TopKReference
{
    /// <summary>
    /// The magnitude key: the bits of |x| as an unsigned int. Monotone in |x| for non-NaN values
    /// (-0.0 and +0.0 equal); NaN above +infinity, NaNs ordered by payload.
    /// </summary>
    public static uint MagnitudeKey(float value) => BitConverter.SingleToUInt32Bits(value) & 0x7FFFFFFFu;

    /// <summary>Every index of x, largest magnitude first, lower index first among equal magnitudes.</summary>
    public static int[] MagnitudeOrder(float[] x)
    {
        var order = Enumerable.Range(0, x.Length).ToArray();
        var keys = x.Select(MagnitudeKey).ToArray();
        Array.Sort(order, (a, b) =>
        {
            int byKey = keys[b].CompareTo(keys[a]);
            return byKey != 0 ? byKey : a.CompareTo(b);
        });
        return order;
    }

    /// <summary>True for the k kept elements of x.</summary>
    public static bool[] KeptMask(float[] x, int k) => KeptMask(x, k, MagnitudeOrder(x));

    /// <summary>True for the k kept elements of x, given <see cref="MagnitudeOrder"/> of x (to sort once for many k).</summary>
    public static bool[] KeptMask(float[] x, int k, int[] order)
    {
        var kept = new bool[x.Length];
        for (int j = 0; j < k; j++)
        {
            kept[order[j]] = true;
        }
        return kept;
    }

    /// <summary>The magnitude key of the k-th largest element (k in [1, n]).</summary>
    public static uint ThresholdBits(float[] x, int k, int[] order) => MagnitudeKey(x[order[k - 1]]);

    /// <summary>
    /// Threshold reuse on any tensor: keeps every element with key &gt; thresholdBits and, of those
    /// with key == thresholdBits, the first tiesToKeep in index order.
    /// </summary>
    public static bool[] ApplyThreshold(float[] x, uint thresholdBits, int tiesToKeep)
    {
        var kept = new bool[x.Length];
        int ties = tiesToKeep;
        for (int i = 0; i < x.Length; i++)
        {
            uint key = MagnitudeKey(x[i]);
            if (key > thresholdBits)
            {
                kept[i] = true;
            }
            else if (key == thresholdBits && ties > 0)
            {
                kept[i] = true;
                ties--;
            }
        }
        return kept;
    }

    /// <summary>x where kept, 0 elsewhere.</summary>
    public static float[] Mask(float[] x, bool[] kept)
    {
        var output = new float[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            output[i] = kept[i] ? x[i] : 0f;
        }
        return output;
    }

    /// <summary>The kept (value, index) pairs in increasing index order.</summary>
    public static (float[] Values, int[] Indices) Compress(float[] x, bool[] kept)
    {
        var indices = Enumerable.Range(0, x.Length).Where(i => kept[i]).ToArray();
        return (indices.Select(i => x[i]).ToArray(), indices);
    }
}
