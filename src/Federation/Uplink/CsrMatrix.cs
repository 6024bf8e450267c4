namespace ZeroFL.Federation.Uplink;

/// <summary>
/// A layer's upload in compressed sparse row form over its 2-D view (<see cref="LayerSpec"/>):
/// <see cref="RowPointers"/> <c>[Rows + 1]</c>, <see cref="ColumnIndices"/> and <see cref="Values"/>
/// <c>[NonZeros]</c>, columns ascending within each row. On the wire: 4 B per value (fp32), 4 B per
/// column index, 4 B per row pointer. "Non-zeros" are the sent entries, even a sent value that is 0.
/// </summary>
public sealed class CsrMatrix
{
    private CsrMatrix(int rows, int columns, int[] rowPointers, int[] columnIndices, float[] values)
    {
        Rows = rows;
        Columns = columns;
        RowPointers = rowPointers;
        ColumnIndices = columnIndices;
        Values = values;
    }

    /// <summary>Rows.</summary>
    public int Rows { get; }

    /// <summary>Columns.</summary>
    public int Columns { get; }

    /// <summary>Row r's entries are positions RowPointers[r] .. RowPointers[r + 1] - 1: <c>[Rows + 1]</c>.</summary>
    public IReadOnlyList<int> RowPointers { get; }

    /// <summary>Column of each entry: <c>[NonZeros]</c>.</summary>
    public IReadOnlyList<int> ColumnIndices { get; }

    /// <summary>Value of each entry: <c>[NonZeros]</c>.</summary>
    public IReadOnlyList<float> Values { get; }

    /// <summary>Stored entries.</summary>
    public int NonZeros => Values.Count;

    /// <summary>Bytes on the wire: 4 * NonZeros (values) + 4 * NonZeros (columns) + 4 * (Rows + 1) (row pointers).</summary>
    public long Bytes => UplinkBytes.Csr(Rows, NonZeros);

    /// <summary>
    /// Packs entries given as flat row-major positions of <paramref name="layer"/>
    /// (strictly ascending) and their values.
    /// </summary>
    public static CsrMatrix FromSorted(LayerSpec layer, ReadOnlySpan<int> positions, ReadOnlySpan<float> values)
    {
        ArgumentNullException.ThrowIfNull(layer);
        if (positions.Length != values.Length)
        {
            throw new ArgumentException($"{positions.Length} positions for {values.Length} values");
        }
        var rowPointers = new int[layer.Rows + 1];
        var columns = new int[positions.Length];
        int previous = -1;
        for (int j = 0; j < positions.Length; j++)
        {
            int p = positions[j];
            if (p <= previous || p >= layer.Length)
            {
                throw new ArgumentException($"layer {layer.Name}: position {p} at {j} is out of range or not ascending");
            }
            previous = p;
            rowPointers[p / layer.Columns + 1]++;
            columns[j] = p % layer.Columns;
        }
        for (int r = 0; r < layer.Rows; r++)
        {
            rowPointers[r + 1] += rowPointers[r];
        }
        return new CsrMatrix(layer.Rows, layer.Columns, rowPointers, columns, values.ToArray());
    }

    /// <summary>The dense <c>[Rows * Columns]</c> row-major matrix, zero where nothing was stored.</summary>
    public float[] ToDense()
    {
        var dense = new float[(long)Rows * Columns];
        for (int r = 0; r < Rows; r++)
        {
            for (int j = RowPointers[r]; j < RowPointers[r + 1]; j++)
            {
                dense[(long)r * Columns + ColumnIndices[j]] = Values[j];
            }
        }
        return dense;
    }
}
