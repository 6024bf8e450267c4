namespace ZeroFL.Kernels.Reference;

/// <summary>
/// Plain-loop reference for <see cref="CsrKernels"/>: a CSR matrix [rows, cols] is
/// (row pointers int[rows + 1], columns int[nnz] increasing within a row, values float[nnz]).
/// </summary>
public static class CsrReference
{
    /// <summary>The non-zero entries (<c>v != 0</c>) of the row-major matrix <paramref name="dense"/> [rows, cols].</summary>
    public static (int[] RowPointers, int[] Columns, float[] Values) Encode(float[] dense, int rows, int cols)
    {
        var rowPointers = new int[rows + 1];
        var columns = new List<int>();
        var values = new List<float>();
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < cols; c++)
            {
                float v = dense[r * cols + c];
                if (v != 0f)
                {
                    columns.Add(c);
                    values.Add(v);
                }
            }
            rowPointers[r + 1] = columns.Count;
        }
        return (rowPointers, columns.ToArray(), values.ToArray());
    }

    /// <summary>The dense row-major matrix [rows, cols] of a CSR matrix (zeros elsewhere; a repeated column keeps its last value).</summary>
    public static float[] Decode(int[] rowPointers, int[] columns, float[] values, int rows, int cols)
    {
        var dense = new float[rows * cols];
        for (int r = 0; r < rows; r++)
        {
            for (int k = rowPointers[r]; k < rowPointers[r + 1]; k++)
            {
                dense[r * cols + columns[k]] = values[k];
            }
        }
        return dense;
    }

    /// <summary>dense += weight * the CSR matrix.</summary>
    public static void ScatterAdd(int[] rowPointers, int[] columns, float[] values, float weight, int rows, int cols, float[] dense)
    {
        for (int r = 0; r < rows; r++)
        {
            for (int k = rowPointers[r]; k < rowPointers[r + 1]; k++)
            {
                dense[r * cols + columns[k]] += weight * values[k];
            }
        }
    }

    /// <summary>values[k] = dense[r, columns[k]] for every entry k of every row r.</summary>
    public static void Gather(float[] dense, int rows, int cols, int[] rowPointers, int[] columns, float[] values)
    {
        for (int r = 0; r < rows; r++)
        {
            for (int k = rowPointers[r]; k < rowPointers[r + 1]; k++)
            {
                values[k] = dense[r * cols + columns[k]];
            }
        }
    }
}
