namespace ZeroFL.Federation.Uplink;

/// <summary>
/// Exact top-K by magnitude on the host, with the same order as the device top-K kernels: larger
/// |x| first (compared as the bits of |x|, so -0 equals +0 and NaN ranks above infinity), lower
/// index first among equal magnitudes.
/// </summary>
public static class MagnitudeTopK
{
    /// <summary>The positions of the <paramref name="k"/> largest |x| (k in [0, x.Length]), ascending.</summary>
    public static int[] Indices(ReadOnlySpan<float> x, int k)
    {
        if (k < 0 || k > x.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(k), k, $"top-k of {x.Length} values");
        }
        // One sortable key per element: (0x7FFFFFFF - |x| bits) in the high half, index in the low half.
        var keys = new ulong[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            ulong magnitude = BitConverter.SingleToUInt32Bits(x[i]) & 0x7FFFFFFFu;
            keys[i] = ((0x7FFFFFFFUL - magnitude) << 32) | (uint)i;
        }
        Array.Sort(keys);
        var indices = new int[k];
        for (int j = 0; j < k; j++)
        {
            indices[j] = (int)(uint)keys[j];
        }
        Array.Sort(indices);
        return indices;
    }
}
