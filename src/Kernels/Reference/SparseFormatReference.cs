namespace ZeroFL.Kernels.Reference;

/// <summary>Plain-loop reference for <see cref="SparseFormatKernels"/> (layouts described there).</summary>
public static class SparseFormatReference
{
    /// <summary>Columns (each in [0, 65536)) two per int, entry 2i in the low half of word i; an odd count leaves the last high half 0.</summary>
    public static int[] PackColumns16(ReadOnlySpan<int> columns)
    {
        var packed = new int[(columns.Length + 1) / 2];
        for (int i = 0; i < columns.Length; i++)
        {
            packed[i / 2] |= (columns[i] & 0xFFFF) << (16 * (i % 2));
        }
        return packed;
    }

    /// <summary>The first <paramref name="count"/> 16-bit columns of <paramref name="packed"/>.</summary>
    public static int[] UnpackColumns16(ReadOnlySpan<int> packed, int count)
    {
        var columns = new int[count];
        for (int i = 0; i < count; i++)
        {
            columns[i] = (packed[i / 2] >> (16 * (i % 2))) & 0xFFFF;
        }
        return columns;
    }

    /// <summary>The bitmap (ceil(rows * cols / 32) ints) of a valid CSR matrix [rows, cols].</summary>
    public static int[] Bitmap(ReadOnlySpan<int> rowPointers, ReadOnlySpan<int> columns, int rows, int cols)
    {
        var bitmap = new int[(int)(((long)rows * cols + 31) / 32)];
        for (int r = 0; r < rows; r++)
        {
            for (int k = rowPointers[r]; k < rowPointers[r + 1]; k++)
            {
                long position = (long)r * cols + columns[k];
                bitmap[position / 32] |= 1 << (int)(position % 32);
            }
        }
        return bitmap;
    }

    /// <summary>The flat positions of the set bits below <paramref name="length"/>, increasing.</summary>
    public static int[] Positions(ReadOnlySpan<int> bitmap, long length)
    {
        var positions = new List<int>();
        for (long i = 0; i < length; i++)
        {
            if ((bitmap[(int)(i / 32)] >> (int)(i % 32) & 1) != 0)
            {
                positions.Add((int)i);
            }
        }
        return positions.ToArray();
    }

    /// <summary>dense += weight * values at the bitmap's positions (the j-th set bit takes values[j]; extra bits or values are ignored).</summary>
    public static void BitmapScatterAdd(ReadOnlySpan<int> bitmap, ReadOnlySpan<float> values, float weight, Span<float> dense)
    {
        var positions = Positions(bitmap, dense.Length);
        for (int j = 0; j < positions.Length && j < values.Length; j++)
        {
            dense[positions[j]] += weight * values[j];
        }
    }
}
