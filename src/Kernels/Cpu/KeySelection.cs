using System.Numerics;

namespace ZeroFL.Kernels;

/// <summary>
/// The k-th largest of a host array of magnitude keys (bits of |x|) in a known range [low, high]:
/// radix passes of at most 11 bits over key - low, from the top bit of high - low down, the keys of
/// the chosen digit moved to the front after each pass (so keys packed in a narrow range still
/// spread over the buckets). The CPU strategy's selections finish here: on a copy of a small
/// tensor's keys, on a sample, on the candidates of a bracketed pass.
/// </summary>
internal static class KeySelection
{
    private const int DigitBits = 11;

    /// <summary>
    /// The k-th largest key T of <paramref name="keys"/> (1 &lt;= k &lt;= length; every key in
    /// [<paramref name="low"/>, <paramref name="high"/>]), how many keys are greater than T and how
    /// many equal it (greater &lt; k &lt;= greater + equal). Reorders and overwrites
    /// <paramref name="keys"/>.
    /// </summary>
    public static (uint Threshold, int Greater, int Equal) Largest(Span<uint> keys, int k, uint low = 0, uint high = TopKKernels.MagnitudeMask)
    {
        if (k < 1 || k > keys.Length || low > high)
        {
            throw new ArgumentOutOfRangeException(nameof(k), $"key selection: k = {k} is outside [1, {keys.Length}] or the range [{low}, {high}] is empty");
        }
        Span<int> histogram = stackalloc int[1 << DigitBits];
        uint prefix = 0; // the digits of key - low found so far, above bit `top`
        int greater = 0;
        int equal = keys.Length;
        int top = 32 - BitOperations.LeadingZeroCount(high - low);
        while (top > 0)
        {
            int shift = Math.Max(0, top - DigitBits);
            int bits = top - shift;
            uint mask = (1u << bits) - 1;
            var counts = histogram[..(1 << bits)];
            counts.Clear();
            foreach (uint key in keys)
            {
                counts[(int)(((key - low) >> shift) & mask)]++;
            }
            int digit = counts.Length - 1;
            int remaining = k - greater;
            while (counts[digit] < remaining)
            {
                remaining -= counts[digit];
                greater += counts[digit];
                digit--;
            }
            prefix = (prefix << bits) | (uint)digit;
            equal = counts[digit];
            if (shift > 0)
            {
                int kept = 0;
                foreach (uint key in keys)
                {
                    if ((((key - low) >> shift) & mask) == (uint)digit)
                    {
                        keys[kept++] = key;
                    }
                }
                keys = keys[..kept];
            }
            top = shift;
        }
        return (low + prefix, greater, equal);
    }
}
