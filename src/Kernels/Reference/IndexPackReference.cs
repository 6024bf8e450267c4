namespace ZeroFL.Kernels.Reference;

/// <summary>Plain-loop reference for <see cref="IndexPackKernels"/>.</summary>
public static class IndexPackReference
{
    /// <summary>The packed low halves and the block table of strictly increasing <paramref name="indices"/> below <paramref name="n"/>.</summary>
    public static (int[] Packed, int[] Table) Pack(int[] indices, long n)
    {
        var packed = new int[IndexPackKernels.PackedLength(indices.Length)];
        for (int i = 0; i < indices.Length; i++)
        {
            int low = indices[i] & 0xFFFF;
            packed[i / 2] |= i % 2 == 0 ? low : low << 16;
        }
        var table = new int[IndexPackKernels.TableLength(n)];
        for (int b = 0; b < table.Length; b++)
        {
            long start = (long)b * IndexPackKernels.BlockLength;
            table[b] = indices.Count(index => index < start);
        }
        return (packed, table);
    }

    /// <summary>The full indices back: entry i of block b (table[b] &lt;= i &lt; table[b + 1]) is b * 65536 + its low half.</summary>
    public static int[] Expand(int[] packed, int[] table, int count)
    {
        var indices = new int[count];
        for (int b = 0; b + 1 < table.Length; b++)
        {
            for (int i = table[b]; i < table[b + 1]; i++)
            {
                int word = packed[i / 2];
                int low = i % 2 == 0 ? word & 0xFFFF : (word >> 16) & 0xFFFF;
                indices[i] = b * IndexPackKernels.BlockLength + low;
            }
        }
        return indices;
    }
}
